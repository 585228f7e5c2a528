package toa

// The BPF object and its Go bindings are committed, so building xdplb needs
// no clang. Rebuild them after changing bpf/toa.bpf.c with `make generate`.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu" -target bpfel -type toa_counter toa ../../bpf/toa.bpf.c
