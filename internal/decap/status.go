package decap

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/datapath"
)

// Attachment is the decapsulator as attached to one interface.
type Attachment struct {
	Interface string `json:"interface"`
	// Netns is the inode number of the interface's network namespace, as
	// ls -iL /proc/PID/ns/net shows it; Here says it is the caller's.
	Netns  uint64 `json:"netns"`
	Here   bool   `json:"here"`
	PinDir string `json:"pin_dir"`
	// Attached says the program is on an interface. Ifindex and
	// Program say which, by the ids ip link and bpftool show.
	Attached bool   `json:"attached"`
	Ifindex  int    `json:"ifindex,omitempty"`
	Program  uint32 `json:"program,omitempty"`
	// Mode is native or generic; empty when the interface is in another
	// network namespace than the caller's, where it cannot be asked.
	Mode string `json:"mode,omitempty"`
	// Problem says why it is not attached, or not as Attach left it.
	Problem string       `json:"problem,omitempty"`
	Sources []netip.Addr `json:"allowed_sources"`
	// GUEPort is 0 when only IPIP is taken.
	GUEPort  uint16   `json:"gue_port"`
	Counters Counters `json:"counters"`
}

// Counters are the decapsulator's counters, over all CPUs, since the first
// Attach.
type Counters struct {
	// Decapsulated came through a tunnel from an allowed source and went
	// to the stack.
	Decapsulated uint64 `json:"decapsulated"`
	// DroppedSource came through a tunnel from a source not allowed.
	DroppedSource uint64 `json:"dropped_source"`
	// DroppedMalformed came from an allowed source with no IPv4 packet
	// inside (or a truncated one).
	DroppedMalformed uint64 `json:"dropped_malformed"`
	// NotTunnel were not tunnelled, and went to the stack untouched.
	NotTunnel uint64 `json:"not_tunnel"`
}

// Status lists every interface the decapsulator is attached to, in every
// network namespace.
func Status() ([]Attachment, error) {
	if err := requireRoot("status"); err != nil {
		return nil, err
	}
	here, err := currentNetns()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(PinRoot)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []Attachment
	for _, e := range entries {
		ifname, netns, ok := parseDirName(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		a, err := status(filepath.Join(PinRoot, e.Name()), ifname, netns, netns == here)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b Attachment) int {
		// The caller's namespace first.
		return cmp.Or(-compareBool(a.Here, b.Here), cmp.Compare(a.Netns, b.Netns), cmp.Compare(a.Interface, b.Interface))
	})
	return out, nil
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func status(dir, ifname string, netns uint64, here bool) (Attachment, error) {
	a := Attachment{Interface: ifname, Netns: netns, Here: here, PinDir: dir}
	if err := linkState(&a, filepath.Join(dir, linkPin)); err != nil {
		return Attachment{}, err
	}
	sources, err := readSources(filepath.Join(dir, "decap_sources"))
	if err != nil {
		return Attachment{}, err
	}
	a.Sources = sources
	a.Counters, err = readCounters(filepath.Join(dir, "decap_stats"))
	if err != nil {
		return Attachment{}, err
	}
	return a, nil
}

// linkState fills in what the link pinned at pin says: whether the
// program is attached, where, and its GUE port. An interface in the
// caller's network namespace is asked for its name and mode too.
func linkState(a *Attachment, pin string) error {
	if err := checkPin(pin); errors.Is(err, os.ErrNotExist) {
		a.Problem = "its link pin is missing (xdplb decap attach attaches it again)"
		return nil
	} else if err != nil {
		return err
	}
	l, err := link.LoadPinnedLink(pin, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", pin, err)
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		return fmt.Errorf("%s: %w", pin, err)
	}
	xdp := info.XDP()
	if info.Type != link.XDPType || xdp == nil {
		a.Problem = "its link pin is not an XDP link"
		return nil
	}
	a.Program = uint32(info.Program)
	if port, err := guePort(info.Program); err == nil {
		a.GUEPort = port
	} else {
		a.Problem = fmt.Sprintf("its GUE port cannot be read: %v", err)
	}
	if xdp.Ifindex == 0 {
		a.Program = 0
		a.Problem = "its interface is gone, or it was detached by hand (xdplb decap attach attaches it again)"
		return nil
	}
	a.Attached, a.Ifindex = true, int(xdp.Ifindex)
	if !a.Here {
		return nil
	}
	ifc, err := netlink.LinkByIndex(a.Ifindex)
	if err != nil {
		a.Problem = fmt.Sprintf("interface index %d: %v", a.Ifindex, err)
		return nil
	}
	if mode, ok := attachedMode(ifc); ok {
		a.Mode = mode.String()
	}
	if name := ifc.Attrs().Name; name != a.Interface {
		a.Problem = fmt.Sprintf("it is on %s, which was %s when it was attached", name, a.Interface)
	}
	return nil
}

// guePort reads gue_port from the .bss map of program id: the value the
// attached program runs with.
func guePort(id ebpf.ProgramID) (uint16, error) {
	offset, err := guePortOffset()
	if err != nil {
		return 0, err
	}
	prog, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return 0, err
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return 0, err
	}
	ids, _ := info.MapIDs()
	for _, mid := range ids {
		m, err := ebpf.NewMapFromID(mid)
		if err != nil {
			continue
		}
		mi, err := m.Info()
		if err != nil || mi.Name != ".bss" || m.ValueSize() < offset+4 {
			m.Close()
			continue
		}
		value := make([]byte, m.ValueSize())
		err = m.Lookup(uint32(0), value)
		m.Close()
		if err != nil {
			return 0, err
		}
		return uint16(binary.NativeEndian.Uint32(value[offset:])), nil
	}
	return 0, fmt.Errorf("program %d has no .bss map", id)
}

// guePortOffset is where gue_port is in the .bss map.
var guePortOffset = sync.OnceValues(func() (uint32, error) {
	spec, err := loadDecap()
	if err != nil {
		return 0, err
	}
	v, ok := spec.Variables[decapVarGuePort]
	if !ok {
		return 0, errors.New("the decapsulator's object has no gue_port")
	}
	return v.Offset, nil
})

// readSources lists the allow-list pinned at pin, sorted.
func readSources(pin string) ([]netip.Addr, error) {
	if err := checkPin(pin); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	m, err := ebpf.LoadPinnedMap(pin, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pin, err)
	}
	defer m.Close()
	var (
		key   [4]byte
		value uint32
		out   []netip.Addr
	)
	it := m.Iterate()
	for it.Next(&key, &value) {
		out = append(out, netip.AddrFrom4(key))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", pin, err)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// readCounters sums the per-CPU counters pinned at pin. A missing map
// counts nothing.
func readCounters(pin string) (Counters, error) {
	if err := checkPin(pin); errors.Is(err, os.ErrNotExist) {
		return Counters{}, nil
	} else if err != nil {
		return Counters{}, err
	}
	m, err := ebpf.LoadPinnedMap(pin, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return Counters{}, fmt.Errorf("%s: %w", pin, err)
	}
	defer m.Close()
	return countersOf(m), nil
}

func countersOf(m *ebpf.Map) Counters {
	sum := func(c decapDecapCounter) uint64 {
		n, _ := datapath.SumCounter(m, uint32(c))
		return n
	}
	return Counters{
		Decapsulated:     sum(decapDecapCounterDECAP_PASS_INNER),
		DroppedSource:    sum(decapDecapCounterDECAP_DROP_SOURCE),
		DroppedMalformed: sum(decapDecapCounterDECAP_DROP_MALFORMED),
		NotTunnel:        sum(decapDecapCounterDECAP_PASS_NOT_TUNNEL),
	}
}
