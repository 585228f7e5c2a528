package hostnet

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// procSys is where the kernel's network settings live; a variable so tests
// can point it elsewhere.
var procSys = "/proc/sys/net/ipv4"

// EnableForwarding turns IPv4 forwarding on for the interface and returns
// the previous value, for RestoreForwarding. bpf_fib_lookup answers
// "forwarding disabled" otherwise, and the balancer forwards by nature.
func EnableForwarding(ifname string) (previous string, err error) {
	path := filepath.Join(procSys, "conf", ifname, "forwarding")
	old, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read forwarding of %s: %w", ifname, err)
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return "", fmt.Errorf("enable forwarding on %s: %w", ifname, err)
	}
	return strings.TrimSpace(string(old)), nil
}

// RestoreForwarding puts back a value EnableForwarding returned.
func RestoreForwarding(ifname, previous string) error {
	path := filepath.Join(procSys, "conf", ifname, "forwarding")
	if err := os.WriteFile(path, []byte(previous), 0o644); err != nil {
		return fmt.Errorf("restore forwarding on %s: %w", ifname, err)
	}
	return nil
}

// EphemeralRange is the port range the kernel picks source ports from for
// the host's own outgoing connections.
func EphemeralRange() (lo, hi uint16, err error) {
	path := filepath.Join(procSys, "ip_local_port_range")
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
