package conntrack

import (
	"net/netip"

	"github.com/xdplb/xdplb/internal/datapath"
)

// Ender ends conntrack entries.
type Ender interface {
	WalkForward(fn func([]datapath.Forward) error) error
	ResetForward(keys []datapath.FlowKey) error
	DeleteForward(keys []datapath.FlowKey) error
	DeleteReverse(keys []datapath.FlowKey) error
}

// DropBackend ends every connection of service svcID to backend, so its
// clients fail fast and reconnect elsewhere. An IPv4 TCP client's next
// packet is answered with a reset (the forward half stays, marked, until
// the collector removes it as an orphan); an IPv6 one's is dropped and its
// entry forgotten, no reset being sent over IPv6 yet, so only its next SYN
// opens a connection; a UDP flow is simply forgotten, so
// its next datagram opens a flow to another backend. The reverse halves go
// at once: the backend gets no word back to its clients. It returns how
// many connections it ended.
func DropBackend(t Ender, svcID uint32, backend netip.AddrPort) (int, error) {
	var reset, forget, rev []datapath.FlowKey
	err := t.WalkForward(func(batch []datapath.Forward) error {
		for _, f := range batch {
			if f.ServiceID != svcID || f.Backend != backend {
				continue
			}
			if f.Key.Proto == datapath.TCP {
				reset = append(reset, f.Key)
			} else {
				forget = append(forget, f.Key)
			}
			if !f.Forwarding.DSR() { // a DSR connection has no reverse half
				rev = append(rev, f.ReverseKey())
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := t.ResetForward(reset); err != nil {
		return 0, err
	}
	if err := t.DeleteForward(forget); err != nil {
		return 0, err
	}
	return len(reset) + len(forget), t.DeleteReverse(rev)
}
