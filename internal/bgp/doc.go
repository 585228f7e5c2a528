// Package bgp is xdplb's embedded BGP speaker: it holds the sessions with
// the routers and announces the prefixes this node serves (VIPs, local
// addresses). What to announce, and when, is the daemon's decision; it
// hands the whole desired set to SetPrefixes, which sends only the
// difference.
//
//	s, err := bgp.New(cfg, log)   // validate, read password files
//	s.SetPrefixes(prefixes)       // before Start: the first UPDATE carries them all
//	s.Start(ctx)
//	s.SetPrefixes(...)            // on every change
//	s.Status()                    // peers, for the API and xdplb_bgp_peer_up
//	s.Stop(ctx, graceful)         // SIGTERM: true; SIGUSR2: false
//
// # GoBGP v4
//
// The speaker is GoBGP (github.com/osrg/gobgp/v4, v4.8.0) used as a
// library. v4 rather than v3, which LoxiLB and Cilium pin, for BFD: v4.6
// added single-hop BFD (RFC 5880/5881) to the BGP server, so a router and
// this node notice a dead link in Interval*Multiplier (300ms measured with
// BIRD at 100ms x 3) instead of the hold time; v3 has none and would need
// a BFD daemon beside it. v4 also takes native netip types instead of
// protobuf Any values. The cost: GoBGP's server package imports gRPC and
// viper even when unused, about 12 MB more xdplb binary (9 MB stripped).
//
// # What goes out
//
// Every prefix is announced with next hop self: an unspecified next hop,
// which GoBGP replaces by the session's local address for locally
// originated paths. IPv4 prefixes go to IPv4 peers, IPv6 prefixes to
// IPv6 peers. Config.Communities are attached to all. Routes the routers
// send are received but never accepted (an import policy rejects all but
// local paths), so this node is never transit between two routers.
//
// A backup prefix (Attrs.Backup, a dead node's local address carried by a
// survivor) carries this node's AS twice more in its AS path, not a
// higher MED: MED is compared only between paths from the same
// neighbouring AS (unless the router says otherwise, as BIRD's "med
// metric") and is dropped beyond the first router, whereas a longer AS
// path loses everywhere, whether the nodes share an AS or not. For the
// same reason iBGP is refused: an iBGP router would see its own AS in the
// path and drop the route as a loop.
//
// # Stopping
//
// Stop(ctx, true), for SIGTERM and drains, re-announces every prefix with
// GRACEFUL_SHUTDOWN (RFC 8326, 65535:0) so routers that honour it move the
// traffic first, waits Config.ShutdownWait, withdraws everything, waits
// for the withdrawals to be sent, and closes every session with a
// NOTIFICATION (Cease), after which a router drops what is left.
//
// Stop(ctx, false), for a SIGUSR2 hand-over, withdraws nothing and closes
// the sessions of peers that negotiated graceful restart without a
// NOTIFICATION (GoBGP's StopBgp with AllowGracefulRestart): to the router
// that is a restart (RFC 4724), and it keeps the routes, marked stale, for
// GracefulRestart.RestartTime. The next daemon sets
// GracefulRestart.Restarting, so its OPEN carries the Restart and
// Forwarding State bits; the router keeps the stale routes until this
// node's End-of-RIB and then drops the ones not announced again. A killed
// daemon looks the same to the router, which is right for xdplb: the
// pinned datapath keeps forwarding without the daemon. Peers without
// graceful restart get a NOTIFICATION and drop the routes at once.
// RFC 8538 (graceful restart after a NOTIFICATION, "N" bit) stays off:
// with it a router would keep the routes of a node whose hold timer
// expired.
//
// Verified against BIRD 2.0.12 (TestBIRD) and GoBGP as the router
// (TestRestartStop), the restart's interplay with BFD is the router's
// choice, and a trade-off:
//
//   - no BFD: a restart keeps the routes; a dead node is dropped when the
//     hold time expires (7.3s with 9s), which BIRD does not treat as a
//     restart;
//   - BFD that resets the session (BIRD "bfd on"): a dead link is noticed
//     in 300ms, but a restart loses the routes too, since BFD stops with
//     the process ("Error: BFD session down"): the node is drained while
//     the next daemon comes up;
//   - BFD counted as a graceful restart (BIRD "bfd graceful"): a restart
//     keeps the routes, but so does a dead node, for the whole restart
//     time.
//
// # Logging
//
// The speaker logs sessions coming up and going down at info. GoBGP's own
// log goes to the same logger with component=gobgp, its info demoted to
// debug and its errors to warnings, since they are about sessions, not
// about the daemon.
//
// # Known GoBGP issues
//
// Two GoBGP servers in one process race on GoBGP globals (the route
// selection options StartBgp sets), and a graceful restart helper marks
// paths stale without a lock; both show under the race detector in this
// package's tests, which run a GoBGP router beside the speaker. A closed
// session may leave the goroutine of its update queue behind (see
// TestMain).
package bgp
