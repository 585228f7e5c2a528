package toa

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Cgroup is a cgroup v2 directory the reader can be attached to.
type Cgroup struct {
	Path string
	// ID is the cgroup's id, which on cgroup v2 is its directory's inode
	// number: what the kernel reports for an attachment.
	ID uint64
}

// OpenCgroup checks that path is a cgroup v2 directory and returns it. An
// empty path is the root of the cgroup v2 mount, where the reader covers
// every socket on the host.
func OpenCgroup(path string) (Cgroup, error) {
	mount, err := Cgroup2Mount()
	if err != nil {
		return Cgroup{}, err
	}
	if path == "" {
		path = mount
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Cgroup{}, fmt.Errorf("cgroup %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return Cgroup{}, fmt.Errorf("cgroup %s: not a directory; give a cgroup v2 directory, under %s on this host", path, mount)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return Cgroup{}, fmt.Errorf("cgroup %s: %w", path, err)
	}
	switch sfs.Type {
	case unix.CGROUP2_SUPER_MAGIC:
		return Cgroup{Path: path, ID: st.Ino}, nil
	case unix.CGROUP_SUPER_MAGIC:
		return Cgroup{}, fmt.Errorf("cgroup %s is in a cgroup v1 hierarchy; the reader attaches to cgroup v2, mounted at %s on this host", path, mount)
	}
	return Cgroup{}, fmt.Errorf("cgroup %s is not a cgroup v2 directory; cgroup v2 is mounted at %s on this host", path, mount)
}

// Cgroup2Mount returns where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup
// on most hosts, /sys/fs/cgroup/unified on hybrid ones.
func Cgroup2Mount() (string, error) {
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("find the cgroup v2 mount: %w", err)
	}
	if mount, ok := cgroup2MountIn(string(mountinfo)); ok {
		return mount, nil
	}
	return "", errors.New("no cgroup v2 file system is mounted (none in /proc/self/mountinfo); " +
		"the TOA reader attaches to a cgroup v2 directory: mount one with `mount -t cgroup2 none DIR`")
}

// cgroup2MountIn returns the mount point of the first cgroup2 file system
// mountinfo (proc(5)) lists.
func cgroup2MountIn(mountinfo string) (string, bool) {
	for line := range strings.Lines(mountinfo) {
		fields, fstype, ok := strings.Cut(line, " - ")
		f := strings.Fields(fields)
		if ok && len(f) > 4 && strings.HasPrefix(fstype, "cgroup2 ") {
			return unescapeMountPath(f[4]), true
		}
	}
	return "", false
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space,
// \011, \012, \134).
func unescapeMountPath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupPath finds the directory of the cgroup with id under the cgroup v2
// mount, or returns "" if there is none (it was removed).
func cgroupPath(id uint64) string {
	mount, err := Cgroup2Mount()
	if err != nil {
		return ""
	}
	found := ""
	filepath.WalkDir(mount, func(path string, d fs.DirEntry, err error) error {
		// Files are not cgroups, and a cgroup removed while walking is
		// not the one sought.
		if err != nil || !d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Ino == id {
				found = path
				return fs.SkipAll
			}
		}
		return nil
	})
	return found
}
