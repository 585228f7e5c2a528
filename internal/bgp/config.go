package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults for the zero values of Config and Peer.
const (
	// DefaultHoldTime lets a router drop a silent node within 9s when BFD
	// is off (the verified ECMP recipe in the research notes); BGP's own
	// 90s would blackhole a dead node's share of the traffic for minutes.
	// The session uses the smaller of both ends' hold times.
	DefaultHoldTime = 9 * time.Second
	// DefaultRestartTime is how long a router keeps this node's routes
	// while a hitless restart brings the next daemon up.
	DefaultRestartTime = 120 * time.Second
	// DefaultShutdownWait is the daemon's default for
	// Config.ShutdownWait: how long a graceful Stop leaves the routes
	// marked GRACEFUL_SHUTDOWN before withdrawing them, so the routers
	// move traffic to the other nodes first (RFC 8326 section 4).
	DefaultShutdownWait = 5 * time.Second
	// DefaultBFDMultiplier is RFC 5880's usual detect multiplier.
	DefaultBFDMultiplier = 3
	// DefaultPort is BGP's TCP port.
	DefaultPort = 179
)

// Limits checked by Validate.
const (
	// MinHoldTime is RFC 4271's smallest hold time other than 0; 0 (no
	// keepalives) is refused, since a router would then never notice a
	// dead node.
	MinHoldTime = 3 * time.Second
	// MaxHoldTime is the largest hold time the OPEN message carries.
	MaxHoldTime = 65535 * time.Second
	// MaxRestartTime is the largest restart time the graceful restart
	// capability carries (12 bits of seconds).
	MaxRestartTime = 4095 * time.Second
	// MinBFDInterval keeps a typo (1 meaning 1ns) from flooding the link.
	MinBFDInterval = 10 * time.Millisecond
	// MaxPasswordLen is Linux's TCP_MD5SIG_MAXKEYLEN.
	MaxPasswordLen = 80
)

// Config is the speaker's configuration. The daemon fills it from the
// bgp: section of its configuration; the error messages of Validate name
// fields by their yaml names under bgp.
type Config struct {
	// ASN is this node's autonomous system number.
	ASN uint32
	// RouterID is this node's BGP identifier, an IPv4 address (also for
	// IPv6-only nodes: BGP identifiers are 32 bits).
	RouterID netip.Addr
	// ListenPort is the TCP port to accept sessions on; -1 (the zero
	// value is made -1 by Defaults) opens no listener and only connects
	// out, so the daemon needs no port 179 and collides with no other
	// BGP daemon on the host. Set 179 for routers that only accept.
	ListenPort int32
	// Peers are the routers to announce to.
	Peers []Peer
	// Communities are added to every announced prefix, as "ASN:value"
	// with both halves 0-65535 (e.g. "65001:100").
	Communities []string
	// GracefulRestart makes a hitless restart keep the routes.
	GracefulRestart GracefulRestart
	// ShutdownWait is how long a graceful Stop shows the
	// GRACEFUL_SHUTDOWN community before withdrawing; 0 withdraws at
	// once. Not defaulted here, since 0 is a choice: the daemon's
	// configuration defaults it to DefaultShutdownWait.
	ShutdownWait time.Duration
}

// Peer is one router.
type Peer struct {
	// Address is the router's address. IPv4 peers carry the IPv4
	// prefixes, IPv6 peers the IPv6 prefixes.
	Address netip.Addr
	// ASN is the router's AS; it must differ from Config.ASN (see the
	// package comment on why iBGP is refused).
	ASN uint32
	// Port is the router's TCP port. Default 179.
	Port uint16
	// LocalAddress, if set, is the source address of the session and so
	// the next hop of every announced prefix. Default: the address the
	// kernel picks towards Address.
	LocalAddress netip.Addr
	// HoldTime is the proposed hold time, whole seconds, at least 3s.
	// Default DefaultHoldTime.
	HoldTime time.Duration
	// Keepalive is the keepalive interval, whole seconds, below
	// HoldTime. Default HoldTime/3.
	Keepalive time.Duration
	// PasswordFile holds the TCP MD5 (RFC 2385) password of the
	// session, a trailing newline is ignored. Empty: no password. The
	// file is read by New and Update, so a changed password takes a
	// reload.
	PasswordFile string
	// BFD, if set, runs single-hop BFD (RFC 5880/5881) with the router
	// and resets the session when it fails: sub-second failure
	// detection instead of the hold time. The router must run BFD too.
	BFD *BFD
	// Multihop allows a router that is not on a connected network
	// (eBGP multihop, TTL 255). BFD is single-hop only and refused
	// with it.
	Multihop bool
}

// BFD is a peer's BFD timing. A failure is detected after Interval *
// Multiplier.
type BFD struct {
	// Interval is both the transmit and the required receive interval,
	// at least MinBFDInterval.
	Interval time.Duration
	// Multiplier is the detect multiplier, 1-255. Default 3.
	Multiplier uint8
}

// GracefulRestart is RFC 4724 graceful restart, in the restarting
// speaker's role: the routers keep this node's routes while the daemon
// is replaced (see Speaker.Stop).
type GracefulRestart struct {
	// Enabled advertises the capability to every peer.
	Enabled bool
	// RestartTime is how long a router keeps the routes after the
	// session went down without a NOTIFICATION, until the next daemon
	// re-establishes it. Whole seconds, at most 4095s. Default
	// DefaultRestartTime.
	RestartTime time.Duration
	// Restarting is set by the daemon, not read from its configuration:
	// this process takes over from one that stopped with Stop(ctx,
	// false). The OPEN then carries the Restart State and Forwarding
	// State bits, so a router keeps the stale routes until this node's
	// End-of-RIB instead of dropping them at once.
	Restarting bool
}

// Defaults fills every unset field that has a default (ShutdownWait has
// none: 0 is a choice).
func (c *Config) Defaults() {
	if c.ListenPort == 0 {
		c.ListenPort = -1
	}
	if c.GracefulRestart.RestartTime == 0 {
		c.GracefulRestart.RestartTime = DefaultRestartTime
	}
	for i := range c.Peers {
		p := &c.Peers[i]
		if p.Port == 0 {
			p.Port = DefaultPort
		}
		if p.HoldTime == 0 {
			p.HoldTime = DefaultHoldTime
		}
		if p.Keepalive == 0 {
			p.Keepalive = (p.HoldTime / 3).Truncate(time.Second)
		}
		if p.BFD != nil && p.BFD.Multiplier == 0 {
			b := *p.BFD // the caller's BFD stays untouched
			b.Multiplier = DefaultBFDMultiplier
			p.BFD = &b
		}
	}
}

// Validate returns every problem with c at once, each naming the field
// to change. It expects Defaults to have run.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("bgp.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.ASN == 0 {
		bad("asn", "not set")
	} else if reservedASN(c.ASN) {
		bad("asn", "%d is reserved and cannot be used in a session", c.ASN)
	}
	switch {
	case !c.RouterID.IsValid():
		bad("router_id", "not set")
	case !c.RouterID.Unmap().Is4() || c.RouterID.IsUnspecified():
		bad("router_id", "%s is not an IPv4 address other than 0.0.0.0 (a BGP identifier is 32 bits)", c.RouterID)
	}
	if c.ListenPort != -1 && (c.ListenPort < 1 || c.ListenPort > 65535) {
		bad("listen_port", "%d is not a port (1-65535, or -1 for no listener)", c.ListenPort)
	}
	if len(c.Peers) == 0 {
		bad("peers", "none; give at least one router to announce to")
	}
	seen := map[netip.Addr]int{}
	for i, p := range c.Peers {
		field := fmt.Sprintf("peers[%d]", i)
		if j, dup := seen[p.Address.Unmap()]; dup && p.Address.IsValid() {
			bad(field+".address", "%s is also peers[%d]", p.Address, j)
		}
		seen[p.Address.Unmap()] = i
		errs = append(errs, p.validate(field, c.ASN)...)
	}
	if c.ShutdownWait < 0 {
		bad("shutdown_wait", "%s is negative", c.ShutdownWait)
	}
	for i, comm := range c.Communities {
		if _, err := parseCommunity(comm); err != nil {
			bad(fmt.Sprintf("communities[%d]", i), "%v", err)
		}
	}
	if gr := c.GracefulRestart.RestartTime; gr < time.Second || gr > MaxRestartTime || gr%time.Second != 0 {
		bad("graceful_restart.restart_time", "%s is not whole seconds between 1s and %s", gr, MaxRestartTime)
	}
	return errors.Join(errs...)
}

// validate returns the problems with one peer; field is its path.
func (p *Peer) validate(field string, localASN uint32) []error {
	var errs []error
	bad := func(sub, format string, args ...any) {
		errs = append(errs, fmt.Errorf("bgp.%s.%s: %s", field, sub, fmt.Sprintf(format, args...)))
	}
	switch a := p.Address.Unmap(); {
	case !a.IsValid():
		bad("address", "not set")
	case a.IsUnspecified() || a.IsMulticast():
		bad("address", "%s is not a router's address", p.Address)
	case a.Is6() && a.IsLinkLocalUnicast():
		bad("address", "%s is link-local; give a global address (link-local peers need an interface, which is not supported)", p.Address)
	}
	switch {
	case p.ASN == 0:
		bad("asn", "not set")
	case reservedASN(p.ASN):
		bad("asn", "%d is reserved and cannot be used in a session", p.ASN)
	case p.ASN == localASN:
		bad("asn", "%d is this node's own AS: iBGP is not supported (a backup prefix carries this AS twice more, which an iBGP router drops as a loop); peer from a private AS of its own", p.ASN)
	}
	if l := p.LocalAddress; l.IsValid() {
		switch {
		case l.Unmap().IsUnspecified():
			bad("local_address", "%s is unspecified; leave it out to let the kernel choose", l)
		case p.Address.IsValid() && l.Unmap().Is4() != p.Address.Unmap().Is4():
			bad("local_address", "%s is not of the family of address %s", l, p.Address)
		}
	}
	if h := p.HoldTime; h < MinHoldTime || h > MaxHoldTime || h%time.Second != 0 {
		bad("hold_time", "%s is not whole seconds between %s and %s", h, MinHoldTime, MaxHoldTime)
	} else if k := p.Keepalive; k < time.Second || k >= h || k%time.Second != 0 {
		bad("keepalive", "%s is not whole seconds from 1s to below hold_time %s", k, h)
	}
	if b := p.BFD; b != nil {
		if b.Interval < MinBFDInterval || b.Interval > time.Duration(1<<32-1)*time.Microsecond {
			bad("bfd.interval", "%s is below %s or too long", b.Interval, MinBFDInterval)
		}
		if b.Multiplier == 0 {
			bad("bfd.multiplier", "0 is not a multiplier (1-255)")
		}
		if p.Multihop {
			bad("bfd", "single-hop BFD cannot run with multihop; turn one off")
		}
	}
	return errs
}

// reservedASN says whether asn is one no session may use: AS_TRANS
// (RFC 6793) and the last 16- and 32-bit numbers (RFC 7300).
func reservedASN(asn uint32) bool {
	return asn == 23456 || asn == 65535 || asn == 4294967295
}

// readPassword reads a TCP MD5 password file: its content without a
// trailing newline, non-empty and at most MaxPasswordLen bytes.
func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the TCP MD5 password: %w", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	switch {
	case pw == "":
		return "", fmt.Errorf("%s is empty; leave password_file out for no password", path)
	case len(pw) > MaxPasswordLen:
		return "", fmt.Errorf("%s holds %d bytes, Linux takes at most %d", path, len(pw), MaxPasswordLen)
	}
	return pw, nil
}

// parseCommunities turns "ASN:value" strings into RFC 1997 communities.
func parseCommunities(in []string) ([]uint32, error) {
	out := make([]uint32, 0, len(in))
	for _, s := range in {
		c, err := parseCommunity(s)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// parseCommunity parses one "ASN:value" community. The well-known range
// (0:x and 65535:x) is refused: those values mean something to every
// router (65535:0 is what a graceful Stop adds).
func parseCommunity(s string) (uint32, error) {
	hi, lo, ok := strings.Cut(s, ":")
	a, errA := strconv.ParseUint(hi, 10, 16)
	v, errV := strconv.ParseUint(lo, 10, 16)
	switch {
	case !ok || errA != nil || errV != nil:
		return 0, fmt.Errorf("%q is not ASN:value with both 0-65535", s)
	case a == 0 || a == 65535:
		return 0, fmt.Errorf("%q is in a reserved range (0:x, 65535:x)", s)
	}
	return uint32(a)<<16 | uint32(v), nil
}
