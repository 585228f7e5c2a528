package decap

// The BPF object and its Go bindings are committed, so building xdplb needs
// no clang. Rebuild them after changing bpf/decap.bpf.c or bpf/lib/decap.h
// with `make generate`.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu" -target bpfel -type decap_counter decap ../../bpf/decap.bpf.c
