package daemon

import (
	"testing"

	"github.com/xdplb/xdplb/internal/datapath"
)

// TestWorthSyncing: peers hear of Full-NAT connections past their
// handshake, never of DSR ones, whatever their state.
func TestWorthSyncing(t *testing.T) {
	states := []datapath.State{datapath.StateSynSent, datapath.StateEstablished, datapath.StateFinWait,
		datapath.StateClose, datapath.StateUDP, datapath.StateReset}
	for _, fwd := range []datapath.Forwarding{datapath.FullNAT, datapath.DSRL2, datapath.DSRIPIP, datapath.DSRGUE} {
		for _, st := range states {
			want := fwd == datapath.FullNAT && st != datapath.StateSynSent && st != datapath.StateReset
			if got := worthSyncing(datapath.Forward{State: st, Forwarding: fwd}); got != want {
				t.Errorf("forwarding %d, state %s: worth syncing %v, want %v", fwd, st, got, want)
			}
		}
	}
}
