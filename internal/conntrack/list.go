package conntrack

import (
	"net/netip"
	"sort"
	"time"

	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ident"
)

// Conn is one connection as a person reads it (`xdplb conn list`).
type Conn struct {
	Protocol  ident.Protocol
	State     string
	ExpiresIn time.Duration
	Client    netip.AddrPort
	VIP       netip.AddrPort
	Local     netip.AddrPort
	Backend   netip.AddrPort
	// Origin is the node id of the balancer that opened it (0: this one,
	// without HA).
	Origin uint8
	// DSR: the backend answers the client directly; there is no Local.
	DSR bool
}

// List returns every connection with both halves present (a DSR
// connection has only its client's), ordered by
// client, with the time left before it expires if it stays idle.
func List(table Table, timeouts Timeouts) ([]Conn, error) {
	now := datapath.Now()
	revs := map[flowKey]datapath.Reverse{}
	err := table.WalkReverse(func(batch []datapath.Reverse) error {
		for _, r := range batch {
			revs[compact(r.Key)] = r
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []Conn
	err = table.WalkForward(func(batch []datapath.Forward) error {
		for _, f := range batch {
			if f.Forwarding.DSR() {
				// One half: the backend answers the client directly.
				phase := Phase(f.Key.Proto, f.State, f.State)
				idle := time.Duration(age(now, f.LastSeen))
				out = append(out, Conn{
					Protocol: ident.Protocol(f.Key.Proto), State: phase.String(), ExpiresIn: max(timeouts.For(phase)-idle, 0),
					Client: f.Key.Src, VIP: f.Key.Dst, Backend: f.Backend, DSR: true,
				})
				continue
			}
			r, ok := revs[compact(f.ReverseKey())]
			if !ok || r.Client != f.Key {
				continue
			}
			phase := Phase(f.Key.Proto, f.State, r.State)
			idle := time.Duration(age(now, datapath.LastActive(f.State, f.LastSeen, r.LastSeen)))
			out = append(out, Conn{
				Protocol: ident.Protocol(f.Key.Proto), State: phase.String(), ExpiresIn: max(timeouts.For(phase)-idle, 0),
				Client: f.Key.Src, VIP: f.Key.Dst, Local: f.Local, Backend: f.Backend, Origin: r.Origin,
			})
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].Client.Addr().Compare(out[j].Client.Addr()); c != 0 {
			return c < 0
		}
		return out[i].Client.Port() < out[j].Client.Port()
	})
	return out, err
}
