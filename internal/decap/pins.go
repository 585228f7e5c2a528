package decap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/internal/datapath"
)

// PinRoot holds what Attach pins, so that the decapsulator outlives xdplb
// decap: one directory per interface, with the XDP link and the two maps.
const PinRoot = "/sys/fs/bpf/xdplb-decap"

// The pins in an interface's directory.
const linkPin = "link"

// mapPins are the maps pinned by name next to the link, with their types:
// Detach takes away only what matches.
var mapPins = map[string]ebpf.MapType{
	"decap_sources": ebpf.Hash,
	"decap_stats":   ebpf.PerCPUArray,
}

// currentNetns returns the inode number of the calling thread's network
// namespace: where interface names are looked up and XDP programs
// attached. Interface names are only unique within one.
func currentNetns() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return 0, fmt.Errorf("find this thread's network namespace: %w", err)
	}
	return st.Ino, nil
}

// netnsMark comes between an interface's name and its network namespace's
// inode number in the name of its pin directory.
const netnsMark = "@netns-"

// dirName names the pin directory of interface ifname in network
// namespace netns: eth0@netns-4026531840. The BPF file system refuses
// names with a dot, which interface names may have (eth0.100): dots
// become colons, which interface names cannot have. The namespace is
// always named, as it cannot be told reliably whether it is the host's
// (pid 1's may not be readable); and the mark is found from the end, so
// an interface name holding it changes nothing.
func dirName(ifname string, netns uint64) string {
	return strings.ReplaceAll(ifname, ".", ":") + netnsMark + strconv.FormatUint(netns, 10)
}

// parseDirName undoes dirName.
func parseDirName(name string) (ifname string, netns uint64, ok bool) {
	i := strings.LastIndex(name, netnsMark)
	if i < 0 {
		return "", 0, false
	}
	netns, err := strconv.ParseUint(name[i+len(netnsMark):], 10, 64)
	if err != nil || netns == 0 {
		return "", 0, false
	}
	ifname = strings.ReplaceAll(name[:i], ":", ".")
	if checkIfname(ifname) != nil {
		return "", 0, false
	}
	return ifname, netns, true
}

func pinDir(ifname string, netns uint64) string {
	return filepath.Join(PinRoot, dirName(ifname, netns))
}

// lockPins holds the lock on PinRoot while xdplb decap changes pins
// (datapath.LockPinDir).
func lockPins() (unlock func(), err error) {
	return datapath.LockPinDir("decap pin directory", PinRoot, "the decapsulator would be detached")
}

// removeRootIfEmpty takes PinRoot away once nothing of xdplb decap is
// pinned below it.
func removeRootIfEmpty() { datapath.RemoveDirIfEmpty(PinRoot) }

// makePinDir makes an interface's pin directory.
func makePinDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("make %s: %w", dir, err)
	}
	return checkDir(dir)
}

// checkDir refuses a pin directory that is not one: pins are made and
// read by path, and a link put there by someone else would lead them
// anywhere.
func checkDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (a link?); xdplb decap did not make it: left alone", dir)
	}
	return nil
}

// checkPin returns os.ErrNotExist if nothing is at pin, and refuses a
// symbolic link, which xdplb decap never makes: opening the pin would
// follow it.
func checkPin(pin string) error {
	fi, err := os.Lstat(pin)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link, which xdplb decap does not make; left alone", pin)
	}
	return nil
}
