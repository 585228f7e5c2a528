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
	for _, v := range []struct {
		name string
		set  func() error
	}{
		{"syn_mode", func() error { return d.objs.SynMode.Set(uint32(mode)) }},
		{"syn_auth_threshold", func() error { return d.objs.SynAuthThreshold.Set(threshold) }},
		{"syn_verified_ns", func() error { return d.objs.SynVerifiedNs.Set(uint64(verifiedFor)) }},
	} {
		if err := v.set(); err != nil {
			return fmt.Errorf("write %s: %w", v.name, err)
		}
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
