package datapath

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
)

// The conntrack halves of layouts 3 and 4: what struct ct_fwd and struct
// ct_rev are today without the fields layout 5 appended (seq_next and
// padding). A copy is the old bytes followed by zeros, which the datapath
// reads as "not known yet".
type (
	ctFwd4 [48]byte
	ctRev4 [56]byte
)

// oldConntrack is the conntrack of an adopted older layout while its
// entries move to maps of this layout. The old maps keep their pins, and
// the program still attached keeps using them, until FinishMigration: the
// new maps are made unpinned at Load, get a first copy, and take the pins
// only once the new program runs on every interface, after a last copy of
// what the old program added meanwhile. Until then a daemon that stops or
// dies leaves the old state pinned and whole. A half whose pin already
// holds this layout's size (a migration that stopped between its two
// renames) is adopted as it is: fwd or rev is then nil.
type oldConntrack struct {
	pinPath  string
	fwd, rev *ebpf.Map
}

// upgradeSuffix names a new map's pin while it waits to replace the old
// one (a rename, which replaces in one step). Not a dot: bpffs refuses
// names with one.
const upgradeSuffix = "_upgrade"

// openOldConntrack opens the conntrack maps pinned at pinPath if they are
// of layout 3 or 4, and has spec make this layout's maps unpinned in their
// place. Nil if there is nothing to upgrade.
func openOldConntrack(spec *ebpf.CollectionSpec, pinPath string) (*oldConntrack, error) {
	v, err := pinnedLayout(pinPath)
	if err != nil || (v != 3 && v != 4) {
		return nil, err
	}
	o := &oldConntrack{pinPath: pinPath}
	for _, h := range []struct {
		name string
		old  **ebpf.Map
	}{{"ct_forward", &o.fwd}, {"ct_reverse", &o.rev}} {
		m, err := ebpf.LoadPinnedMap(filepath.Join(pinPath, h.name), nil)
		if err != nil {
			o.close()
			return nil, fmt.Errorf("open pinned %s of layout %d: %w", h.name, v, err)
		}
		if m.ValueSize() == spec.Maps[h.name].ValueSize {
			m.Close() // upgraded already: adopted by name
			continue
		}
		*h.old = m
		spec.Maps[h.name].Pinning = ebpf.PinNone
	}
	return o, nil
}

func (o *oldConntrack) close() {
	for _, m := range []*ebpf.Map{o.fwd, o.rev} {
		if m != nil {
			m.Close()
		}
	}
}

// copyConntrack copies the entries of the old maps that the new ones do
// not have yet, reverse halves first as the datapath inserts them. A
// forward half is copied only if the reverse half its local port names is
// its own: once the new program runs it may have given that port to
// another client (the old program gave it out after the first copy), and
// the newer connection keeps it. It returns how many connections (forward
// halves) it copied.
func (d *Datapath) copyConntrack(o *oldConntrack) (int, error) {
	if o.rev != nil {
		if _, err := copyHalf(o.rev, d.objs.CtReverse, func(k xdplbCtKey, v ctRev4) ([64]byte, bool) {
			var n [64]byte
			copy(n[:], v[:])
			return n, true
		}); err != nil {
			return 0, err
		}
	}
	if o.fwd == nil {
		return 0, nil
	}
	var rev xdplbCtRev
	return copyHalf(o.fwd, d.objs.CtForward, func(k xdplbCtKey, v ctFwd4) ([56]byte, bool) {
		var n [56]byte
		copy(n[:], v[:])
		var f xdplbCtFwd
		if err := binary.Read(bytes.NewReader(n[:]), binary.NativeEndian, &f); err != nil {
			return n, false
		}
		err := d.objs.CtReverse.Lookup(reverseKeyOf(k, &f), &rev)
		return n, err == nil && rev.Client == k
	})
}

// copyHalf inserts every entry of from that convert accepts and to does
// not have: an entry the new map has is newer (the new program made it,
// or an earlier copy did) and is kept.
func copyHalf[Old, New any](from, to *ebpf.Map, convert func(xdplbCtKey, Old) (New, bool)) (int, error) {
	copied := 0
	err := walk(from, func(keys []xdplbCtKey, vals []Old) error {
		for i, k := range keys {
			v, ok := convert(k, vals[i])
			if !ok {
				continue
			}
			err := to.Update(k, v, ebpf.UpdateNoExist)
			switch {
			case err == nil:
				copied++
			case errors.Is(err, ebpf.ErrKeyExist):
			default:
				return fmt.Errorf("copy %s entry into %s: %w", from, to, err)
			}
		}
		return nil
	})
	return copied, err
}

// FinishMigration ends an upgrade of the conntrack layout, once the new
// program has replaced the old one on every interface: the connections the
// old program opened since the first copy are copied too, the new maps
// take the old ones' pins (each in one rename) and the layout version is
// stamped. It does nothing when Load upgraded nothing.
func (d *Datapath) FinishMigration() (int, error) {
	o := d.oldCT
	if o == nil {
		return 0, nil
	}
	d.oldCT = nil
	defer o.close()
	n, err := d.copyConntrack(o)
	if err != nil {
		return n, fmt.Errorf("copy the connections opened during the upgrade: %w", err)
	}
	for _, h := range []struct {
		name     string
		old, new *ebpf.Map
	}{{"ct_forward", o.fwd, d.objs.CtForward}, {"ct_reverse", o.rev, d.objs.CtReverse}} {
		if h.old == nil {
			continue
		}
		final := filepath.Join(o.pinPath, h.name)
		// A stopped upgrade may have left this pin.
		if err := os.Remove(final + upgradeSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("remove a stopped upgrade's pin: %w", err)
		}
		if err := h.new.Pin(final + upgradeSuffix); err != nil {
			return n, fmt.Errorf("pin the upgraded %s: %w", h.name, err)
		}
		if err := os.Rename(final+upgradeSuffix, final); err != nil {
			return n, fmt.Errorf("put the upgraded %s in place: %w", h.name, err)
		}
	}
	return n, d.stampLayout()
}
