package decap

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// kernelFloor names what the decapsulator needs of the kernel, for errors.
const kernelFloor = "the decapsulator needs Linux 5.9 or later (XDP links, and their update in place)"

// MaxSources is how many balancers the allow-list holds
// (DECAP_MAX_SOURCES in bpf/lib/decap.h).
const MaxSources = 1024

// Mode is how the program is attached to the interface.
type Mode int

const (
	// Native runs the program in the driver, before the kernel makes an
	// skb of the frame: the fast way, on drivers that have XDP.
	Native Mode = iota
	// Generic runs it on the skb, on any interface, more slowly.
	Generic
)

func (m Mode) String() string {
	switch m {
	case Native:
		return "native"
	case Generic:
		return "generic"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode reads "native" or "generic".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "native":
		return Native, nil
	case "generic":
		return Generic, nil
	}
	return 0, fmt.Errorf("XDP mode %q is neither native nor generic", s)
}

func (m Mode) flags() link.XDPAttachFlags {
	if m == Generic {
		return link.XDPGenericMode
	}
	return link.XDPDriverMode
}

// Attached says what Attach did.
type Attached struct {
	Interface string
	Ifindex   int
	PinDir    string
	Mode      Mode
	// Sources is the allow-list as it now is: sorted, without repeats.
	Sources []netip.Addr
	GUEPort uint16
	// Updated is set when the decapsulator was attached to the interface
	// already: its program, allow-list and GUE port were replaced in
	// place, with no moment where it was not attached.
	Updated bool
}

// Attach attaches the decapsulator to interface ifname of the calling
// thread's network namespace, in mode, and pins it under PinRoot. It
// takes tunnelled packets from the outer source addresses in allowed only,
// by IPIP, and by GUE on UDP port guePort unless that is 0. On an
// interface that has it, it replaces the program, the allow-list and the
// port in place.
func Attach(ifname string, allowed []netip.Addr, guePort uint16, mode Mode) (Attached, error) {
	sources, err := validate(ifname, allowed, mode)
	if err != nil {
		return Attached{}, err
	}
	if err := requireRoot("attach"); err != nil {
		return Attached{}, err
	}
	ifc, err := netlink.LinkByName(ifname)
	if err != nil {
		if errors.As(err, &netlink.LinkNotFoundError{}) {
			return Attached{}, fmt.Errorf("interface %s: not found in this network namespace (ip link lists the interfaces)", ifname)
		}
		return Attached{}, fmt.Errorf("interface %s: %w", ifname, err)
	}
	netns, err := currentNetns()
	if err != nil {
		return Attached{}, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return Attached{}, fmt.Errorf("remove memlock limit: %w", err)
	}
	unlock, err := lockPins()
	if err != nil {
		return Attached{}, err
	}
	defer unlock()
	dir := pinDir(ifname, netns)
	if err := makePinDir(dir); err != nil {
		return Attached{}, err
	}
	done := Attached{Interface: ifname, Ifindex: ifc.Attrs().Index, PinDir: dir, Mode: mode, Sources: sources, GUEPort: guePort}
	fresh := checkPin(filepath.Join(dir, linkPin)) != nil
	done.Updated, err = attachIn(dir, ifc, sources, guePort, mode)
	if err != nil {
		if fresh {
			// A fresh attach that failed half way leaves nothing.
			if _, rerr := removePins(dir); rerr != nil {
				err = errors.Join(err, rerr)
			}
			removeRootIfEmpty()
		}
		return Attached{}, err
	}
	return done, nil
}

// validate checks Attach's arguments, returning every problem at once,
// and the allow-list sorted and without repeats.
func validate(ifname string, allowed []netip.Addr, mode Mode) ([]netip.Addr, error) {
	var errs []error
	if err := checkIfname(ifname); err != nil {
		errs = append(errs, err)
	}
	if mode != Native && mode != Generic {
		errs = append(errs, fmt.Errorf("XDP mode %v is neither native nor generic", mode))
	}
	if len(allowed) == 0 {
		errs = append(errs, errors.New("no allowed sources: give the addresses the balancers send tunnels from; "+
			"without an allow-list anyone could send packets to the VIPs through the tunnel, from any address"))
	}
	var sources []netip.Addr
	for _, a := range allowed {
		a = a.Unmap()
		switch {
		case !a.IsValid():
			errs = append(errs, errors.New("allowed source: an empty address"))
		case !a.Is4():
			errs = append(errs, fmt.Errorf("allowed source %s is not an IPv4 address; the tunnels are IPv4", a))
		case a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			errs = append(errs, fmt.Errorf("allowed source %s cannot be a balancer's address", a))
		default:
			sources = append(sources, a)
		}
	}
	slices.SortFunc(sources, netip.Addr.Compare)
	sources = slices.Compact(sources)
	if len(sources) > MaxSources {
		errs = append(errs, fmt.Errorf("%d allowed sources; the allow-list holds %d", len(sources), MaxSources))
	}
	return sources, errors.Join(errs...)
}

// checkIfname refuses what cannot be an interface name, before it is
// made a path.
func checkIfname(ifname string) error {
	switch {
	case ifname == "":
		return errors.New("no interface given")
	case len(ifname) >= unix.IFNAMSIZ, ifname == ".", ifname == "..",
		strings.ContainsAny(ifname, "/:% \t\n\v\f\r"):
		return fmt.Errorf("%q is not an interface name", ifname)
	}
	return nil
}

// attachIn loads the program with its maps pinned in dir, sets its
// allow-list and port, and puts it on the interface: in place of the
// program of the link pinned in dir if there is one, or with a new link
// pinned there.
func attachIn(dir string, ifc netlink.Link, sources []netip.Addr, guePort uint16, mode Mode) (updated bool, err error) {
	// Asked again under the lock: an attach that held it may have put
	// the program on since.
	if again, err := netlink.LinkByIndex(ifc.Attrs().Index); err == nil {
		ifc = again
	}
	// Refuse what cannot be updated before changing anything.
	pinned, err := pinnedLink(dir, ifc, mode)
	if err != nil {
		return false, err
	}
	if pinned != nil {
		defer pinned.Close()
	}
	objs, err := load(dir)
	if err != nil {
		return false, err
	}
	// The kernel holds what the link uses; these handles are not needed.
	defer objs.Close()
	if err := objs.GuePort.Set(uint32(guePort)); err != nil {
		return false, fmt.Errorf("set the GUE port: %w", err)
	}
	if err := syncSources(objs.DecapSources, sources); err != nil {
		return false, err
	}
	name := ifc.Attrs().Name
	if pinned != nil {
		if err := pinned.Update(objs.XdplbDecap); err != nil {
			return false, fmt.Errorf("replace the decapsulator on %s: %w", name, err)
		}
		return true, nil
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: objs.XdplbDecap, Interface: ifc.Attrs().Index, Flags: mode.flags()})
	if err != nil {
		return false, attachError(ifc, mode, err)
	}
	// Closing the handle detaches a link that did not get pinned.
	defer l.Close()
	pin := filepath.Join(dir, linkPin)
	if err := l.Pin(pin); err != nil {
		return false, fmt.Errorf("pin the XDP link of %s at %s: %w", name, pin, err)
	}
	return false, nil
}

// pinnedLink returns the link pinned in dir if it holds the program on
// ifc in mode, to be updated, or nil if there is none to update. A link
// whose interface is gone is unpinned. One on another interface, or in
// another mode, cannot be updated: that is an error.
func pinnedLink(dir string, ifc netlink.Link, mode Mode) (link.Link, error) {
	pin := filepath.Join(dir, linkPin)
	if err := checkPin(pin); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	l, err := link.LoadPinnedLink(pin, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pin, err)
	}
	info, err := l.Info()
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("%s: %w", pin, err)
	}
	name, index := ifc.Attrs().Name, ifc.Attrs().Index
	switch xdp := info.XDP(); {
	case info.Type != link.XDPType || xdp == nil:
		l.Close()
		return nil, fmt.Errorf("%s is not an XDP link; xdplb decap did not pin it: left alone", pin)
	case xdp.Ifindex == 0:
		// Its interface went (and this one is a new one of the same
		// name), or it was detached by hand: attach anew.
		defer l.Close()
		if err := l.Unpin(); err != nil {
			return nil, fmt.Errorf("%s: %w", pin, err)
		}
		return nil, nil
	case int(xdp.Ifindex) != index:
		l.Close()
		return nil, fmt.Errorf("the decapsulator pinned at %s is on interface index %d, not on %s (index %d): "+
			"was %s renamed? xdplb decap detach --interface %s detaches it from there", pin, xdp.Ifindex, name, index, name, name)
	}
	if has, ok := attachedMode(ifc); ok && has != mode {
		l.Close()
		return nil, fmt.Errorf("%s has the decapsulator in %s mode: attach in %s mode to update it in place, "+
			"or detach it first to change the mode", name, has, has)
	}
	return l, nil
}

// attachedMode says in which mode an XDP program is on ifc, as the kernel
// reports it.
func attachedMode(ifc netlink.Link) (Mode, bool) {
	xdp := ifc.Attrs().Xdp
	if xdp == nil {
		return 0, false
	}
	switch xdp.AttachMode {
	case nl.XDP_ATTACHED_DRV:
		return Native, true
	case nl.XDP_ATTACHED_SKB:
		return Generic, true
	}
	return 0, false
}

// load loads the program with its maps pinned in dir: the ones already
// there are used, so that an update keeps the counters, and the
// allow-list is changed in place. The global gue_port (.bss) is the new
// program's own.
func load(dir string) (*decapObjects, error) {
	spec, err := loadDecap()
	if err != nil {
		return nil, fmt.Errorf("read the decapsulator's BPF object: %w", err)
	}
	for name := range mapPins {
		if err := checkPin(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		spec.Maps[name].Pinning = ebpf.PinByName
	}
	var objs decapObjects
	err = spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: dir}})
	var verr *ebpf.VerifierError
	switch {
	case err == nil:
		return &objs, nil
	case errors.Is(err, ebpf.ErrMapIncompatible):
		return nil, fmt.Errorf("the maps pinned in %s were made by another version of the decapsulator (%v): "+
			"detach it with xdplb decap detach and attach again", dir, err)
	case errors.As(err, &verr):
		return nil, fmt.Errorf("the kernel (%s) refused the decapsulator; %s: %v", kernelRelease(), kernelFloor, verr)
	}
	return nil, fmt.Errorf("load the decapsulator: %w", err)
}

// syncSources makes the allow-list m hold sources and nothing else. New
// ones go in before old ones go out, unless the map would overflow.
func syncSources(m *ebpf.Map, sources []netip.Addr) error {
	want := make(map[[4]byte]bool, len(sources))
	for _, a := range sources {
		want[a.As4()] = true
	}
	var (
		key   [4]byte
		value uint32
		stale [][4]byte
	)
	it := m.Iterate()
	for it.Next(&key, &value) {
		if !want[key] {
			stale = append(stale, key)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read the allow-list: %w", err)
	}
	remove := func() error {
		for _, k := range stale {
			if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("remove %s from the allow-list: %w", netip.AddrFrom4(k), err)
			}
		}
		return nil
	}
	// Adding first, the map holds the new list and the stale entries.
	if len(want)+len(stale) > int(m.MaxEntries()) {
		if err := remove(); err != nil {
			return err
		}
		stale = nil
	}
	for k := range want {
		if err := m.Put(k, uint32(0)); err != nil {
			return fmt.Errorf("add %s to the allow-list: %w", netip.AddrFrom4(k), err)
		}
	}
	return remove()
}

func attachError(ifc netlink.Link, mode Mode, err error) error {
	name := ifc.Attrs().Name
	switch {
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.EEXIST):
		other := "another XDP program"
		if xdp := ifc.Attrs().Xdp; xdp != nil && xdp.ProgId != 0 {
			other = fmt.Sprintf("another XDP program (id %d)", xdp.ProgId)
		}
		return fmt.Errorf("attach the decapsulator to %s: %w: %s has %s, which it does not replace "+
			"(`bpftool net show dev %s` shows it; remove it first)", name, err, name, other, name)
	case mode == Native && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, ebpf.ErrNotSupported)):
		return fmt.Errorf("attach the decapsulator to %s in native mode: %w: its driver has no native XDP; "+
			"attach in generic mode (--xdp-mode generic)", name, err)
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("attach the decapsulator to %s on kernel %s: %w; %s", name, kernelRelease(), err, kernelFloor)
	}
	return fmt.Errorf("attach the decapsulator to %s: %w", name, err)
}

func requireRoot(verb string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("xdplb decap %s must run as root: it loads BPF programs, attaches them to interfaces "+
			"and pins them under %s", verb, PinRoot)
	}
	return nil
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}
