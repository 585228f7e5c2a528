// Package hostnet prepares the balancer host's own network stack through
// netlink and /proc/sys: the addresses the kernel must answer ARP and
// neighbour solicitations for, IPv4 and IPv6 forwarding on the balancing
// interfaces (bpf_fib_lookup requires it), the kernel's ephemeral port
// range, and resolved neighbours for the backends. Everything it changes
// it records, so the daemon can undo it on exit.
package hostnet
