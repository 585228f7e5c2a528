package hostnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// procSys is where the kernel's network settings live; a variable so tests
// can point it elsewhere.
var procSys = "/proc/sys/net"

// EnableForwarding turns IPv4 forwarding on for the interface and returns
// the previous value, for RestoreForwarding. bpf_fib_lookup answers
// "forwarding disabled" otherwise, and the balancer forwards by nature.
func EnableForwarding(ifname string) (previous string, err error) {
	old, err := readSetting("ipv4", ifname, "forwarding")
	if err != nil {
		return "", err
	}
	if err := writeSetting("ipv4", ifname, "forwarding", "1"); err != nil {
		return "", err
	}
	return old, nil
}

// RestoreForwarding puts back a value EnableForwarding returned.
func RestoreForwarding(ifname, previous string) error {
	return writeSetting("ipv4", ifname, "forwarding", previous)
}

// IPv6Forwarding is what EnableIPv6Forwarding changed on an interface,
// for RestoreIPv6Forwarding.
type IPv6Forwarding struct {
	// Forwarding is net.ipv6.conf.<interface>.forwarding as it was.
	Forwarding string `json:"forwarding"`
	// AcceptRA is accept_ra as it was, when it was raised from 1 to 2;
	// empty when it was left alone.
	AcceptRA string `json:"accept_ra,omitempty"`
}

// EnableIPv6Forwarding turns IPv6 forwarding on for the interface, as
// EnableForwarding does IPv4's, and returns what it changed. A forwarding
// interface ignores router advertisements unless accept_ra is 2, so where
// forwarding was off, an accept_ra of 1 (the default) is raised to 2
// first: the host keeps the default route and addresses it learns from
// them (SLAAC). Where forwarding was on already, accept_ra is left as it
// is: 1 there means advertisements are ignored on purpose.
func EnableIPv6Forwarding(ifname string) (previous IPv6Forwarding, err error) {
	forwarding, err := readSetting("ipv6", ifname, "forwarding")
	if err != nil {
		return IPv6Forwarding{}, err
	}
	acceptRA, err := readSetting("ipv6", ifname, "accept_ra")
	if err != nil {
		return IPv6Forwarding{}, err
	}
	previous.Forwarding = forwarding
	if acceptRA == "1" && forwarding == "0" {
		if err := writeSetting("ipv6", ifname, "accept_ra", "2"); err != nil {
			return IPv6Forwarding{}, err
		}
		previous.AcceptRA = acceptRA
	}
	if err := writeSetting("ipv6", ifname, "forwarding", "1"); err != nil {
		// Nothing is recorded on failure: accept_ra goes back now.
		if previous.AcceptRA != "" {
			err = errors.Join(err, writeSetting("ipv6", ifname, "accept_ra", previous.AcceptRA))
		}
		return IPv6Forwarding{}, err
	}
	return previous, nil
}

// RestoreIPv6Forwarding puts back what EnableIPv6Forwarding changed:
// forwarding first, so that accept_ra is never 1 on a forwarding
// interface.
func RestoreIPv6Forwarding(ifname string, previous IPv6Forwarding) error {
	if err := writeSetting("ipv6", ifname, "forwarding", previous.Forwarding); err != nil {
		return err
	}
	if previous.AcceptRA == "" {
		return nil
	}
	return writeSetting("ipv6", ifname, "accept_ra", previous.AcceptRA)
}

// readSetting reads net.<family>.conf.<dir>.<setting>, without its
// newline. A missing interface gives an error that wraps os.ErrNotExist.
func readSetting(family, dir, setting string) (string, error) {
	b, err := os.ReadFile(filepath.Join(procSys, family, "conf", dir, setting))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", confName(family, dir, setting), err)
	}
	return strings.TrimSpace(string(b)), nil
}

// writeSetting writes net.<family>.conf.<dir>.<setting>.
func writeSetting(family, dir, setting, value string) error {
	if err := os.WriteFile(filepath.Join(procSys, family, "conf", dir, setting), []byte(value), 0o644); err != nil {
		return fmt.Errorf("set %s to %s: %w", confName(family, dir, setting), value, err)
	}
	return nil
}

// EphemeralRange is the port range the kernel picks source ports from for
// the host's own outgoing connections, of either family.
func EphemeralRange() (lo, hi uint16, err error) {
	path := filepath.Join(procSys, "ipv4", "ip_local_port_range")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", path, err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("%s: unexpected content %q", path, b)
	}
	l, err1 := strconv.ParseUint(f[0], 10, 16)
	h, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%s: unexpected content %q", path, b)
	}
	return uint16(l), uint16(h), nil
}

// errAddrNotAvail is what the kernel answers when asked to remove an
// address an interface does not have.
var errAddrNotAvail = unix.EADDRNOTAVAIL
