package toa

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// kernelFloor names what the reader needs of the kernel, for errors.
const kernelFloor = "the TOA reader needs Linux 5.10 or later (5.10: the handshake ACK's TCP header in sockops; " +
	"5.8: the getpeername hooks)"

// Installed says what Install did.
type Installed struct {
	Cgroup Cgroup
	PinDir string
	// Updated is set when the reader was installed on the cgroup already:
	// its programs were replaced in place, and sockets keep the
	// addresses they have.
	Updated bool
}

// Install attaches the reader to the cgroup v2 directory at cgroupPath
// ("" for the root of the cgroup v2 mount) and pins it under PinRoot. On a
// cgroup that has it, it replaces the programs in place, so an upgrade
// needs no Remove, and attaches any hook found missing.
func Install(cgroupPath string) (Installed, error) {
	cg, err := OpenCgroup(cgroupPath)
	if err != nil {
		return Installed{}, err
	}
	if err := requireRoot("install"); err != nil {
		return Installed{}, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return Installed{}, fmt.Errorf("remove memlock limit: %w", err)
	}
	unlock, err := lockPins()
	if err != nil {
		return Installed{}, err
	}
	defer unlock()
	dir, err := makePinDir(cg.ID)
	if err != nil {
		return Installed{}, err
	}
	fresh := !anyLinkPinned(dir)
	updated, err := installIn(cg, dir)
	if err != nil {
		if fresh {
			// A fresh install that failed half way leaves nothing.
			if _, rerr := removePins(cg.ID); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return Installed{}, err
	}
	return Installed{Cgroup: cg, PinDir: dir, Updated: updated}, nil
}

// installIn loads the reader with its maps pinned in dir and puts it on
// every hook of the cgroup.
func installIn(cg Cgroup, dir string) (updated bool, err error) {
	objs, err := load(dir)
	if err != nil {
		return false, err
	}
	// The kernel holds what the links use; these handles are not needed.
	defer objs.Close()
	for _, h := range hooks {
		u, err := attach(cg, dir, h, h.prog(&objs.toaPrograms))
		if err != nil {
			return false, err
		}
		updated = updated || u
	}
	return updated, nil
}

func anyLinkPinned(dir string) bool {
	for _, h := range hooks {
		if _, err := os.Lstat(filepath.Join(dir, h.name)); err == nil {
			return true
		}
	}
	return false
}

// load loads the reader's programs, with its maps pinned in dir: the ones
// already there are used, so that an update keeps the counters and the
// addresses of established connections.
func load(dir string) (*toaObjects, error) {
	spec, err := loadToa()
	if err != nil {
		return nil, fmt.Errorf("read the TOA reader's BPF object: %w", err)
	}
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinByName
	}
	var objs toaObjects
	err = spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: dir}})
	var verr *ebpf.VerifierError
	switch {
	case err == nil:
		return &objs, nil
	case errors.Is(err, ebpf.ErrMapIncompatible):
		return nil, fmt.Errorf("the maps pinned in %s were made by another version of the reader (%v): "+
			"remove it with xdplb toa remove and install again", dir, err)
	case errors.As(err, &verr):
		return nil, fmt.Errorf("the kernel (%s) refused the TOA reader; %s: %v", kernelRelease(), kernelFloor, verr)
	case errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, unix.EINVAL):
		// What an older kernel says of a map type, attach type or
		// context field it does not know.
		return nil, fmt.Errorf("load the TOA reader on kernel %s: %w; %s", kernelRelease(), err, kernelFloor)
	}
	return nil, fmt.Errorf("load the TOA reader: %w", err)
}

// attach puts prog on the cgroup at hook h: in place of the program of the
// link pinned in dir if there is one, or with a new link pinned there.
func attach(cg Cgroup, dir string, h hook, prog *ebpf.Program) (updated bool, err error) {
	pin := filepath.Join(dir, h.name)
	pinned, err := link.LoadPinnedLink(pin, nil)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return false, fmt.Errorf("%s: %w", pin, err)
	default:
		defer pinned.Close()
		if attachedTo(pinned, h) == cg.ID {
			if err := pinned.Update(prog); err != nil {
				return false, fmt.Errorf("replace the %s program on cgroup %s: %w", h.name, cg.Path, err)
			}
			return true, nil
		}
		// Detached behind our back (bpftool link detach): attach anew.
		if err := pinned.Unpin(); err != nil {
			return false, fmt.Errorf("%s: %w", pin, err)
		}
	}
	l, err := link.AttachCgroup(link.CgroupOptions{Path: cg.Path, Attach: h.attach, Program: prog})
	if err != nil {
		return false, attachError(cg, h, err)
	}
	// Closing the handle detaches a link that did not get pinned.
	defer l.Close()
	if err := l.Pin(pin); err != nil {
		return false, fmt.Errorf("pin the %s link of cgroup %s at %s: %w", h.name, cg.Path, pin, err)
	}
	return false, nil
}

// attachedTo returns the id of the cgroup the link l holds h's program on,
// or 0 if it is not such a link or is detached.
func attachedTo(l link.Link, h hook) uint64 {
	info, err := l.Info()
	if err != nil || info.Type != link.CgroupType {
		return 0
	}
	c := info.Cgroup()
	if c == nil || ebpf.AttachType(c.AttachType) != h.attach {
		return 0
	}
	return c.CgroupId
}

func attachError(cg Cgroup, h hook, err error) error {
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("attach the %s program to cgroup %s: %w (a program attached to it without "+
			"BPF_F_ALLOW_MULTI keeps others off; `bpftool cgroup show %s` lists what is there)", h.name, cg.Path, err, cg.Path)
	case errors.Is(err, unix.EINVAL), errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("attach the %s program to cgroup %s on kernel %s: %w; %s", h.name, cg.Path, kernelRelease(), err, kernelFloor)
	}
	return fmt.Errorf("attach the %s program to cgroup %s: %w", h.name, cg.Path, err)
}

func requireRoot(verb string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("xdplb toa %s must run as root: it loads BPF programs, attaches them to cgroups and pins them under %s", verb, PinRoot)
	}
	return nil
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}
