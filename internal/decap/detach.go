package decap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Detached says what Detach did.
type Detached struct {
	Interface string
	PinDir    string
	// Found is false when the decapsulator was not attached there:
	// nothing was done.
	Found bool
}

// Detach detaches the decapsulator from interface ifname of the calling
// thread's network namespace and removes its pins. It takes away only what
// Attach made; detaching twice is not an error, and neither is an
// interface that is gone.
func Detach(ifname string) (Detached, error) {
	if err := checkIfname(ifname); err != nil {
		return Detached{}, err
	}
	if err := requireRoot("detach"); err != nil {
		return Detached{}, err
	}
	netns, err := currentNetns()
	if err != nil {
		return Detached{}, err
	}
	d := Detached{Interface: ifname, PinDir: pinDir(ifname, netns)}
	// Nothing was ever attached: there is nothing to lock, and no BPF
	// file system to mount for it.
	if _, err := os.Lstat(PinRoot); errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	unlock, err := lockPins()
	if err != nil {
		return Detached{}, err
	}
	defer unlock()
	d.Found, err = removePins(d.PinDir)
	removeRootIfEmpty()
	return d, err
}

// removePins detaches and unpins the link and unpins the maps in the pin
// directory dir, then removes the directory. Anything else found there is
// left alone and named.
func removePins(dir string) (found bool, err error) {
	if err := checkDir(dir); errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	var errs []error
	if err := removeLink(filepath.Join(dir, linkPin)); err != nil {
		errs = append(errs, err)
	}
	for name, typ := range mapPins {
		if err := removeMap(filepath.Join(dir, name), typ); err != nil {
			errs = append(errs, err)
		}
	}
	if err := unix.Rmdir(dir); errors.Is(err, unix.ENOTEMPTY) {
		errs = append(errs, fmt.Errorf("%s still holds files xdplb decap did not make; left them there", dir))
	} else if err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", dir, err))
	}
	return true, errors.Join(errs...)
}

// removeLink detaches the XDP link pinned at pin and unpins it. A pin
// that is not such a link is not ours and stays.
func removeLink(pin string) error {
	if err := checkPin(pin); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	l, err := link.LoadPinnedLink(pin, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", pin, err)
	}
	defer l.Close()
	if info, err := l.Info(); err != nil {
		return fmt.Errorf("%s: %w", pin, err)
	} else if info.Type != link.XDPType {
		return fmt.Errorf("%s is not an XDP link; xdplb decap did not pin it: left alone", pin)
	}
	// Explicitly, in case something else holds the link open too. A link
	// whose interface is gone is detached already.
	if err := l.Detach(); err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("detach the XDP link %s: %w", pin, err)
	}
	if err := l.Unpin(); err != nil {
		return fmt.Errorf("unpin %s: %w", pin, err)
	}
	return nil
}

// removeMap unpins the map pinned at pin if it has the type the
// decapsulator's map of that name has.
func removeMap(pin string, typ ebpf.MapType) error {
	if err := checkPin(pin); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	m, err := ebpf.LoadPinnedMap(pin, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", pin, err)
	}
	defer m.Close()
	if m.Type() != typ {
		return fmt.Errorf("%s is a %s map, not the decapsulator's; left alone", pin, m.Type())
	}
	if err := m.Unpin(); err != nil {
		return fmt.Errorf("unpin %s: %w", pin, err)
	}
	return nil
}
