package datapath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ensureBPFFS is EnsureBPFFS for the daemon's state.pin_path.
func ensureBPFFS(path string) (transient string, err error) {
	return EnsureBPFFS("state.pin_path", path)
}

// EnsureBPFFS makes sure path is a directory on a BPF file system,
// mounting one on its parent if that is the usual /sys/fs/bpf and nothing
// is there. Any other place that is not a BPF file system is refused: what
// is pinned there is later removed, and the daemon runs as root. Errors
// name path as what: the setting or command it comes from. xdplb toa uses
// it for its own pins.
//
// transient, when not empty, says why what is pinned at path vanishes when
// this process exits.
func EnsureBPFFS(what, path string) (transient string, err error) {
	parent := filepath.Dir(path)
	ok, err := onBPFFS(parent)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", what, path, err)
	}
	mounted := false
	if !ok {
		if parent != "/sys/fs/bpf" {
			return "", notBPFFS(what, path, parent)
		}
		if err := unix.Mount("bpf", parent, "bpf", 0, "mode=0700"); err != nil {
			return "", fmt.Errorf("mount BPF file system on %s: %w", parent, err)
		}
		mounted = true
	}
	if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("%s %s: %w", what, path, err)
	}
	// An existing path may be another file system mounted on the BPF one,
	// or a link leading off it.
	if ok, err := onBPFFS(path); err != nil {
		return "", fmt.Errorf("%s %s: %w", what, path, err)
	} else if !ok {
		return "", notBPFFS(what, path, path)
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%s %s: not a directory", what, path)
	}
	dir, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", what, path, err)
	}
	root, err := isMountRoot(int(dir.Fd()))
	dir.Close()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", what, path, err)
	} else if root {
		return "", mountRootError(what, path)
	}
	if !visibleToInit(path) {
		if mounted {
			return fmt.Sprintf("the BPF file system at %s was mounted by this process in a private mount namespace; "+
				"pinned state vanishes when the daemon exits", parent), nil
		}
		return fmt.Sprintf("the BPF file system at %s is not visible in the init mount namespace (the daemon runs in a private one, "+
			"as under ip netns exec); pinned state vanishes when the last process in that namespace exits", path), nil
	}
	return "", nil
}

func onBPFFS(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, err
	}
	return st.Type == unix.BPF_FS_MAGIC, nil
}

func notBPFFS(what, path, dir string) error {
	return fmt.Errorf("%s %s: %s is not a BPF file system; give a directory on one, such as /sys/fs/bpf/xdplb", what, path, dir)
}

// visibleToInit reports whether the BPF file system holding path is
// mounted in init's mount namespace as well. Pins live as long as their
// file system is mounted somewhere; one mounted only in a private namespace
// (ip netns exec makes one and remounts /sys) goes with the namespace's
// last process. The file system itself is compared, by device number, and
// not the namespaces: a private namespace may well share the host's
// /sys/fs/bpf. When init's mounts cannot be read, the answer is yes, the
// common case.
func visibleToInit(path string) bool {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return true
	}
	mountinfo, err := os.ReadFile("/proc/1/mountinfo")
	if err != nil {
		return true
	}
	return mountsBPF(string(mountinfo), st.Dev)
}

// mountsBPF reports whether mountinfo (proc(5)) lists a BPF file system
// with device number dev.
func mountsBPF(mountinfo string, dev uint64) bool {
	want := fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))
	for line := range strings.Lines(mountinfo) {
		fields, fs, ok := strings.Cut(line, " - ")
		f := strings.Fields(fields)
		if ok && len(f) > 2 && f[2] == want && strings.HasPrefix(fs, "bpf ") {
			return true
		}
	}
	return false
}

// PinsPersist reports whether what the datapath pinned outlives this
// process, so that a restart or upgrade can adopt it, and if not, why.
func (d *Datapath) PinsPersist() (bool, string) {
	switch {
	case d.pinPath == "":
		return false, "state.pin_path is empty, so nothing is pinned"
	case d.pinsTransient != "":
		return false, d.pinsTransient
	}
	return true, ""
}

// LockPinDir makes the BPF file system's directory dir if need be and
// holds an exclusive lock until unlock, so that commands changing the pins
// below it (xdplb toa, xdplb decap) do so one at a time: two at once would
// both find nothing pinned and race to pin, and the loser's cleanup would
// take the winner's pins. The lock is on dir's parent, because the last
// removal takes dir away. what names dir in errors; detached says what a
// BPF file system private to this mount namespace would lose when the
// command exits.
func LockPinDir(what, dir, detached string) (unlock func(), err error) {
	transient, err := EnsureBPFFS(what, dir)
	if err != nil {
		return nil, err
	}
	if transient != "" {
		return nil, fmt.Errorf("the BPF file system at %s is private to this mount namespace: %s "+
			"when the command exits; run it in the host's mount namespace", dir, detached)
	}
	above := filepath.Dir(dir)
	root, err := os.Open(above)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(root.Fd()), unix.LOCK_EX); err != nil {
		root.Close()
		return nil, fmt.Errorf("lock %s: %w", above, err)
	}
	// A removal may have taken dir away while this one waited.
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		root.Close()
		return nil, fmt.Errorf("make %s: %w", dir, err)
	}
	return func() { root.Close() }, nil
}

// RemoveDirIfEmpty removes dir once nothing is pinned below it, so that a
// command leaves nothing behind. A directory with anything in it, or a
// link, stays.
func RemoveDirIfEmpty(dir string) {
	if fi, err := os.Lstat(dir); err == nil && fi.IsDir() {
		os.Remove(dir)
	}
}
