package toa

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cilium/ebpf"

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

// lockPins holds the lock on PinRoot while xdplb toa changes pins
// (datapath.LockPinDir).
func lockPins() (unlock func(), err error) {
	return datapath.LockPinDir("TOA pin directory", PinRoot, "the reader would be detached")
}

// removeRootIfEmpty takes PinRoot away once nothing of xdplb toa is
// pinned below it.
func removeRootIfEmpty() { datapath.RemoveDirIfEmpty(PinRoot) }

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
