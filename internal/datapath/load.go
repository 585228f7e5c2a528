package datapath

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Limits of the maps, fixed when the object is compiled.
const (
	MaxServices   = 4096
	MaxBackends   = 65536
	RingSlots     = 1 << 20
	MaxLocalAddrs = 64
)

// Options tune the program at load time.
type Options struct {
	// ConntrackCapacity is the number of entries in each conntrack half.
	// Zero keeps the compiled default (1,048,576).
	ConntrackCapacity uint32
	// AllocTries bounds the probes for a free local port per new
	// connection (at most 64). Zero keeps the default (32).
	AllocTries uint32
}

// Datapath is the loaded program with its maps and attachments.
type Datapath struct {
	objs  xdplbObjects
	links map[int]link.Link
}

// Load loads the program and creates its maps.
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
	d := &Datapath{links: map[int]link.Link{}}
	if err := spec.LoadAndAssign(&d.objs, nil); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("load BPF program: %+v", verr)
		}
		return nil, fmt.Errorf("load BPF program: %w", err)
	}
	return d, nil
}

// Close detaches the program from every interface and releases the maps.
func (d *Datapath) Close() error {
	var errs []error
	for ifindex, l := range d.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach from ifindex %d: %w", ifindex, err))
		}
		delete(d.links, ifindex)
	}
	if err := d.objs.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
