package datapath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Limits of the maps, fixed when the object is compiled. The one
// definition is enum limits in bpf/lib/types.h; they are spelt out here
// only because Go cannot make an untyped constant (usable as an int and a
// uint32 alike, as callers do) from the generated typed ones. The function
// below fails to compile the moment they differ from the generated ones.
const (
	MaxServices   = 4096
	MaxBackends   = 1 << 17
	RingSlots     = 1 << 22
	MaxLocalAddrs = 64
	// DefaultConntrackCapacity is the size of each conntrack half when
	// Options.ConntrackCapacity is zero.
	DefaultConntrackCapacity = 1 << 20
)

// An "index out of bounds" or "overflows xdplbLimits" error here means a
// constant above no longer matches bpf/lib/types.h: copy the new value.
func _() {
	var x [1]struct{}
	_ = x[MaxServices-xdplbLimitsMAX_SERVICES]
	_ = x[MaxBackends-xdplbLimitsMAX_BACKENDS]
	_ = x[RingSlots-xdplbLimitsRING_SLOTS]
	_ = x[MaxLocalAddrs-xdplbLimitsMAX_LOCAL_ADDRS]
	_ = x[DefaultConntrackCapacity-xdplbLimitsCT_DEFAULT_ENTRIES]
	_ = x[MaxInterfaces-xdplbLimitsMAX_IF_MACS]
	_ = x[MaxVLANs-xdplbLimitsMAX_IF_VLANS]
}

// LayoutVersion is the version of the map layout this datapath uses.
const LayoutVersion = uint32(xdplbLayoutVersionLAYOUT_VERSION)

// Options tune the program at load time.
type Options struct {
	// ConntrackCapacity is the number of entries in each conntrack half.
	// Zero keeps the compiled default, DefaultConntrackCapacity.
	ConntrackCapacity uint32
	// PinPath, if set, is a directory on a BPF filesystem where the maps
	// and attachments are pinned, so they outlive this process: a later
	// Load with the same PinPath adopts them, established connections
	// included. Empty: nothing outlives Close.
	PinPath string
}

// Datapath is the loaded program with its maps and attachments.
type Datapath struct {
	objs    xdplbObjects
	pinPath string
	// pinsTransient, when not empty, says why the pins vanish with this
	// process.
	pinsTransient string
	adopted       bool
	// migratedFrom is the layout version the adopted maps were upgraded
	// from; zero if they were not.
	migratedFrom uint32
	links        map[int]link.Link

	pools *pools
	// hostAddrs are this host's addresses (SetHostAddrs): a backend at one
	// of them is marked local.
	hostAddrs hostAddrs
	// oldCT are the conntrack maps of an older layout being upgraded,
	// until FinishMigration.
	oldCT *oldConntrack
	// migratedConns is how many connections the upgrade copied so far.
	migratedConns int
	// poolQueue is the spec of a port pool's queue (maps.h, port_queue).
	poolQueue *ebpf.MapSpec

	// lastSweepSize sizes the next sweep's map up front.
	lastSweepSize int
	// syncOn makes sweeps list the connections they end (SetSync).
	syncOn bool
	// ifMACs are the attached interfaces' MACs, ifVLANs the VLANs on
	// them, as the program has them.
	ifMACs       []xdplbIfMac
	ifVLANs      []xdplbIfVlan
	vlanCheckOff bool
	// restartedCounters are the pinned counter maps Load dropped because
	// this version counts more (or fewer) things.
	restartedCounters []string
}

// ErrIncompatiblePins is returned by Load when the maps pinned at PinPath
// were made by a datapath with another layout.
var ErrIncompatiblePins = errors.New("pinned datapath state is incompatible")

// Load loads the program and creates its maps, or adopts pinned ones.
func Load(opts Options) (*Datapath, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock limit: %w", err)
	}
	spec, err := loadXdplb()
	if err != nil {
		return nil, fmt.Errorf("read BPF object: %w", err)
	}
	if opts.ConntrackCapacity > 0 {
		for _, name := range []string{"ct_forward", "ct_reverse", "ct6_forward", "ct6_reverse", "ct_rev_client6"} {
			spec.Maps[name].MaxEntries = opts.ConntrackCapacity
		}
	}
	var collOpts *ebpf.CollectionOptions
	var transient string
	if opts.PinPath != "" {
		if transient, err = ensureBPFFS(opts.PinPath); err != nil {
			return nil, err
		}
		for name, m := range spec.Maps {
			if !isDataSection(name) && name != scratchMap {
				m.Pinning = ebpf.PinByName
			}
		}
		collOpts = &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: opts.PinPath}}
	}
	d := &Datapath{pinPath: opts.PinPath, pinsTransient: transient, links: map[int]link.Link{},
		pools: newPools(), poolQueue: spec.Maps["port_pools"].InnerMap.Copy()}
	if opts.PinPath != "" {
		if d.restartedCounters, err = dropResizedCounters(spec, opts.PinPath); err != nil {
			return nil, err
		}
		if d.oldCT, err = openOldConntrack(spec, opts.PinPath); err != nil {
			return nil, err
		}
	}
	if err := d.load(spec, collOpts); err != nil {
		if d.oldCT != nil {
			d.oldCT.close()
		}
		return nil, err
	}
	return d, nil
}

// load loads the program into d and checks, stamps or upgrades the layout.
func (d *Datapath) load(spec *ebpf.CollectionSpec, collOpts *ebpf.CollectionOptions) error {
	if err := spec.LoadAndAssign(&d.objs, collOpts); err != nil {
		var verr *ebpf.VerifierError
		switch {
		case !kernelHasBTF():
			return fmt.Errorf("load BPF program: %w (this kernel has no BTF, %s: the program's global functions are "+
				"checked against it; xdplb needs a kernel built with CONFIG_DEBUG_INFO_BTF, as every major distribution's is)", err, vmlinuxBTF)
		case errors.As(err, &verr):
			return fmt.Errorf("load BPF program: %+v", verr)
		case errors.Is(err, ebpf.ErrMapIncompatible):
			return fmt.Errorf("%w: %v (maps pinned at %s were made with other sizes, e.g. another conntrack.capacity; "+
				"restart with --reset-state to discard them and every established connection)", ErrIncompatiblePins, err, d.pinPath)
		}
		return fmt.Errorf("load BPF program: %w", err)
	}
	if err := d.checkLayout(); err != nil {
		d.objs.Close()
		return err
	}
	return nil
}

// vmlinuxBTF is where the kernel publishes its own types (BTF).
const vmlinuxBTF = "/sys/kernel/btf/vmlinux"

func kernelHasBTF() bool {
	_, err := os.Stat(vmlinuxBTF)
	return err == nil
}

// scratchMap is per-CPU room for the IPv6 path's largest values (maps6.h):
// it holds nothing between packets, so it is not pinned, and a version
// that lays it out otherwise adopts the pins all the same.
const scratchMap = "scratch6"

// isDataSection tells the maps bpf2go makes for global variables (.rodata,
// .bss), which hold load-time constants and must not be pinned.
func isDataSection(name string) bool { return len(name) > 0 && name[0] == '.' }

// checkLayout stamps fresh maps with this datapath's layout version,
// upgrades adopted maps of a version it knows how to migrate and refuses
// any other.
func (d *Datapath) checkLayout() error {
	var v uint32
	if err := d.objs.Layout.Lookup(uint32(0), &v); err != nil {
		return fmt.Errorf("read layout version: %w", err)
	}
	switch v {
	case 0:
		return d.stampLayout()
	case LayoutVersion:
	case 5, 6:
		// Layout 6 gave struct ct_fwd's padding a meaning (flags: the
		// forwarding mode) and backends a flag (BACKEND_LOCAL), both 0
		// in layout 5's entries: Full-NAT, not local. Layout 7 gave
		// struct ct_rev a flag (CT_F_NAT64: a reverse half whose client
		// is IPv6), never set in layout 6's entries. The maps are
		// adopted as they are; the stamp keeps an older daemon from
		// adopting connections it would forward wrongly.
		if err := d.stampLayout(); err != nil {
			return err
		}
	case 3, 4:
		// Stamped by FinishMigration, once the new maps have the pins.
		if err := d.migrate(v); err != nil {
			return fmt.Errorf("upgrade maps pinned at %s from layout version %d: %w", d.pinPath, v, err)
		}
		d.migratedFrom = v
	default:
		return fmt.Errorf("%w: maps pinned at %s have layout version %d, this datapath uses %d; "+
			"restart with --reset-state to discard them and every established connection", ErrIncompatiblePins, d.pinPath, v, LayoutVersion)
	}
	d.adopted = d.pinPath != ""
	if !d.adopted {
		return nil
	}
	if err := d.restoreGlobals(); err != nil {
		return err
	}
	return d.restorePools()
}

func (d *Datapath) stampLayout() error {
	if err := d.objs.Layout.Update(uint32(0), LayoutVersion, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write layout version: %w", err)
	}
	return nil
}

// Migrated reports whether Load upgraded the adopted maps from an older
// layout version, and from which, so the caller can say so.
func (d *Datapath) Migrated() (from uint32, ok bool) { return d.migratedFrom, d.migratedFrom != 0 }

// MigratedConns is how many connections the upgrade Load made copied into
// maps of this layout.
func (d *Datapath) MigratedConns() int { return d.migratedConns }

// RestartedCounters names the pinned counter maps Load dropped because
// this version counts other things in them: their counts restart from 0.
func (d *Datapath) RestartedCounters() []string { return d.restartedCounters }

// countersOnly are the maps that hold nothing but counters: one pinned with
// another size (a version that counts more reasons) is dropped and made
// anew, losing counts but nothing a connection needs.
var countersOnly = []string{"reasons", "sync_stats", "toa_stats"}

// dropResizedCounters removes the pins of counter maps whose size differs
// from spec's, so that loading makes them anew instead of refusing them.
// Only from a layout this datapath adopts: pins it will refuse anyway stay
// as they are, counters included.
func dropResizedCounters(spec *ebpf.CollectionSpec, pinPath string) ([]string, error) {
	if ok, err := adoptableLayout(pinPath); err != nil || !ok {
		return nil, err
	}
	var dropped []string
	for _, name := range countersOnly {
		path := filepath.Join(pinPath, name)
		m, err := ebpf.LoadPinnedMap(path, nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("open pinned %s: %w", name, err)
		}
		size := m.MaxEntries()
		m.Close()
		if size == spec.Maps[name].MaxEntries {
			continue
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("drop pinned %s of another size: %w", name, err)
		}
		dropped = append(dropped, name)
	}
	return dropped, nil
}

// adoptableLayout tells whether the maps pinned at pinPath, if any, are of
// a layout checkLayout adopts (this one, or one it migrates from).
func adoptableLayout(pinPath string) (bool, error) {
	v, err := pinnedLayout(pinPath)
	if err != nil {
		return false, err
	}
	return v == 0 || v == LayoutVersion || (3 <= v && v <= 6), nil
}

// pinnedLayout is the layout version of the maps pinned at pinPath; 0 if
// there are none.
func pinnedLayout(pinPath string) (uint32, error) {
	m, err := ebpf.LoadPinnedMap(filepath.Join(pinPath, "layout"), nil)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("open pinned layout: %w", err)
	}
	defer m.Close()
	var v uint32
	if err := m.Lookup(uint32(0), &v); err != nil {
		return 0, fmt.Errorf("read pinned layout: %w", err)
	}
	return v, nil
}

// Adopted reports whether Load took over pinned maps from an earlier run.
func (d *Datapath) Adopted() bool { return d.adopted }

// Close releases this process's handles. Pinned maps and attachments stay
// in the kernel and keep forwarding; without pinning, the program is
// detached and the maps are freed.
func (d *Datapath) Close() error {
	var errs []error
	for ifindex, l := range d.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("release link on ifindex %d: %w", ifindex, err))
		}
		delete(d.links, ifindex)
	}
	if d.oldCT != nil {
		d.oldCT.close()
		d.oldCT = nil
	}
	if err := d.objs.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Remove detaches the program everywhere, unpins its maps and releases
// everything: the datapath is gone, and with it every connection. Only
// xdplb's own pins are removed (see RemovePins).
func (d *Datapath) Remove() error {
	var errs []error
	for ifindex, l := range d.links {
		if err := l.Unpin(); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("unpin link on ifindex %d: %w", ifindex, err))
		}
	}
	if d.pinPath != "" {
		if err := RemovePins(d.pinPath); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(append(errs, d.Close())...)
}
