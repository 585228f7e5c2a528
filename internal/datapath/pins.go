package datapath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// RemovePins deletes what a datapath pins under path: its maps and its
// attachments (link_xdp_if<ifindex>), and then path itself if nothing else
// is left in it. Whatever else is there (another tool's pins, directories)
// stays. A path that is not on a BPF file system is refused before anything
// is deleted; one that does not exist has nothing to delete.
func RemovePins(path string) error {
	// The check and the deletions go through one open directory, so the
	// directory checked is the one emptied even if path changes meanwhile.
	dir, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove pinned state at %s: %w", path, err)
	}
	defer dir.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(dir.Fd()), &st); err != nil {
		return fmt.Errorf("remove pinned state at %s: %w", path, err)
	}
	if st.Type != unix.BPF_FS_MAGIC {
		return fmt.Errorf("state.pin_path %s is not a BPF file system; refusing to remove anything there", path)
	}
	if root, err := isMountRoot(int(dir.Fd())); err != nil {
		return fmt.Errorf("remove pinned state at %s: %w", path, err)
	} else if root {
		return mountRootError("state.pin_path", path)
	}
	maps, err := mapPinNames()
	if err != nil {
		return err
	}
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("remove pinned state at %s: %w", path, err)
	}
	var errs []error
	for _, name := range names {
		if !maps[name] && !maps[strings.TrimSuffix(name, upgradeSuffix)] && !isLinkPin(name) {
			continue
		}
		if err := unix.Unlinkat(int(dir.Fd()), name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove pin %s: %w", filepath.Join(path, name), err))
		}
	}
	// The directory goes only if it is empty now. If other pins keep it
	// (ENOTEMPTY), or path is a link to it (ENOTDIR), nothing of xdplb's
	// is left behind.
	err = unix.Rmdir(path)
	if err != nil && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.ENOTDIR) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("remove pin directory %s: %w", path, err))
	}
	return errors.Join(errs...)
}

// isMountRoot tells whether the directory open as dirfd is the root of its
// file system: pins there would share names with every other tool's.
func isMountRoot(dirfd int) (bool, error) {
	var self, parent unix.Stat_t
	if err := unix.Fstat(dirfd, &self); err != nil {
		return false, err
	}
	if err := unix.Fstatat(dirfd, "..", &parent, 0); err != nil {
		return false, err
	}
	return self.Dev != parent.Dev || self.Ino == parent.Ino, nil
}

func mountRootError(what, path string) error {
	return fmt.Errorf("%s %s is the root of a BPF file system, shared with every other tool's pins; "+
		"give xdplb a directory of its own in it, such as %s", what, path, filepath.Join(path, "xdplb"))
}

// mapPinNames are the names Load pins maps under: every map of the object
// but the data sections.
func mapPinNames() (map[string]bool, error) {
	spec, err := loadXdplb()
	if err != nil {
		return nil, fmt.Errorf("read BPF object: %w", err)
	}
	names := map[string]bool{}
	for key, m := range spec.Maps {
		if !isDataSection(key) {
			names[m.Name] = true
		}
	}
	return names, nil
}

// isLinkPin tells the names linkPin gives attachments, exactly: a name
// that merely looks like one (link_xdp_if01) is not xdplb's.
func isLinkPin(name string) bool {
	n, ok := strings.CutPrefix(name, "link_xdp_if")
	if !ok {
		return false
	}
	ifindex, err := strconv.Atoi(n)
	return err == nil && ifindex > 0 && strconv.Itoa(ifindex) == n
}
