package datapath

import (
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

// oldConntrack holds the conntrack maps of an adopted older layout while
// their entries move to maps of this layout. Their pins are taken away
// before loading, so that loading makes new maps under those names; the
// program still attached goes on using the old ones until it is replaced,
// so what it adds in between is copied once more (FinishMigration).
type oldConntrack struct {
	pinPath  string
	fwd, rev *ebpf.Map
}

// conntrackPins are the conntrack maps' pin names.
var conntrackPins = []string{"ct_forward", "ct_reverse"}

// unpinOldConntrack takes the pins of layout 3 or 4 conntrack maps at
// pinPath, keeping the maps open. Nil if there are none to take.
func unpinOldConntrack(pinPath string) (*oldConntrack, error) {
	v, err := pinnedLayout(pinPath)
	if err != nil || (v != 3 && v != 4) {
		return nil, err
	}
	o := &oldConntrack{pinPath: pinPath}
	maps := []**ebpf.Map{&o.fwd, &o.rev}
	for i, name := range conntrackPins {
		m, err := ebpf.LoadPinnedMap(filepath.Join(pinPath, name), nil)
		if err != nil {
			o.close()
			return nil, fmt.Errorf("open pinned %s of layout %d: %w", name, v, err)
		}
		*maps[i] = m
	}
	for _, m := range []*ebpf.Map{o.fwd, o.rev} {
		if err := m.Unpin(); err != nil {
			return nil, errors.Join(fmt.Errorf("unpin %s to upgrade it: %w", m, err), o.restore())
		}
	}
	return o, nil
}

// restore pins the old maps back where they were, replacing whatever a
// failed load pinned there: the program still attached uses them, and the
// next daemon must find them.
func (o *oldConntrack) restore() error {
	if o == nil {
		return nil
	}
	var errs []error
	for i, m := range []*ebpf.Map{o.fwd, o.rev} {
		path := filepath.Join(o.pinPath, conntrackPins[i])
		if !m.IsPinned() {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			if err := m.Pin(path); err != nil {
				errs = append(errs, fmt.Errorf("pin %s back: %w", path, err))
			}
		}
	}
	o.close()
	return errors.Join(errs...)
}

func (o *oldConntrack) close() {
	for _, m := range []*ebpf.Map{o.fwd, o.rev} {
		if m != nil {
			m.Close()
		}
	}
}

// copyConntrack copies every entry of the old maps that the new ones do
// not have yet, forward halves after reverse ones as the datapath inserts
// them. It returns how many connections (forward halves) it copied.
func (d *Datapath) copyConntrack(o *oldConntrack) (int, error) {
	if _, err := copyHalf(o.rev, d.objs.CtReverse, func(v ctRev4) (n [64]byte) { copy(n[:], v[:]); return }); err != nil {
		return 0, err
	}
	return copyHalf(o.fwd, d.objs.CtForward, func(v ctFwd4) (n [56]byte) { copy(n[:], v[:]); return })
}

// copyHalf inserts every entry of from missing in to, converted. An entry
// the new map has is newer (the new program made it, or an earlier copy
// did): it is kept.
func copyHalf[Old, New any](from, to *ebpf.Map, convert func(Old) New) (int, error) {
	copied := 0
	err := walk(from, func(keys []xdplbCtKey, vals []Old) error {
		for i, k := range keys {
			err := to.Update(k, convert(vals[i]), ebpf.UpdateNoExist)
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
// old program opened since the first copy are copied too, and the old maps
// are released. It does nothing when Load upgraded nothing.
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
	return n, nil
}
