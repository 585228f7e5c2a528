package testbed

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// bridgeName is the bridge's name inside the segment's own namespace; it can
// be fixed because that namespace holds nothing else.
const bridgeName = "br0"

// errClosed is returned by operations on a segment after Close.
var errClosed = errors.New("testbed: segment closed")

// Segment is one L2 segment: a Linux bridge in a dedicated network namespace
// plus the hosts plugged into it.
type Segment struct {
	prefix string
	subnet netip.Prefix
	nsName string

	// Fixed after NewSegment; only Close releases them.
	ns        netns.NsHandle
	nsPinned  bool // ns is pinned at /run/netns/nsName and is ours to delete
	bridgeIdx int
	xdpPass   *ebpf.Program

	// mu guards everything below and the validity of every namespace fd
	// (ours and the hosts'): enter() holds it shared while switching a
	// thread into a namespace, Close holds it exclusively to invalidate.
	mu      sync.RWMutex
	closed  bool
	hosts   []*Host
	procs   []*Proc
	closers []func() error
}

// NewSegment creates a bridge, up and forwarding immediately, in a fresh
// namespace named "<prefix>-br". Hosts added later get addresses in subnet.
func NewSegment(subnet netip.Prefix) (_ *Segment, err error) {
	subnet = subnet.Masked()
	if !subnet.IsValid() || !subnet.Addr().Is4() {
		return nil, fmt.Errorf("testbed: subnet %s: only IPv4 prefixes are supported", subnet)
	}
	if subnet.Bits() > 30 {
		return nil, fmt.Errorf("testbed: subnet %s is too small for hosts", subnet)
	}
	prefix, err := randomPrefix()
	if err != nil {
		return nil, err
	}
	s := &Segment{prefix: prefix, subnet: subnet, nsName: prefix + "-br", ns: netns.None()}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()

	if s.ns, err = createNamedNetns(s.nsName); err != nil {
		return nil, err
	}
	s.nsPinned = true
	if err := failpoint(prefix, "segment-netns"); err != nil {
		return nil, err
	}
	if s.xdpPass, err = loadXDPPass(); err != nil {
		return nil, fmt.Errorf("segment %s: %w", prefix, err)
	}
	err = runInNetns(s.ns, func() error {
		// The bridge and its ports never need IPv6; without this, every
		// port would emit router solicitations and MLD reports onto the
		// segment. Set before any interface exists so they inherit it.
		for _, key := range []string{"net/ipv6/conf/all/disable_ipv6", "net/ipv6/conf/default/disable_ipv6"} {
			if err := writeSysctl(key, "1", true); err != nil {
				return err
			}
		}
		return setupBridge(&s.bridgeIdx)
	})
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", prefix, err)
	}
	if err := failpoint(prefix, "segment-bridge"); err != nil {
		return nil, err
	}
	return s, nil
}

// setupBridge creates the bridge in the calling thread's namespace.
func setupBridge(index *int) error {
	off := false
	br := &netlink.Bridge{
		LinkAttrs: netlink.NewLinkAttrs(),
		// No IGMP snooping: the segment should behave like a dumb switch,
		// and multicast must not depend on querier state.
		MulticastSnooping: &off,
	}
	br.Name = bridgeName
	if err := netlink.LinkAdd(br); err != nil {
		return fmt.Errorf("create bridge %s: %w", bridgeName, err)
	}
	link, err := netlink.LinkByName(bridgeName)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", bridgeName, err)
	}
	if err := setBridgeNoDelay(link.Attrs().Index); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set bridge %s up: %w", bridgeName, err)
	}
	*index = link.Attrs().Index
	return nil
}

// setBridgeNoDelay turns STP off and sets forward_delay to 0 so that new
// ports forward at once instead of sitting in listening/learning state.
// The netlink library has no field for these, so the request is built by
// hand. Runs in the bridge's namespace.
func setBridgeNoDelay(index int) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	// STP first: the kernel rejects forward_delay < 2s while STP is on.
	data.AddRtAttr(nl.IFLA_BR_STP_STATE, nl.Uint32Attr(0))
	data.AddRtAttr(nl.IFLA_BR_FORWARD_DELAY, nl.Uint32Attr(0))
	req.AddData(info)
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("bridge %s: stp off / forward_delay 0: %w", bridgeName, err)
	}
	return nil
}

// failpointHook, when set by a test, can fail a construction step by name so
// that the cleanup of every error path is exercised. nil outside tests.
var failpointHook func(prefix, step string) error

func failpoint(prefix, step string) error {
	if failpointHook == nil {
		return nil
	}
	return failpointHook(prefix, step)
}

// randomPrefix returns "xlb" + 6 random hex digits. Random rather than
// sequential so that leftovers of a crashed run never collide.
func randomPrefix() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("testbed: random prefix: %w", err)
	}
	return "xlb" + hex.EncodeToString(b[:]), nil
}

// Prefix returns the segment's unique name prefix, e.g. "xlb1a2b3c".
func (s *Segment) Prefix() string { return s.prefix }

// Subnet returns the segment's IPv4 subnet.
func (s *Segment) Subnet() netip.Prefix { return s.subnet }

// NSName returns the name of the namespace holding the bridge.
func (s *Segment) NSName() string { return s.nsName }

// BridgeName returns the bridge's interface name inside NSName.
func (s *Segment) BridgeName() string { return bridgeName }

// Hosts returns the hosts in the order they were added.
func (s *Segment) Hosts() []*Host {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*Host(nil), s.hosts...)
}

// Do runs fn on a throw-away OS thread inside the bridge's namespace, e.g.
// to inspect the bridge-side veth ends or capture on the bridge.
func (s *Segment) Do(fn func() error) error {
	return s.enter(&s.ns, fn)
}

// enter runs fn inside ns, which must be one of the segment's namespace
// handles, passed by pointer because Close resets it. The shared lock is held only while the thread switches, which is
// enough to guarantee that Close has not closed (and the kernel has not
// reused) the fd; fn itself runs unlocked so it may call back into the
// segment.
func (s *Segment) enter(ns *netns.NsHandle, fn func() error) error {
	return runLocked(func() error {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if s.closed || !ns.IsOpen() {
			return errClosed
		}
		return netns.Set(*ns)
	}, fn)
}

// addCloser registers fn to run on Close. If the segment is already closed,
// fn runs right away and its error is returned.
func (s *Segment) addCloser(fn func() error) error {
	s.mu.Lock()
	if !s.closed {
		s.closers = append(s.closers, fn)
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	return errors.Join(errClosed, fn())
}

// Close stops servers and processes started through the segment's hosts and
// deletes every namespace it created, which takes the veths and the bridge
// with them. It is best effort: it keeps going after failures and returns
// them joined. Calling Close again is a no-op.
func (s *Segment) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	hosts, procs, closers := s.hosts, s.procs, s.closers
	s.hosts, s.procs, s.closers = nil, nil, nil
	s.mu.Unlock()

	var errs []error
	// Servers first (they hold sockets in the namespaces), newest first.
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i](); err != nil {
			errs = append(errs, fmt.Errorf("segment %s: %w", s.prefix, err))
		}
	}
	for _, p := range procs {
		if err := p.Kill(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range procs {
		<-p.Done()
	}
	for i := len(hosts) - 1; i >= 0; i-- {
		if err := hosts[i].release(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.xdpPass != nil {
		if err := s.xdpPass.Close(); err != nil {
			errs = append(errs, fmt.Errorf("segment %s: close XDP program: %w", s.prefix, err))
		}
	}
	if s.ns.IsOpen() {
		if err := s.ns.Close(); err != nil {
			errs = append(errs, fmt.Errorf("segment %s: close netns handle: %w", s.prefix, err))
		}
	}
	if s.nsPinned {
		if err := deleteNamedNetns(s.nsName); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
