package daemon

import (
	"fmt"
	"net/netip"
	"slices"
)

// announceInput is everything that decides what this node announces by
// BGP, gathered at one moment so that the decision is a pure function.
type announceInput struct {
	// NotServing, if set, says why this node cannot forward at all (the
	// datapath is detached, an interface is down): nothing is announced.
	NotServing string
	// SyncPending, if set, says why this node is not ready to take
	// others' connections yet (its bulk copy has not arrived): its VIPs
	// wait, its local addresses do not (replies to its own connections
	// must come back).
	SyncPending string
	// DrainAll and Drained are the operator's drains (xdplb bgp drain).
	DrainAll bool
	Drained  map[netip.Addr]bool
	// MinUp is how many backends each service of a VIP needs up.
	MinUp int
	// Services are the configured services with their health.
	Services []serviceUp
	// Local are this node's local addresses; TakenOver are a failed
	// node's, which this node holds until it is back.
	Local, TakenOver []netip.Addr
}

// serviceUp is one service's health as the announcement sees it.
type serviceUp struct {
	Name    string
	VIP     netip.Addr
	Up, All int
}

// prefixKind says why a prefix is among the candidates.
type prefixKind string

const (
	kindVIP      prefixKind = "vip"
	kindLocal    prefixKind = "local"
	kindTakeover prefixKind = "takeover"
)

// prefixDecision is one candidate prefix and what to do with it.
type prefixDecision struct {
	Prefix   netip.Prefix
	Kind     prefixKind
	Announce bool
	// Backup announces with a worse path: another node owns the prefix
	// and wins while it is alive.
	Backup bool
	// Why says why a prefix is withdrawn; empty when announced. Cause is
	// the kind of reason, for the metrics.
	Why   string
	Cause withdrawCause
}

// withdrawCause is the kind of reason a prefix is withdrawn.
type withdrawCause string

const (
	causeNotServing  withdrawCause = "not_forwarding"
	causeSyncPending withdrawCause = "sync_pending"
	causeDrained     withdrawCause = "drained"
	causeBackends    withdrawCause = "backends_down"
)

// decideAnnouncements is the announce/withdraw table. A VIP is announced
// while the node forwards, its sync copy is complete, it is not drained
// and each of its services has MinUp backends up. The node's local
// addresses are announced while it forwards, drained or not: connections
// that moved to another node still send their replies here. Taken-over
// local addresses are announced as backup.
func decideAnnouncements(in announceInput) []prefixDecision {
	var out []prefixDecision
	for _, vip := range vipsOf(in.Services) {
		d := prefixDecision{Prefix: netip.PrefixFrom(vip, vip.BitLen()), Kind: kindVIP}
		d.Cause, d.Why = vipWithdrawal(in, vip)
		d.Announce = d.Why == ""
		out = append(out, d)
	}
	own := func(a netip.Addr, kind prefixKind) prefixDecision {
		d := prefixDecision{Prefix: netip.PrefixFrom(a, a.BitLen()), Kind: kind, Announce: in.NotServing == "",
			Backup: kind == kindTakeover, Why: in.NotServing}
		if !d.Announce {
			d.Cause = causeNotServing
		}
		return d
	}
	for _, a := range in.Local {
		out = append(out, own(a, kindLocal))
	}
	for _, a := range in.TakenOver {
		out = append(out, own(a, kindTakeover))
	}
	return out
}

// vipWithdrawal says why vip is withdrawn, or "" if it is announced. The
// first reason in the table's order is given.
func vipWithdrawal(in announceInput, vip netip.Addr) (withdrawCause, string) {
	switch {
	case in.NotServing != "":
		return causeNotServing, in.NotServing
	case in.SyncPending != "":
		return causeSyncPending, in.SyncPending
	case in.DrainAll || in.Drained[vip]:
		return causeDrained, "drained (xdplb bgp undrain to announce it again)"
	}
	for _, s := range in.Services {
		if s.VIP == vip && s.Up < in.MinUp {
			return causeBackends, fmt.Sprintf("service %s has %d of %d backends up, and needs %d (bgp.min_up_backends)", s.Name, s.Up, s.All, in.MinUp)
		}
	}
	return "", ""
}

// vipsOf lists the services' VIPs, each once, in order.
func vipsOf(services []serviceUp) []netip.Addr {
	var out []netip.Addr
	for _, s := range services {
		if !slices.Contains(out, s.VIP) {
			out = append(out, s.VIP)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
