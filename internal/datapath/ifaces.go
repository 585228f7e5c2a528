package datapath

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// Which frames on an attached interface are the host's: the program's
// tables of the interfaces' MACs and VLANs (bpf/lib/sanity.h), filled when
// the program is attached.

// MaxInterfaces is how many interfaces the program can be attached to: the
// length of its table of their MAC addresses. MaxVLANs bounds the VLANs
// on them.
const (
	MaxInterfaces = 16
	MaxVLANs      = 64
)

// addInterface tells the program, before it sees the interface's first
// frame, which frames on it are the host's: those to its MAC (an interface
// without an Ethernet address is not checked), untagged or tagged for a
// VLAN the host has on it. A VLAN added later is not seen until the daemon
// restarts.
func (d *Datapath) addInterface(ifindex int) error {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return fmt.Errorf("ifindex %d: %w", ifindex, err)
	}
	if err := d.addVLANs(ifindex); err != nil {
		return err
	}
	mac := l.Attrs().HardwareAddr
	if len(mac) != 6 {
		return nil
	}
	if len(d.ifMACs) == MaxInterfaces {
		return fmt.Errorf("ifindex %d: at most %d interfaces", ifindex, MaxInterfaces)
	}
	d.ifMACs = append(d.ifMACs, xdplbIfMac{Ifindex: uint32(ifindex), Mac: [6]uint8(mac)})
	var table [MaxInterfaces]xdplbIfMac
	copy(table[:], d.ifMACs)
	if err := d.objs.IfMacs.Set(table); err != nil {
		return fmt.Errorf("write interface MACs: %w", err)
	}
	return nil
}

// addVLANs adds the VLAN interfaces on ifindex to the program's table.
func (d *Datapath) addVLANs(ifindex int) error {
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list interfaces: %w", err)
	}
	for _, l := range links {
		v, ok := l.(*netlink.Vlan)
		if !ok || v.ParentIndex != ifindex {
			continue
		}
		if err := d.addVLAN(ifindex, uint16(v.VlanId)); err != nil {
			return err
		}
	}
	return nil
}

// vlanCheckOff, as the first entry of the VLAN table, turns the check off.
const vlanCheckOff = 0xffffffff

// addVLAN adds one VLAN on ifindex to the program's table. Past MaxVLANs
// the check is turned off (see VLANCheckOff): a trunk with more VLANs
// than the table holds must keep working.
func (d *Datapath) addVLAN(ifindex int, vid uint16) error {
	var table [MaxVLANs]xdplbIfVlan
	if len(d.ifVLANs) == MaxVLANs || d.vlanCheckOff {
		d.vlanCheckOff = true
		table[0].Ifindex = vlanCheckOff
	} else {
		d.ifVLANs = append(d.ifVLANs, xdplbIfVlan{Ifindex: uint32(ifindex), Vid: vid})
		copy(table[:], d.ifVLANs)
	}
	if err := d.objs.IfVlans.Set(table); err != nil {
		return fmt.Errorf("write interface VLANs: %w", err)
	}
	return nil
}

// VLANCheckOff reports whether the attached interfaces have more VLANs
// than the program's table holds, so that tagged frames of any VLAN are
// balanced.
func (d *Datapath) VLANCheckOff() bool { return d.vlanCheckOff }
