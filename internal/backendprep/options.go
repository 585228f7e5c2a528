package backendprep

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Mode is the forwarding of the services a backend serves, named as a
// service's forwarding is in the configuration.
type Mode string

// The DSR modes.
const (
	DSRL2   Mode = "dsr-l2"
	DSRIPIP Mode = "dsr-ipip"
	DSRGUE  Mode = "dsr-gue"
)

var modes = []Mode{DSRL2, DSRIPIP, DSRGUE}

// tunnelled reports whether m wraps the client's packet in a tunnel.
func (m Mode) tunnelled() bool { return m == DSRIPIP || m == DSRGUE }

// DefaultGUEPort is the UDP port GUE packets go to unless configured
// otherwise, as dsr.gue_port defaults in the balancer's configuration.
const DefaultGUEPort = 6080

// Options is what Apply prepares the host for.
type Options struct {
	// VIPs are the addresses of the services the host is a backend of.
	VIPs []netip.Addr
	Mode Mode
	// KernelDecap has the kernel's own devices take the tunnels apart
	// (tunl0, and a fou receiver for GUE) rather than xdplb decap.
	KernelDecap bool
	// GUEPort is the UDP port of the kernel's GUE receiver: dsr-gue
	// with KernelDecap only.
	GUEPort uint16
}

// Flags are apply's command-line flags as the operator gave them.
type Flags struct {
	VIPs        []string
	Mode        string
	KernelDecap bool
	GUEPort     int
	// GUEPortSet says --gue-port was given, not defaulted.
	GUEPortSet bool
}

// Options returns the options f asks for, or every problem with f at
// once, one a line, each naming its flag.
func (f Flags) Options() (Options, error) {
	var problems []error
	bad := func(flag, format string, args ...any) {
		problems = append(problems, fmt.Errorf(flag+": "+format, args...))
	}
	o := Options{Mode: Mode(f.Mode), KernelDecap: f.KernelDecap, GUEPort: DefaultGUEPort}

	if len(f.VIPs) == 0 {
		bad("--vip", "missing: give the VIPs of the services this host is a backend of, e.g. --vip 10.0.0.100,10.0.0.101")
	}
	seen := map[netip.Addr]bool{}
	for _, s := range f.VIPs {
		a, err := ParseVIP(s)
		if err != nil {
			bad("--vip", "%v", err)
			continue
		}
		if !seen[a] {
			seen[a] = true
			o.VIPs = append(o.VIPs, a)
		}
	}

	accepted := make([]string, len(modes))
	for i, m := range modes {
		accepted[i] = string(m)
	}
	switch {
	case f.Mode == "":
		bad("--mode", "missing: one of %s, the forwarding of the services", strings.Join(accepted, ", "))
	case f.Mode == "fullnat":
		bad("--mode", "fullnat backends need no preparation (the balancer sends them packets addressed to their own address); "+
			"prepare for one of %s", strings.Join(accepted, ", "))
	case !o.Mode.valid():
		bad("--mode", "%q is not a DSR mode (accepted: %s)", f.Mode, strings.Join(accepted, ", "))
	}

	if f.KernelDecap && o.Mode == DSRL2 {
		bad("--kernel-decap", "dsr-l2 sends the client's packet as it is, with nothing to decapsulate; leave it out")
	}
	if f.GUEPortSet {
		switch {
		case f.GUEPort < 1 || f.GUEPort > 65535:
			bad("--gue-port", "%d is not a port (1-65535)", f.GUEPort)
		case o.Mode.valid() && o.Mode != DSRGUE:
			bad("--gue-port", "only dsr-gue has a GUE port; leave it out for %s", o.Mode)
		case o.Mode == DSRGUE && !f.KernelDecap:
			bad("--gue-port", "it is the port of the kernel's GUE receiver, made with --kernel-decap only (xdplb decap has its own)")
		default:
			o.GUEPort = uint16(f.GUEPort)
		}
	}
	if len(problems) > 0 {
		return Options{}, errors.Join(problems...)
	}
	return o, nil
}

func (m Mode) valid() bool {
	for _, v := range modes {
		if m == v {
			return true
		}
	}
	return false
}

// ParseVIP reads a VIP: an IPv4 unicast address.
func ParseVIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	switch {
	case err != nil || a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address", s)
	case a.Is4In6() || a.Is6():
		return netip.Addr{}, fmt.Errorf("%s is an IPv6 address; IPv6 is not supported yet", a)
	case a.IsUnspecified():
		return netip.Addr{}, fmt.Errorf("%s is the unspecified address", a)
	case a.IsLoopback():
		return netip.Addr{}, fmt.Errorf("%s is a loopback address", a)
	case a.IsMulticast():
		return netip.Addr{}, fmt.Errorf("%s is a multicast address", a)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return netip.Addr{}, fmt.Errorf("%s is the broadcast address", a)
	}
	return a, nil
}
