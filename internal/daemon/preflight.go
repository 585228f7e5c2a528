package daemon

import (
	"fmt"
	"net/netip"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/hostnet"
)

// checkPorts refuses a NAT port range that overlaps the kernel's ephemeral
// range on an address the host itself uses: the kernel could pick the same
// source port for its own connection, and the backend's replies to it would
// be taken for a balanced connection's (or the other way round). Addresses
// xdplb added itself (ours) are dedicated to it, not shared.
func checkPorts(local config.Local, ours func(netip.Addr) bool) error {
	lo, hi, err := hostnet.EphemeralRange()
	if err != nil {
		return err
	}
	if local.Ports.Max < lo || local.Ports.Min > hi {
		return nil
	}
	var shared []netip.Addr
	for _, a := range local.Addresses {
		if ours(a) {
			continue
		}
		has, err := hostnet.HostHas(a)
		if err != nil {
			return err
		}
		if has {
			shared = append(shared, a)
		}
	}
	if len(shared) == 0 {
		return nil
	}
	return fmt.Errorf("local.ports: %s overlaps the kernel's ephemeral port range %d-%d, and local address %s is also the host's own; "+
		"choose local.ports outside %d-%d (for example 10000-19999) or use local addresses dedicated to the balancer",
		local.Ports, lo, hi, shared[0], lo, hi)
}
