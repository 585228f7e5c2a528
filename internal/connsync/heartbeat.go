package connsync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/xdplb/xdplb/internal/ha"
)

// Heartbeat is a node's election advert.
type Heartbeat struct {
	Priority uint8
	Role     ha.Role
	Ready    bool // the node's bulk sync completed
	// AdvertInterval travels in whole milliseconds and saturates at
	// 65.535 s.
	AdvertInterval time.Duration
}

const heartbeatLen = 8

func appendHeartbeat(b []byte, hb Heartbeat) []byte {
	var ready byte
	if hb.Ready {
		ready = 1
	}
	ms := min(max(hb.AdvertInterval.Milliseconds(), 0), math.MaxUint16)
	b = append(b, hb.Priority, byte(hb.Role), ready, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(ms))
	return append(b, 0, 0)
}

func decodeHeartbeat(p []byte) (Heartbeat, error) {
	if len(p) != heartbeatLen {
		return Heartbeat{}, fmt.Errorf("heartbeat: %d bytes, want %d", len(p), heartbeatLen)
	}
	hb := Heartbeat{
		Priority:       p[0],
		Role:           ha.Role(p[1]),
		Ready:          p[2] == 1,
		AdvertInterval: time.Duration(binary.BigEndian.Uint16(p[4:])) * time.Millisecond,
	}
	switch {
	case hb.Role > ha.RoleFault:
		return Heartbeat{}, fmt.Errorf("heartbeat: unknown %s", hb.Role)
	case p[2] > 1:
		return Heartbeat{}, fmt.Errorf("heartbeat: ready is %d, not 0 or 1", p[2])
	case p[3] != 0 || p[6] != 0 || p[7] != 0:
		return Heartbeat{}, errors.New("heartbeat: pad or reserved is not 0")
	}
	return hb, nil
}
