package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// hostIfName is the name of every host's only non-loopback interface.
const hostIfName = "eth0"

// validHostName keeps host names short enough for the bridge-side interface
// name "v-<name>" to fit IFNAMSIZ (15 characters) and safe to embed in
// namespace and interface names.
var validHostName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,11}$`)

// Host is one machine on a segment: a named network namespace with lo and
// eth0, a veth whose peer is a port of the segment's bridge.
type Host struct {
	Name     string
	Addr     netip.Addr
	NSName   string           // named netns, pinned in /run/netns
	IfName   string           // "eth0"
	MAC      net.HardwareAddr // of eth0 inside the host
	PeerMAC  net.HardwareAddr // of the bridge-side veth end
	PeerName string           // bridge-side veth end, in the segment's namespace

	seg      *Segment
	ns       netns.NsHandle
	nsPinned bool
	ifindex  int
}

// AddHost creates a host named name with address addr on eth0, using the
// segment's prefix length. On any error everything created so far is removed.
func (s *Segment) AddHost(name string, addr netip.Addr) (_ *Host, err error) {
	if !validHostName.MatchString(name) {
		return nil, fmt.Errorf("testbed: host name %q: want 1-12 of [a-z0-9-], starting alphanumeric", name)
	}
	if err := s.checkAddr(addr); err != nil {
		return nil, fmt.Errorf("testbed: host %s: %w", name, err)
	}

	// Held for the whole construction: Close cannot run underneath us, so
	// the unguarded runInNetns is safe for the segment's and the new
	// host's namespace.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	for _, o := range s.hosts {
		if o.Name == name {
			return nil, fmt.Errorf("testbed: host %s already exists in segment %s", name, s.prefix)
		}
		if o.Addr == addr {
			return nil, fmt.Errorf("testbed: host %s: address %s already used by %s", name, addr, o.Name)
		}
	}

	h := &Host{
		Name:     name,
		Addr:     addr,
		NSName:   s.prefix + "-" + name,
		IfName:   hostIfName,
		MAC:      macFor(0x00, addr),
		PeerMAC:  macFor(0x01, addr),
		PeerName: "v-" + name,
		seg:      s,
		ns:       netns.None(),
	}
	vethCreated := false
	defer func() {
		if err == nil {
			return
		}
		if vethCreated {
			// Deleting one end deletes the pair. Done explicitly because
			// namespace teardown is asynchronous and the port would
			// otherwise linger on the bridge for a while.
			if derr := runInNetns(s.ns, func() error { return deleteLink(h.PeerName) }); derr != nil {
				err = errors.Join(err, fmt.Errorf("host %s: %w", name, derr))
			}
		}
		err = errors.Join(err, h.release())
	}()

	if h.ns, err = createNamedNetns(h.NSName); err != nil {
		return nil, fmt.Errorf("host %s: %w", name, err)
	}
	h.nsPinned = true
	if err := runInNetns(h.ns, prepareHostNetns); err != nil {
		return nil, fmt.Errorf("host %s: %w", name, err)
	}
	if err := failpoint(s.prefix, "host-netns"); err != nil {
		return nil, err
	}
	err = runInNetns(s.ns, func() error {
		if err := createVeth(h, s.bridgeIdx); err != nil {
			return err
		}
		vethCreated = true
		if err := failpoint(s.prefix, "host-veth"); err != nil {
			return err
		}
		return setupBridgePort(h.PeerName, s)
	})
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", name, err)
	}
	err = runInNetns(h.ns, func() error {
		idx, err := setupHostIf(netip.PrefixFrom(addr, s.subnet.Bits()))
		h.ifindex = idx
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", name, err)
	}
	if err := failpoint(s.prefix, "host-if"); err != nil {
		return nil, err
	}
	s.hosts = append(s.hosts, h)
	return h, nil
}

// checkAddr accepts a usable host address of the segment's subnet.
func (s *Segment) checkAddr(addr netip.Addr) error {
	if !addr.Is4() {
		return fmt.Errorf("address %s is not IPv4", addr)
	}
	if !s.subnet.Contains(addr) {
		return fmt.Errorf("address %s is outside subnet %s", addr, s.subnet)
	}
	if addr == s.subnet.Addr() || addr == lastAddr(s.subnet) {
		return fmt.Errorf("address %s is the network or broadcast address of %s", addr, s.subnet)
	}
	return nil
}

// lastAddr returns the broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	a[0] |= byte(host >> 24)
	a[1] |= byte(host >> 16)
	a[2] |= byte(host >> 8)
	a[3] |= byte(host)
	return netip.AddrFrom4(a)
}

// macFor derives a stable, locally administered unicast MAC from the IPv4
// address, so MACs in captures and neighbour tables are predictable:
// 02:<kind>:<a>:<b>:<c>:<d>, kind 0 for eth0 and 1 for the bridge side.
func macFor(kind byte, addr netip.Addr) net.HardwareAddr {
	a := addr.As4()
	return net.HardwareAddr{0x02, kind, a[0], a[1], a[2], a[3]}
}

// prepareHostNetns runs in a new host namespace before eth0 exists.
func prepareHostNetns() error {
	// New interfaces inherit "default"; eth0 is created by the veth request
	// straight into this namespace, so it starts without IPv6 and never
	// sends DAD or router solicitations. lo keeps IPv6 (::1 is handy).
	if err := writeSysctl("net/ipv6/conf/default/disable_ipv6", "1", true); err != nil {
		return err
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("look up lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// createVeth creates h's veth pair from the bridge's namespace. The host end
// is created directly inside the host's namespace under its final name, so
// neither the root namespace nor the bridge namespace ever sees an "eth0".
func createVeth(h *Host, bridgeIdx int) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = h.PeerName
	attrs.HardwareAddr = h.PeerMAC
	attrs.MasterIndex = bridgeIdx
	veth := &netlink.Veth{
		LinkAttrs:        attrs,
		PeerName:         hostIfName,
		PeerHardwareAddr: h.MAC,
		PeerNamespace:    netlink.NsFd(h.ns),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s <-> %s/%s: %w", h.PeerName, h.NSName, hostIfName, err)
	}
	return nil
}

// setupBridgePort finishes the bridge-side veth end: no TX checksum offload,
// XDP_PASS attached, up. Runs in the bridge's namespace.
func setupBridgePort(ifname string, s *Segment) error {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("look up %s: %w", ifname, err)
	}
	if err := disableTxChecksum(ifname); err != nil {
		return err
	}
	if err := attachXDPPass(s.xdpPass, link); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", ifname, err)
	}
	return nil
}

// setupHostIf configures eth0 in the host's namespace and returns its index.
func setupHostIf(addr netip.Prefix) (int, error) {
	// Belt and braces next to the "default" knob set earlier.
	if err := writeSysctl("net/ipv6/conf/"+hostIfName+"/disable_ipv6", "1", true); err != nil {
		return 0, err
	}
	if err := disableTxChecksum(hostIfName); err != nil {
		return 0, err
	}
	link, err := netlink.LinkByName(hostIfName)
	if err != nil {
		return 0, fmt.Errorf("look up %s: %w", hostIfName, err)
	}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: prefixToIPNet(addr)}); err != nil {
		return 0, fmt.Errorf("add %s to %s: %w", addr, hostIfName, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return 0, fmt.Errorf("set %s up: %w", hostIfName, err)
	}
	return link.Attrs().Index, nil
}

func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	bits := 128
	if p.Addr().Is4() {
		bits = 32
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

// release closes the host's namespace handle and unpins the namespace.
// The caller guarantees no concurrent enter (segment closed or not yet
// published).
func (h *Host) release() error {
	var errs []error
	if h.ns.IsOpen() {
		if err := h.ns.Close(); err != nil {
			errs = append(errs, fmt.Errorf("host %s: close netns handle: %w", h.Name, err))
		}
	}
	if h.nsPinned {
		h.nsPinned = false
		if err := deleteNamedNetns(h.NSName); err != nil {
			errs = append(errs, fmt.Errorf("host %s: %w", h.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Segment returns the segment the host belongs to.
func (h *Host) Segment() *Segment { return h.seg }

// Ifindex returns eth0's interface index inside the host's namespace.
func (h *Host) Ifindex() int { return h.ifindex }

// String returns "name(addr)" for log messages.
func (h *Host) String() string { return h.Name + "(" + h.Addr.String() + ")" }

// Do runs fn on a fresh OS thread switched into the host's namespace. The
// thread is discarded afterwards, so the switch can never leak into other
// goroutines. Goroutines started by fn do NOT run in the namespace; create
// sockets and start processes on fn's own goroutine. Sockets keep the
// namespace they were created in, so they may be used anywhere afterwards.
func (h *Host) Do(fn func() error) error {
	if err := h.seg.enter(&h.ns, fn); err != nil {
		if errors.Is(err, errClosed) {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		return err
	}
	return nil
}

// Link returns eth0 as seen inside the host.
func (h *Host) Link() (netlink.Link, error) {
	var link netlink.Link
	err := h.Do(func() (err error) {
		link, err = netlink.LinkByName(h.IfName)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("host %s: look up %s: %w", h.Name, h.IfName, err)
	}
	return link, nil
}

// AddAddr adds an extra address (e.g. a VIP) to eth0.
func (h *Host) AddAddr(addr netip.Prefix) error {
	err := h.Do(func() error {
		link, err := netlink.LinkByName(h.IfName)
		if err != nil {
			return err
		}
		return netlink.AddrAdd(link, &netlink.Addr{IPNet: prefixToIPNet(addr)})
	})
	if err != nil {
		return fmt.Errorf("host %s: add %s to %s: %w", h.Name, addr, h.IfName, err)
	}
	return nil
}

// Listen creates a listener inside the host's namespace.
func (h *Host) Listen(network, address string) (net.Listener, error) {
	if err := checkLiteral(network, address); err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	var l net.Listener
	err := h.Do(func() (err error) {
		l, err = net.Listen(network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return l, nil
}

// ListenPacket creates a packet socket inside the host's namespace.
func (h *Host) ListenPacket(network, address string) (net.PacketConn, error) {
	if err := checkLiteral(network, address); err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	var c net.PacketConn
	err := h.Do(func() (err error) {
		c, err = net.ListenPacket(network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return c, nil
}

// DialContext connects from inside the host's namespace. It has the
// signature of http.Transport.DialContext.
func (h *Host) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if err := checkLiteral(network, address); err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	var c net.Conn
	err := h.Do(func() (err error) {
		// FallbackDelay < 0 disables Happy Eyeballs, which would create
		// the fallback socket on another goroutine, outside the namespace.
		d := net.Dialer{FallbackDelay: -1}
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return c, nil
}

// checkLiteral insists on IP literals for IP networks: name resolution may
// run on other goroutines (outside the namespace) and would consult the
// root namespace's resolver anyway.
func checkLiteral(network, address string) error {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%s address %q: %w", network, address, err)
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("%s address %q: host must be an IP literal", network, address)
	}
	return nil
}
