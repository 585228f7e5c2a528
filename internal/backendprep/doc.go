// Package backendprep prepares a backend host for direct server return
// (DSR) and undoes it. With DSR the balancer hands the client's packet to
// the backend still addressed to the VIP, rewritten only in its MAC
// (dsr-l2) or wrapped in an IPIP or GUE tunnel (dsr-ipip, dsr-gue), and
// the backend answers the client itself, from the VIP. For that the
// backend needs:
//
//   - every VIP on lo, as a /32, so the kernel takes the packets in and
//     answers from the VIP;
//   - arp_ignore and arp_announce such that it never answers or announces
//     the VIPs in ARP, which would take them from the balancer;
//   - for the tunnel modes, no strict reverse-path filter on the
//     interfaces the packets arrive on, and with the kernel's own decapsulation
//     (rather than xdplb decap) tunl0 up with rp_filter 0, and for GUE a
//     fou receiver on the GUE port.
//
// Apply makes these changes through netlink and /proc/sys and records each
// one, with the value it replaced, in a state file; Undo puts back exactly
// what it recorded and nothing someone changed since; Status compares the
// record with the host. docs/dsr-backend.md explains each setting.
package backendprep
