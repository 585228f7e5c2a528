package daemon

import (
	"net/netip"
	"testing"

	"github.com/xdplb/xdplb/internal/datapath"
)

// TestWorthSyncing: peers hear of IPv4 Full-NAT connections past their
// handshake, never of DSR ones nor of IPv6 ones (records carry IPv4
// addresses), whatever their state.
func TestWorthSyncing(t *testing.T) {
	states := []datapath.State{datapath.StateSynSent, datapath.StateEstablished, datapath.StateFinWait,
		datapath.StateClose, datapath.StateUDP, datapath.StateReset}
	v4 := datapath.FlowKey{Src: netip.MustParseAddrPort("172.19.0.9:40000"), Dst: netip.MustParseAddrPort("172.19.0.10:80")}
	v6 := datapath.FlowKey{Src: netip.MustParseAddrPort("[fd00::9]:40000"), Dst: netip.MustParseAddrPort("[fd00::10]:80")}
	for _, key := range []datapath.FlowKey{v4, v6} {
		for _, fwd := range []datapath.Forwarding{datapath.FullNAT, datapath.DSRL2, datapath.DSRIPIP, datapath.DSRGUE} {
			for _, st := range states {
				want := key == v4 && fwd == datapath.FullNAT && st != datapath.StateSynSent && st != datapath.StateReset
				if got := worthSyncing(datapath.Forward{Key: key, State: st, Forwarding: fwd}); got != want {
					t.Errorf("%s, forwarding %d, state %s: worth syncing %v, want %v", key.Src, fwd, st, got, want)
				}
			}
		}
	}
}
