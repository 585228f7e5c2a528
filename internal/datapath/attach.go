package datapath

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf/link"
)

// Mode is how the program hooks into an interface.
type Mode string

const (
	// Native runs in the driver, before an skb exists: the fast path.
	Native Mode = "native"
	// Generic runs after the skb is built; it works on any interface.
	Generic Mode = "generic"
	// Auto tries Native and falls back to Generic.
	Auto Mode = "auto"
)

// Attach hooks the program to the interface and returns the mode in effect.
func (d *Datapath) Attach(ifindex int, mode Mode) (Mode, error) {
	if _, ok := d.links[ifindex]; ok {
		return "", fmt.Errorf("ifindex %d: already attached", ifindex)
	}
	switch mode {
	case Native, Generic:
		if err := d.attach(ifindex, mode); err != nil {
			return "", err
		}
		return mode, nil
	case Auto:
		nativeErr := d.attach(ifindex, Native)
		if nativeErr == nil {
			return Native, nil
		}
		if err := d.attach(ifindex, Generic); err != nil {
			return "", errors.Join(nativeErr, err)
		}
		return Generic, nil
	default:
		return "", fmt.Errorf("unknown XDP mode %q (want native, generic or auto)", mode)
	}
}

func (d *Datapath) attach(ifindex int, mode Mode) error {
	flags := link.XDPDriverMode
	if mode == Generic {
		flags = link.XDPGenericMode
	}
	l, err := link.AttachXDP(link.XDPOptions{
		Program:   d.objs.Xdplb,
		Interface: ifindex,
		Flags:     flags,
	})
	if err != nil {
		return fmt.Errorf("attach XDP in %s mode to ifindex %d: %w", mode, ifindex, err)
	}
	d.links[ifindex] = l
	return nil
}
