package toa

// The test's client-side option writer, built like the reader; the _test
// suffix keeps it out of xdplb.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu" -target bpfel toaWriter testdata/toa_writer.bpf.c
