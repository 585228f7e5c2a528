package datapath

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Limits of the maps, fixed when the object is compiled.
const (
	MaxServices   = 4096
	MaxBackends   = 1 << 17
	RingSlots     = 1 << 22
	MaxLocalAddrs = 64
)

// LayoutVersion is the version of the map layout this datapath uses.
const LayoutVersion = uint32(xdplbLayoutVersionLAYOUT_VERSION)

// Options tune the program at load time.
type Options struct {
	// ConntrackCapacity is the number of entries in each conntrack half.
	// Zero keeps the compiled default (1,048,576).
	ConntrackCapacity uint32
	// AllocTries bounds the probes for a free local port per new
	// connection (at most 64). Zero keeps the default (32).
	AllocTries uint32
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
	adopted bool
	links   map[int]link.Link

	// lastSweepSize sizes the next sweep's map up front.
	lastSweepSize int
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
		spec.Maps["ct_forward"].MaxEntries = opts.ConntrackCapacity
		spec.Maps["ct_reverse"].MaxEntries = opts.ConntrackCapacity
	}
	if opts.AllocTries > 0 {
		if opts.AllocTries > 64 {
			return nil, fmt.Errorf("alloc tries %d: at most 64", opts.AllocTries)
		}
		if err := spec.Variables["alloc_tries"].Set(opts.AllocTries); err != nil {
			return nil, fmt.Errorf("set alloc_tries: %w", err)
		}
	}
	var collOpts *ebpf.CollectionOptions
	if opts.PinPath != "" {
		if err := ensureBPFFS(opts.PinPath); err != nil {
			return nil, err
		}
		for name, m := range spec.Maps {
			if !isDataSection(name) {
				m.Pinning = ebpf.PinByName
			}
		}
		collOpts = &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: opts.PinPath}}
	}
	d := &Datapath{pinPath: opts.PinPath, links: map[int]link.Link{}}
	if err := spec.LoadAndAssign(&d.objs, collOpts); err != nil {
		var verr *ebpf.VerifierError
		switch {
		case errors.As(err, &verr):
			return nil, fmt.Errorf("load BPF program: %+v", verr)
		case errors.Is(err, ebpf.ErrMapIncompatible):
			return nil, fmt.Errorf("%w: %v (maps pinned at %s were made with other sizes, e.g. another conntrack.capacity; "+
				"restart with --reset-state to discard them and every established connection)", ErrIncompatiblePins, err, opts.PinPath)
		}
		return nil, fmt.Errorf("load BPF program: %w", err)
	}
	if err := d.checkLayout(); err != nil {
		d.objs.Close()
		return nil, err
	}
	return d, nil
}

// isDataSection tells the maps bpf2go makes for global variables (.rodata,
// .bss), which hold load-time constants and must not be pinned.
func isDataSection(name string) bool { return len(name) > 0 && name[0] == '.' }

// checkLayout stamps fresh maps with this datapath's layout version and
// refuses adopted maps stamped with another.
func (d *Datapath) checkLayout() error {
	var v uint32
	if err := d.objs.Layout.Lookup(uint32(0), &v); err != nil {
		return fmt.Errorf("read layout version: %w", err)
	}
	switch v {
	case 0:
		if err := d.objs.Layout.Update(uint32(0), LayoutVersion, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("write layout version: %w", err)
		}
	case LayoutVersion:
		d.adopted = d.pinPath != ""
		if d.adopted {
			return d.restoreGlobals()
		}
	default:
		return fmt.Errorf("%w: maps pinned at %s have layout version %d, this datapath uses %d; "+
			"restart with --reset-state to discard them and every established connection", ErrIncompatiblePins, d.pinPath, v, LayoutVersion)
	}
	return nil
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
	if err := d.objs.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Remove detaches the program everywhere, unpins every map and releases
// everything: the datapath is gone, and with it every connection.
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

// RemovePins deletes everything pinned under path (maps and links of an
// earlier run), and path itself.
func RemovePins(path string) error {
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("remove pinned state at %s: %w", path, err)
	}
	return nil
}
