// Package ha decides which node of an xdplb HA pair (or group) is master and
// tells the network when that changes.
//
// Election is the decision: a pure state machine with VRRP semantics, fed
// with the peers' adverts, this node's readiness and the time, and asked for
// role changes. It does no I/O and starts no goroutines; the daemon carries
// its adverts over the sync channel and applies the role it reports.
//
// Announce and Announcer are the announcement: gratuitous ARPs that move the
// neighbours' ARP entries for the VIPs and floating addresses to the new
// master's MAC address.
package ha
