package importer

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ipv4 reads an address xdplb can use.
func ipv4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	case a.Is4In6():
		return a.Unmap(), nil
	case a.Is6():
		return netip.Addr{}, fmt.Errorf("%s is an IPv6 address; xdplb does not support IPv6 yet", s)
	}
	return a, nil
}

// port reads a port number, 1-65535.
func port(s string) (uint16, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return uint16(n), nil
}

// timer reads a keepalived <TIMER>: seconds, with a fraction if wanted
// (2.5), at most a day.
func timer(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 86400 {
		return 0, fmt.Errorf("%q is not a time in seconds (0 to 86400)", s)
	}
	return time.Duration(math.Round(f*1e6)) * time.Microsecond, nil
}

// count reads a non-negative integer.
func count(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a count (0 or more)", s)
	}
	return n, nil
}

// boolean reads a keepalived <BOOL>; no value means true.
func boolean(args []string) (bool, error) {
	if len(args) == 0 {
		return true, nil
	}
	switch strings.ToLower(args[0]) {
	case "on", "true", "yes":
		return true, nil
	case "off", "false", "no":
		return false, nil
	}
	return false, fmt.Errorf("%q is not on|off|true|false|yes|no", args[0])
}

// schedulers maps the IPVS schedulers xdplb has an equivalent of.
var schedulers = map[string]string{"rr": "rr", "wrr": "wrr", "sh": "sh", "mh": "maglev", "lc": "lc", "wlc": "wlc"}

// otherSchedulers names the IPVS schedulers xdplb has no equivalent of.
var otherSchedulers = map[string]string{
	"lblc":  "locality-based least-connection",
	"lblcr": "locality-based least-connection with replication",
	"dh":    "destination hashing",
	"sed":   "shortest expected delay",
	"nq":    "never queue",
	"fo":    "weighted failover",
	"ovf":   "weighted overflow",
	"twos":  "weighted random twos choice",
}

// scheduler maps an IPVS scheduler's name; an error says why it cannot
// be, and that rr is used instead.
func scheduler(name string) (string, error) {
	if s, ok := schedulers[strings.ToLower(name)]; ok {
		return s, nil
	}
	if what, ok := otherSchedulers[strings.ToLower(name)]; ok {
		return "rr", fmt.Errorf("%q (%s) is not supported: xdplb has rr, wrr, maglev, sh, lc and wlc; "+
			"the service uses rr, review it", name, what)
	}
	return "rr", fmt.Errorf("%q is not an IPVS scheduler xdplb knows; the service uses rr, review it", name)
}

// mhNote is the difference between IPVS's mh and xdplb's maglev.
const mhNote = "mapped to maglev, which hashes the whole 5-tuple: a client's connections spread over the backends. " +
	"IPVS's mh hashes the client address only unless mh-port is set; use scheduler: sh to keep a client on one backend"

// leastNote is the difference between IPVS's lc and wlc and xdplb's.
const leastNote = "xdplb counts a backend's connections as of the conntrack collector's last sweep (every gc_interval) " +
	"plus those it opened since, and compares at most 16 backends (a random window of 16 in a larger service)"

// schedulerNote is the difference worth noting for a mapped scheduler,
// if any; mhPort says whether mh hashes ports too.
func schedulerNote(name string, mhPort bool) string {
	switch strings.ToLower(name) {
	case "mh":
		if !mhPort {
			return mhNote
		}
	case "lc", "wlc":
		return leastNote
	}
	return ""
}
