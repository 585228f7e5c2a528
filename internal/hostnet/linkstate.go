package hostnet

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// NotForwarding says why the interface name cannot carry balanced traffic
// now: it is missing, down, or has no XDP program attached. Empty when it
// can. A node that announces its VIPs by BGP withdraws them for any of
// these, so that a route never leads to a balancer that drops.
func NotForwarding(name string) string {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Sprintf("interface %s: %v", name, err)
	}
	a := l.Attrs()
	// Unknown is what interfaces without carrier reporting (some virtual
	// ones) say while up.
	if a.Flags&net.FlagUp == 0 || (a.OperState != netlink.OperUp && a.OperState != netlink.OperUnknown) {
		return fmt.Sprintf("interface %s is down", name)
	}
	if a.Xdp == nil || !a.Xdp.Attached {
		return fmt.Sprintf("no XDP program is attached to %s", name)
	}
	return ""
}
