package datapath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/ident"
)

// Attach hooks the program to the interface and returns the mode in effect.
// If an earlier run left its attachment pinned there, the program in it is
// replaced in one step, so no packet meets a missing program; the mode then
// stays what it was.
func (d *Datapath) Attach(ifindex int, mode ident.XDPMode) (ident.XDPMode, error) {
	if _, ok := d.links[ifindex]; ok {
		return "", fmt.Errorf("ifindex %d: already attached", ifindex)
	}
	if err := d.addInterface(ifindex); err != nil {
		return "", err
	}
	if d.pinPath != "" {
		l, err := link.LoadPinnedLink(d.linkPin(ifindex), nil)
		switch {
		case err == nil:
			if err := l.Update(d.objs.Xdplb); err != nil {
				l.Close()
				return "", fmt.Errorf("replace program on ifindex %d: %w", ifindex, err)
			}
			d.links[ifindex] = l
			return attachedMode(ifindex), nil
		case !errors.Is(err, os.ErrNotExist):
			return "", fmt.Errorf("open pinned attachment on ifindex %d: %w", ifindex, err)
		}
	}
	switch mode {
	case ident.ModeNative, ident.ModeGeneric:
		if err := d.attach(ifindex, mode); err != nil {
			return "", err
		}
		return mode, nil
	case ident.ModeAuto:
		nativeErr := d.attach(ifindex, ident.ModeNative)
		if nativeErr == nil {
			return ident.ModeNative, nil
		}
		if err := d.attach(ifindex, ident.ModeGeneric); err != nil {
			return "", errors.Join(nativeErr, err)
		}
		return ident.ModeGeneric, nil
	default:
		return "", fmt.Errorf("unknown XDP mode %q (want native, generic or auto)", mode)
	}
}

func (d *Datapath) attach(ifindex int, mode ident.XDPMode) error {
	flags := link.XDPDriverMode
	if mode == ident.ModeGeneric {
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
	if d.pinPath != "" {
		if err := l.Pin(d.linkPin(ifindex)); err != nil {
			l.Close()
			return fmt.Errorf("pin attachment on ifindex %d: %w", ifindex, err)
		}
	}
	d.links[ifindex] = l
	return nil
}

func (d *Datapath) linkPin(ifindex int) string {
	return filepath.Join(d.pinPath, fmt.Sprintf("link_xdp_if%d", ifindex))
}

// attachedMode asks the kernel how the program sits on the interface.
func attachedMode(ifindex int) ident.XDPMode {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil || l.Attrs().Xdp == nil {
		return ident.ModeAuto
	}
	switch l.Attrs().Xdp.AttachMode {
	case 1: // XDP_ATTACHED_DRV
		return ident.ModeNative
	case 2: // XDP_ATTACHED_SKB
		return ident.ModeGeneric
	}
	return ident.ModeAuto
}
