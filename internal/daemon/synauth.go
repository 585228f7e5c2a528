package daemon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/datapath"
)

// synKeyLifetime is how long one key makes SYN cookies. A rotation only
// costs the challenges in flight (a round trip's worth) a second one.
const synKeyLifetime = time.Hour

var synModes = map[config.SYNAuthMode]datapath.SYNAuthMode{
	config.SYNAuthOff:    datapath.SYNAuthOff,
	config.SYNAuthAlways: datapath.SYNAuthAlways,
	config.SYNAuthAuto:   datapath.SYNAuthAuto,
}

// setSYNProtection writes the SYN authentication settings to the datapath.
func setSYNProtection(dp *datapath.Datapath, p config.SYNProtection) error {
	mode, ok := synModes[p.Mode]
	if !ok {
		return fmt.Errorf("syn_protection.mode %q: not a mode", p.Mode)
	}
	action, ok := halfOpenActions[p.HalfOpen.Action]
	if !ok {
		return fmt.Errorf("syn_protection.half_open.action %q: not an action", p.HalfOpen.Action)
	}
	return errors.Join(dp.SetSYNAuth(mode, p.Threshold, p.VerifiedFor),
		dp.SetHalfOpenBounds(p.HalfOpen.Max, p.HalfOpen.MaxPerService, action))
}

var halfOpenActions = map[config.HalfOpenAction]datapath.HalfOpenAction{
	config.HalfOpenChallenge: datapath.HalfOpenChallenge,
	config.HalfOpenDrop:      datapath.HalfOpenDrop,
}

// newSYNKey gives the datapath a fresh random key for its SYN cookies.
func newSYNKey(dp *datapath.Datapath) error {
	var key [16]byte
	if _, err := rand.Read(key[:]); err != nil {
		return fmt.Errorf("SYN cookie key: %w", err)
	}
	return dp.SetSYNKey(key)
}

// rotateSYNKey replaces the SYN cookie key every synKeyLifetime, so that a
// key a client could learn from many cookies is soon worth nothing.
func (d *Daemon) rotateSYNKey(ctx context.Context) {
	t := time.NewTicker(synKeyLifetime)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := newSYNKey(d.dp); err != nil {
				d.log.Warn("SYN cookie key not rotated", "err", err)
			}
		}
	}
}
