// Package toa is the backend's half of passing the client's address in a
// TCP option (TOA): a small BPF object, separate from the datapath, that a
// backend attaches to a cgroup so that accept() and getpeername() of its
// sockets return the client's address the balancer put in the handshake
// ACK, with no kernel module. It owns that object: loading it, attaching it
// to cgroups, pinning it under a BPF file system so it outlives xdplb toa,
// replacing it in place, removing it, and reading its counters.
package toa
