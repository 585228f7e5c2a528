package toa

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/internal/datapath"
)

// PinRoot holds what Install pins, so that the reader outlives xdplb toa:
// one directory per cgroup, named after the cgroup's id, with a link per
// hook and the two maps.
const PinRoot = "/sys/fs/bpf/xdplb-toa"

// hook is one of the reader's attachments to a cgroup.
type hook struct {
	name   string // of its link's pin, and in messages
	attach ebpf.AttachType
	prog   func(*toaPrograms) *ebpf.Program
}

var hooks = []hook{
	{"sockops", ebpf.AttachCGroupSockOps, func(p *toaPrograms) *ebpf.Program { return p.ToaSockops }},
	{"getpeername4", ebpf.AttachCgroupInet4GetPeername, func(p *toaPrograms) *ebpf.Program { return p.ToaGetpeername4 }},
	{"getpeername6", ebpf.AttachCgroupInet6GetPeername, func(p *toaPrograms) *ebpf.Program { return p.ToaGetpeername6 }},
}

// mapPins are the maps pinned by name next to the links, with their types:
// Remove takes away only what matches.
var mapPins = map[string]ebpf.MapType{
	"toa_addrs":        ebpf.SkStorage,
	"toa_reader_stats": ebpf.PerCPUArray,
}

func pinDir(id uint64) string {
	return filepath.Join(PinRoot, strconv.FormatUint(id, 10))
}

// lockPins makes the BPF file system's directory PinRoot if need be and
// holds a lock until unlock, so that xdplb toa commands change pins one at
// a time: two installs at once would both find no link and race to pin
// one, and the loser's cleanup would take the winner's pins. The lock is
// on the directory above PinRoot, because the last Remove takes PinRoot
// away.
func lockPins() (unlock func(), err error) {
	transient, err := datapath.EnsureBPFFS("TOA pin directory", PinRoot)
	if err != nil {
		return nil, err
	}
	if transient != "" {
		return nil, fmt.Errorf("the BPF file system at %s is private to this mount namespace: the reader would be "+
			"detached when xdplb toa exits; run it in the host's mount namespace", PinRoot)
	}
	above := filepath.Dir(PinRoot)
	root, err := os.Open(above)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(root.Fd()), unix.LOCK_EX); err != nil {
		root.Close()
		return nil, fmt.Errorf("lock %s: %w", above, err)
	}
	// A Remove may have taken PinRoot away while this one waited.
	if err := os.Mkdir(PinRoot, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		root.Close()
		return nil, fmt.Errorf("make %s: %w", PinRoot, err)
	}
	return func() { root.Close() }, nil
}

// removeRootIfEmpty takes PinRoot away once no cgroup has the reader, so
// that nothing of xdplb toa is left behind. A directory with anything in
// it stays.
func removeRootIfEmpty() {
	if fi, err := os.Lstat(PinRoot); err == nil && fi.IsDir() {
		os.Remove(PinRoot)
	}
}

// makePinDir makes the cgroup's pin directory.
func makePinDir(id uint64) (string, error) {
	dir := pinDir(id)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("make %s: %w", dir, err)
	}
	// Pins are made by path: a link put here by someone else would lead
	// them anywhere.
	if fi, err := os.Lstat(dir); err != nil {
		return "", err
	} else if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory (a link?); xdplb toa did not make it: remove it and install again", dir)
	}
	return dir, nil
}
