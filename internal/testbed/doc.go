// Package testbed builds throw-away network-namespace topologies for the
// xdplb demo, end-to-end tests and benchmarks, and holds what every
// privileged test shares (RequirePrivileges, LogBuffer).
//
// A Segment is one L2 broadcast domain: a Linux bridge that lives in its own
// dedicated network namespace, so nothing is ever created in (or leaks into)
// the root namespace. Every Host is a named network namespace with lo and a
// single veth interface, eth0, whose peer is a port of the segment's bridge.
//
// All names carry a random per-segment prefix ("xlb" + 6 hex digits), so a
// leftover from a crashed run can never collide with a new run and can be
// recognised and removed by hand (ip netns del xlb1a2b3c-client).
//
// Two properties of veth + XDP shape the topology; both were measured on the
// target kernel and are enforced for every host:
//
//   - A frame sent with native XDP_TX out of a veth, or redirected into a
//     veth, is silently dropped unless the receiving peer has an XDP program
//     attached. Every bridge-side veth end therefore carries a minimal
//     XDP_PASS program (see xdppass.go).
//   - With TX checksum offload on, the kernel hands TCP/UDP packets to the
//     veth with a partial checksum and relies on skb metadata to finish it.
//     XDP works on raw frames and loses that metadata, so rewritten frames
//     arrive with bad checksums. TX checksum offload is switched off on both
//     ends of every veth (see offload.go).
//
// Code that must run "inside" a host (sockets, processes, netlink, ethtool,
// /proc/sys) goes through Host.Do, which runs the function on a fresh OS
// thread that is switched into the namespace and thrown away afterwards, so
// a namespace switch can never leak into unrelated goroutines.
package testbed
