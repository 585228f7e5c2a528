package toa

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Removed says what Remove did.
type Removed struct {
	Cgroup Cgroup
	PinDir string
	// Found is false when the reader was not installed there: nothing was
	// done.
	Found bool
}

// Remove detaches the reader from the cgroup v2 directory at cgroupPath
// ("" for the root of the cgroup v2 mount) and removes its pins. It takes
// away only what Install made; removing twice is not an error.
func Remove(cgroupPath string) (Removed, error) {
	cg, err := OpenCgroup(cgroupPath)
	if errors.Is(err, os.ErrNotExist) {
		return Removed{}, fmt.Errorf("%w (if the cgroup is gone, xdplb toa status shows its id, and "+
			"xdplb toa remove --cgroup-id ID removes what is left)", err)
	}
	if err != nil {
		return Removed{}, err
	}
	r, err := RemoveID(cg.ID)
	r.Cgroup = cg
	return r, err
}

// RemoveID is Remove for the cgroup with id: the one way to remove the
// pins of a reader whose cgroup is gone.
func RemoveID(id uint64) (Removed, error) {
	if err := requireRoot("remove"); err != nil {
		return Removed{}, err
	}
	r := Removed{Cgroup: Cgroup{ID: id}, PinDir: pinDir(id)}
	// Nothing was ever installed: there is nothing to lock, and no BPF
	// file system to mount for it.
	if _, err := os.Stat(PinRoot); errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	unlock, err := lockPins()
	if err != nil {
		return Removed{}, err
	}
	defer unlock()
	r.Found, err = removePins(id)
	removeRootIfEmpty()
	return r, err
}

// removePins detaches and unpins the links and unpins the maps in the
// cgroup's pin directory, then removes the directory. Anything else found
// there is left alone and named.
func removePins(id uint64) (found bool, err error) {
	dir := pinDir(id)
	fi, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("%s is not a directory xdplb toa made; left alone", dir)
	}
	var errs []error
	for _, h := range hooks {
		if err := removeLink(filepath.Join(dir, h.name), h); err != nil {
			errs = append(errs, err)
		}
	}
	for name, typ := range mapPins {
		if err := removeMap(filepath.Join(dir, name), typ); err != nil {
			errs = append(errs, err)
		}
	}
	if err := unix.Rmdir(dir); errors.Is(err, unix.ENOTEMPTY) {
		errs = append(errs, fmt.Errorf("%s still holds files xdplb toa did not make; left them there", dir))
	} else if err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", dir, err))
	}
	return true, errors.Join(errs...)
}

// removeLink detaches the cgroup link pinned at pin from h's hook and
// unpins it. A pin that is not such a link is not ours and stays.
func removeLink(pin string, h hook) error {
	l, err := link.LoadPinnedLink(pin, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("%s: %w", pin, err)
	}
	defer l.Close()
	if info, err := l.Info(); err != nil {
		return fmt.Errorf("%s: %w", pin, err)
	} else if c := info.Cgroup(); info.Type != link.CgroupType || c == nil || ebpf.AttachType(c.AttachType) != h.attach {
		return fmt.Errorf("%s is not the reader's %s link; left alone", pin, h.name)
	}
	// Explicitly, in case something else holds the link open too. A link
	// whose cgroup is gone is detached already.
	if err := l.Detach(); err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("detach the %s link %s: %w", h.name, pin, err)
	}
	if err := l.Unpin(); err != nil {
		return fmt.Errorf("unpin %s: %w", pin, err)
	}
	return nil
}

// removeMap unpins the map pinned at pin if it has the type the reader's
// map of that name has.
func removeMap(pin string, typ ebpf.MapType) error {
	m, err := ebpf.LoadPinnedMap(pin, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("%s: %w", pin, err)
	}
	defer m.Close()
	if m.Type() != typ {
		return fmt.Errorf("%s is a %s map, not the reader's; left alone", pin, m.Type())
	}
	if err := m.Unpin(); err != nil {
		return fmt.Errorf("unpin %s: %w", pin, err)
	}
	return nil
}
