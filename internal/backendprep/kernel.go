package backendprep

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoIPIP says the kernel cannot take IPIP tunnels apart: built without
// CONFIG_NET_IPIP, or the module cannot be loaded.
var ErrNoIPIP = errors.New("this kernel has no ipip tunnels (CONFIG_NET_IPIP, module ipip)")

// ErrNoFOU says the kernel has no UDP tunnel receiver for GUE.
var ErrNoFOU = errors.New("this kernel has no GUE receiver (CONFIG_NET_FOU, module fou)")

// useXDPDecap is the way out of both.
const useXDPDecap = "take the tunnels apart with xdplb decap instead (leave out --kernel-decap)"

// tunnel is what ensureTunnel did.
type tunnel struct {
	// created: the kernel made tunl0 at our request, as a device of its
	// own (a kernel that makes no catch-all devices in new namespaces);
	// undo deletes it. Loaded: the request loaded the ipip module, which
	// made the catch-all tunl0 (not deletable, not undone).
	created, loaded bool
	setUp           bool
}

// ensureTunnel makes sure tunl0 exists and is up. Asking for an ipip
// device loads the ipip module if it is missing (rtnetlink requests
// "rtnl-link-ipip"), and loading it makes the catch-all tunl0 in every
// namespace; the request then fails with EEXIST, which is success here.
// Where the kernel makes no catch-all device (net.core.
// fb_tunnels_only_for_init_net), the request makes a tunl0 with no local
// or remote address, which takes in the same packets.
func ensureTunnel() (tunnel, error) {
	var t tunnel
	l, err := netlink.LinkByName(tunnelDev)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		err = netlink.LinkAdd(&netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: tunnelDev}})
		switch {
		case err == nil:
			t.created = true
		case errors.Is(err, unix.EEXIST):
			t.loaded = true
		case errors.Is(err, unix.EOPNOTSUPP):
			return t, fmt.Errorf("create %s: %w: %s", tunnelDev, ErrNoIPIP, useXDPDecap)
		default:
			return t, fmt.Errorf("create %s: %w", tunnelDev, err)
		}
		l, err = netlink.LinkByName(tunnelDev)
		if errors.As(err, &notFound) {
			// EEXIST for another name: an ipip device with no
			// addresses exists already and takes the packets.
			return t, fmt.Errorf("create %s: an ipip device with no local or remote address exists under another name "+
				"and takes the tunnelled packets; set it up and its rp_filter to 0 yourself, or delete it", tunnelDev)
		}
	}
	if err != nil {
		return t, fmt.Errorf("look up %s: %w", tunnelDev, err)
	}
	if l.Type() != "ipip" {
		return t, fmt.Errorf("%s is a %s device, not the kernel's ipip one; rename or delete it", tunnelDev, l.Type())
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(l); err != nil {
			return t, fmt.Errorf("set %s up: %w", tunnelDev, err)
		}
		t.setUp = true
	}
	return t, nil
}

// linkState is what undo and status find of a recorded link.
type linkState struct{ exists, up bool }

func readLink(name string) (linkState, error) {
	l, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return linkState{}, nil
	}
	if err != nil {
		return linkState{}, fmt.Errorf("look up %s: %w", name, err)
	}
	return linkState{exists: true, up: l.Attrs().Flags&net.FlagUp != 0}, nil
}

func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

func setLinkDown(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := netlink.LinkSetDown(l); err != nil {
		return fmt.Errorf("set %s down: %w", name, err)
	}
	return nil
}

// checkFOU makes sure the kernel has fou: asking for its generic netlink
// family loads the module if it is missing.
func checkFOU() error {
	if _, err := netlink.FouFamilyId(); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%w: %s", ErrNoFOU, useXDPDecap)
		}
		return fmt.Errorf("look up the kernel's fou interface: %w", err)
	}
	return nil
}

// guePorts lists the UDP ports with a kernel GUE receiver, and the other
// fou receivers by port with their IP protocol.
func guePorts() (gue []uint16, direct map[uint16]int, err error) {
	fous, err := netlink.FouList(netlink.FAMILY_V4)
	if err != nil {
		return nil, nil, fmt.Errorf("list fou receivers: %w", err)
	}
	direct = map[uint16]int{}
	for _, f := range fous {
		if f.EncapType == netlink.FOU_ENCAP_GUE {
			gue = append(gue, uint16(f.Port))
		} else {
			direct[uint16(f.Port)] = f.Protocol
		}
	}
	return gue, direct, nil
}

// ensureGUEPort opens a kernel GUE receiver on UDP port, unless there is
// one; added says it made one. GUE variant 1 (an IPv4 packet straight
// after the UDP header) goes on to the ipip handler, hence tunl0.
func ensureGUEPort(port uint16) (added bool, err error) {
	gue, direct, err := guePorts()
	if err != nil {
		return false, err
	}
	if slices.Contains(gue, port) {
		return false, nil
	}
	if proto, ok := direct[port]; ok {
		return false, fmt.Errorf("UDP port %d has a fou receiver for IP protocol %d, not GUE: "+
			"remove it (ip fou del port %d) or choose another --gue-port", port, proto, port)
	}
	err = netlink.FouAdd(netlink.Fou{Family: netlink.FAMILY_V4, Port: int(port), EncapType: netlink.FOU_ENCAP_GUE})
	if errors.Is(err, unix.EADDRINUSE) {
		return false, fmt.Errorf("open a GUE receiver on UDP port %d: another socket has the port; choose another --gue-port", port)
	}
	if err != nil {
		return false, fmt.Errorf("open a GUE receiver on UDP port %d: %w", port, err)
	}
	return true, nil
}

func removeGUEPort(port uint16) error {
	if err := netlink.FouDel(netlink.Fou{Family: netlink.FAMILY_V4, Port: int(port)}); err != nil {
		return fmt.Errorf("remove the GUE receiver on UDP port %d: %w", port, err)
	}
	return nil
}
