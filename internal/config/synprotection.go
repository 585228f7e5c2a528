package config

import (
	"slices"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// SYNProtection says when the datapath makes a new TCP client prove its
// source address before the connection takes a local port and a
// conntrack entry (SYN authentication). Every new connection holds both
// for up to conntrack.timeouts.syn_sent, so a flood of SYNs from spoofed
// sources could otherwise fill the local ports.
//
// A SYN from a source not yet verified is answered with a SYN-ACK whose
// acknowledgement number is a cookie, and nothing is kept. The client's
// TCP answers that unexpected acknowledgement with a reset carrying the
// cookie, which a spoofed source, never seeing the SYN-ACK, cannot send;
// the source is then verified for VerifiedFor, and the client's
// retransmitted SYN opens the connection as usual.
type SYNProtection struct {
	// Mode says when SYNs from unverified sources are challenged.
	Mode SYNAuthMode `yaml:"mode"`
	// Threshold is the rate of new-connection SYNs, per second and for
	// all services together, above which SYNAuthAuto challenges.
	// Other modes ignore it.
	Threshold uint32 `yaml:"threshold"`
	// VerifiedFor is how long a source that proved its address stays
	// verified: its new connections meanwhile are not challenged.
	VerifiedFor time.Duration `yaml:"verified_for"`
	// HalfOpen bounds the connections whose client has not completed the
	// handshake, whatever Mode says.
	HalfOpen HalfOpenBudget `yaml:"half_open"`
}

// HalfOpenBudget bounds half-open TCP connections (client SYN seen, its
// handshake ACK not yet), each of which holds a local port and both
// conntrack halves for up to conntrack.timeouts.syn_sent. A new
// connection's SYN that finds a bound reached gets Action.
type HalfOpenBudget struct {
	// Max bounds them for all services together; 0: no bound.
	Max uint32 `yaml:"max"`
	// MaxPerService bounds them for each service; 0: no bound.
	MaxPerService uint32 `yaml:"max_per_service"`
	// Action is what a SYN over a bound gets.
	Action HalfOpenAction `yaml:"action"`
}

// HalfOpenAction is what a new connection's SYN gets over a half-open
// bound.
type HalfOpenAction string

const (
	// HalfOpenChallenge challenges it as SYN authentication does (its
	// source, once verified, opens connections as usual).
	HalfOpenChallenge HalfOpenAction = "challenge"
	// HalfOpenDrop drops it: no new connection until the count falls.
	HalfOpenDrop HalfOpenAction = "drop"
)

var halfOpenActions = []HalfOpenAction{HalfOpenChallenge, HalfOpenDrop}

// SYNAuthMode says when the datapath challenges new TCP connections.
type SYNAuthMode string

// The values SYNProtection.Mode may take, in the order messages list
// them.
const (
	// SYNAuthOff: no SYN is ever challenged.
	SYNAuthOff SYNAuthMode = "off"
	// SYNAuthAlways: every new connection from an unverified source is
	// challenged. It costs a new client one round trip plus its SYN
	// retransmission delay, once per VerifiedFor.
	SYNAuthAlways SYNAuthMode = "always"
	// SYNAuthAuto: as SYNAuthAlways, but only while new-connection SYNs
	// exceed Threshold per second.
	SYNAuthAuto SYNAuthMode = "auto"
)

var synAuthModes = []SYNAuthMode{SYNAuthOff, SYNAuthAlways, SYNAuthAuto}

// Bounds of the syn_protection fields, worded once for the decoder and
// the validator.
const (
	synThresholdBounds               = "(1-10000000 SYNs per second)"
	minSYNThreshold, maxSYNThreshold = 1, 10_000_000

	verifiedForBounds              = "(1s to 24h)"
	minVerifiedFor, maxVerifiedFor = time.Second, 24 * time.Hour

	halfOpenBounds = "(0 for no bound, or at most 1000000000 connections)"
	maxHalfOpen    = 1_000_000_000
)

func (d *decoder) synProtection(n *yaml.Node, path string, s *SYNProtection) {
	d.mapping(n, path, fieldDecoders{
		"mode": func(v *yaml.Node, p string) {
			if str, ok := d.str(v, p); ok {
				s.Mode = SYNAuthMode(str)
			}
		},
		"threshold": func(v *yaml.Node, p string) {
			if i, ok := d.integer(v, p, "a threshold "+synThresholdBounds, minSYNThreshold, maxSYNThreshold); ok {
				s.Threshold = uint32(i)
			}
		},
		"verified_for": func(v *yaml.Node, p string) { d.durationWithin(v, p, &s.VerifiedFor, verifiedForBounds) },
		"half_open":    func(v *yaml.Node, p string) { d.halfOpen(v, p, &s.HalfOpen) },
	})
}

func (d *decoder) halfOpen(n *yaml.Node, path string, h *HalfOpenBudget) {
	bound := func(dst *uint32) func(*yaml.Node, string) {
		return func(v *yaml.Node, p string) {
			if i, ok := d.integer(v, p, "a bound "+halfOpenBounds, 0, maxHalfOpen); ok {
				*dst = uint32(i)
			}
		}
	}
	d.mapping(n, path, fieldDecoders{
		"max":             bound(&h.Max),
		"max_per_service": bound(&h.MaxPerService),
		"action": func(v *yaml.Node, p string) {
			if str, ok := d.str(v, p); ok {
				h.Action = HalfOpenAction(str)
			}
		},
	})
}

// synProtection checks the syn_protection section.
func (ps *problems) synProtection(s SYNProtection) {
	if !slices.Contains(synAuthModes, s.Mode) {
		ps.add("syn_protection.mode", "%q is not a mode (accepted: %s)", s.Mode, join(synAuthModes))
	}
	if t := s.Threshold; t < minSYNThreshold || t > maxSYNThreshold {
		ps.add("syn_protection.threshold", "%d is not a threshold %s", t, synThresholdBounds)
	}
	if v := s.VerifiedFor; v < minVerifiedFor || v > maxVerifiedFor {
		ps.add("syn_protection.verified_for", "%s is out of range %s", v, verifiedForBounds)
	}
	if !slices.Contains(halfOpenActions, s.HalfOpen.Action) {
		ps.add("syn_protection.half_open.action", "%q is not an action (accepted: %s)", s.HalfOpen.Action, join(halfOpenActions))
	}
	for _, b := range []struct {
		field string
		v     uint32
	}{{"max", s.HalfOpen.Max}, {"max_per_service", s.HalfOpen.MaxPerService}} {
		if b.v > maxHalfOpen {
			ps.add("syn_protection.half_open."+b.field, "%d is not a bound %s", b.v, halfOpenBounds)
		}
	}
}

// synProtectionSection renders the syn_protection section of c with the
// fields that differ from their defaults.
func synProtectionSection(c *Config) *yaml.Node {
	s, ds := c.SYNProtection, defaultSYNProtection
	m := mapping()
	setIf(m, "mode", s.Mode != ds.Mode, string(s.Mode))
	setIf(m, "threshold", s.Threshold != ds.Threshold, strconv.FormatUint(uint64(s.Threshold), 10))
	setIf(m, "verified_for", s.VerifiedFor != ds.VerifiedFor, s.VerifiedFor.String())
	h, dh := s.HalfOpen, ds.HalfOpen
	ho := mapping()
	setIf(ho, "max", h.Max != dh.Max, strconv.FormatUint(uint64(h.Max), 10))
	setIf(ho, "max_per_service", h.MaxPerService != dh.MaxPerService, strconv.FormatUint(uint64(h.MaxPerService), 10))
	setIf(ho, "action", h.Action != dh.Action, string(h.Action))
	if len(ho.Content) > 0 {
		set(m, "half_open", ho)
	}
	return m
}
