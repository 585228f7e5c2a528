package conntrack

import (
	"net/netip"

	"github.com/xdplb/xdplb/internal/datapath"
)

// Deleter removes conntrack halves.
type Deleter interface {
	WalkForward(fn func([]datapath.Forward) error) error
	DeleteForward(keys []datapath.FlowKey) error
	DeleteReverse(keys []datapath.FlowKey) error
}

// DropBackend removes every connection of service svcID to backend (both
// halves): the clients' next packets are dropped, and their reconnects go
// to another backend. It returns how many connections it removed.
func DropBackend(t Deleter, svcID uint32, backend netip.AddrPort) (int, error) {
	var fwd, rev []datapath.FlowKey
	err := t.WalkForward(func(batch []datapath.Forward) error {
		for _, f := range batch {
			if f.ServiceID == svcID && f.Backend == backend {
				fwd = append(fwd, f.Key)
				rev = append(rev, f.ReverseKey())
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := t.DeleteForward(fwd); err != nil {
		return 0, err
	}
	return len(fwd), t.DeleteReverse(rev)
}
