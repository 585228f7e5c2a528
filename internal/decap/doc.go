// Package decap is the backend's half of direct server return (DSR): a
// small XDP program, separate from the datapath, that a backend attaches
// to the interface its balancers' tunnels arrive on. It takes the outer
// header off an IPIP or GUE (variant 1) packet from an allowed balancer and
// passes the client's packet, addressed to a VIP on the backend's loopback,
// to the stack; the backend answers the client directly.
//
// It owns that program: loading it, filling its allow-list of balancers
// and its GUE port, attaching it to an interface, pinning it under a BPF
// file system so it outlives xdplb decap, updating it in place, detaching
// it, and reading its counters. The packet handling itself is
// bpf/lib/decap.h, which the datapath shares.
package decap
