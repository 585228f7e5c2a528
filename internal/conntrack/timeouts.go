package conntrack

import (
	"time"

	"github.com/xdplb/xdplb/internal/datapath"
)

// Timeouts is how long a connection may stay idle in each state.
type Timeouts struct {
	SynSent     time.Duration // opened, handshake not complete
	Established time.Duration
	FinWait     time.Duration // after a FIN from either side
	Close       time.Duration // after an RST
	UDP         time.Duration
}

// DefaultTimeouts are the configuration's defaults: IPVS's (established
// 900 s, after FIN 120 s, UDP 300 s, an RST 10 s), but 5 s for a
// half-open connection.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		SynSent:     5 * time.Second,
		Established: 900 * time.Second,
		FinWait:     120 * time.Second,
		Close:       10 * time.Second,
		UDP:         300 * time.Second,
	}
}

// Phase is where a connection is in its life, judged from both halves: the
// most advanced teardown either side has seen decides (a reset beats a FIN,
// a FIN beats an established connection).
func Phase(proto uint8, fwd, rev datapath.State) datapath.State {
	switch {
	case proto == datapath.UDP:
		return datapath.StateUDP
	case fwd == datapath.StateClose || rev == datapath.StateClose,
		fwd == datapath.StateReset || rev == datapath.StateReset:
		return datapath.StateClose
	case fwd == datapath.StateFinWait || rev == datapath.StateFinWait:
		return datapath.StateFinWait
	case fwd == datapath.StateEstablished && rev == datapath.StateEstablished:
		return datapath.StateEstablished
	default:
		return datapath.StateSynSent
	}
}

// For is the idle timeout of a connection in the given phase. The FIN
// timeout is what keeps a local port from being handed out again while the
// backend may still hold the old tuple in TIME_WAIT.
func (t Timeouts) For(phase datapath.State) time.Duration {
	switch phase {
	case datapath.StateUDP:
		return t.UDP
	case datapath.StateClose:
		return t.Close
	case datapath.StateFinWait:
		return t.FinWait
	case datapath.StateEstablished:
		return t.Established
	default:
		return t.SynSent
	}
}
