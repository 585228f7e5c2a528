package datapath

import (
	"encoding/binary"
	"fmt"
	"time"
)

// SYNAuthMode says when new connections must prove their source first
// (see bpf/lib/synauth.h).
type SYNAuthMode uint32

const (
	SYNAuthOff    = SYNAuthMode(xdplbSynAuthModeSYN_AUTH_OFF)
	SYNAuthAlways = SYNAuthMode(xdplbSynAuthModeSYN_AUTH_ALWAYS)
	// SYNAuthAuto challenges only while new-connection SYNs exceed the
	// threshold per second.
	SYNAuthAuto = SYNAuthMode(xdplbSynAuthModeSYN_AUTH_AUTO)
)

// SetSYNAuth sets when SYN authentication is engaged and how long a
// verified source stays verified. Like the other globals it lives in the
// program's memory: set it before attaching; it may change at any time.
func (d *Datapath) SetSYNAuth(mode SYNAuthMode, threshold uint32, verifiedFor time.Duration) error {
	return setGlobals(
		global{"syn_mode", d.objs.SynMode, uint32(mode)},
		global{"syn_auth_threshold", d.objs.SynAuthThreshold, threshold},
		global{"syn_verified_ns", d.objs.SynVerifiedNs, uint64(verifiedFor)},
	)
}

// HalfOpenAction is what a new connection's SYN gets while half-open
// connections are at a bound.
type HalfOpenAction uint32

const (
	HalfOpenChallenge = HalfOpenAction(xdplbHalfOpenActionHALF_OPEN_CHALLENGE)
	HalfOpenDrop      = HalfOpenAction(xdplbHalfOpenActionHALF_OPEN_DROP)
)

// SetHalfOpenBounds bounds the half-open connections of all services
// together (all) and of each service (perService), 0 meaning no bound, and
// says what a SYN over a bound gets. It may change at any time.
func (d *Datapath) SetHalfOpenBounds(all, perService uint32, action HalfOpenAction) error {
	// The action first: a bound set before it would act with the old one.
	return setGlobals(
		global{"half_open_act", d.objs.HalfOpenAct, uint32(action)},
		global{"half_open_svc_max", d.objs.HalfOpenSvcMax, perService},
		global{"half_open_max", d.objs.HalfOpenMax, all},
	)
}

// writeHalfOpen replaces the datapath's running counts of half-open
// connections with a sweep's, per service id and all together, plus what
// the datapath counted while the sweep ran (its counts now less before,
// the counts as the sweep began): the connections opened then are not
// lost to the bound. One the walk saw too counts twice until the next
// sweep, which errs on the side of the bound.
func (d *Datapath) writeHalfOpen(perService map[uint32]int, total int, before []int64) error {
	now, err := readArray[int64](d.objs.HalfOpen, MaxServices+1)
	if err != nil {
		return err
	}
	keys := make([]uint32, MaxServices+1)
	vals := make([]int64, MaxServices+1)
	for i := range keys {
		keys[i] = uint32(i)
		vals[i] = int64(perService[uint32(i)])
	}
	vals[MaxServices] = int64(total)
	for i := range vals {
		vals[i] += now[i] - before[i]
	}
	if _, err := d.objs.HalfOpen.BatchUpdate(keys, vals, nil); err != nil {
		return fmt.Errorf("write half-open counts: %w", err)
	}
	return nil
}

// SetSYNKey sets the key the SYN cookies are made with. A new key makes
// the challenges in flight (a round trip's worth) unanswerable: their
// clients are challenged again.
func (d *Datapath) SetSYNKey(key [16]byte) error {
	k := [2]uint64{binary.NativeEndian.Uint64(key[:8]), binary.NativeEndian.Uint64(key[8:])}
	if err := d.objs.SynKey.Set(k); err != nil {
		return fmt.Errorf("write syn_key: %w", err)
	}
	return nil
}
