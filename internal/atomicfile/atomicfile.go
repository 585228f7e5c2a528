// Package atomicfile replaces files so that a reader sees the old content
// or the new, never a part, and so that a process running as root cannot be
// tricked into writing through a link someone else planted.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Write replaces the file at path with data. A new file gets perm (less
// the umask); an existing one keeps its mode and owner, so an operator's
// chown or chmod survives the daemon's edits.
//
// If path is a symlink, the file it resolves to is written and the link
// stays: operators link config files into place, and the link is theirs.
// The temporary file is new (O_EXCL), has a random name in the target's
// directory and is opened with O_NOFOLLOW, so nothing planted there is ever
// followed; it is removed on any failure.
func Write(path string, data []byte, perm os.FileMode) error {
	return WriteIf(path, data, perm, nil)
}

// WriteIf is Write that calls unchanged, if not nil, once the new content
// is on disk and right before it replaces the file; an error from it
// leaves the file as it was. It lets a writer that read the file first
// refuse to overwrite a change someone made since, with the window left
// for that as short as a rename.
func WriteIf(path string, data []byte, perm os.FileMode, unchanged func() error) error {
	target, err := resolve(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := replace(target, data, perm, unchanged); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The rename is durable only once the directory is.
	if err := syncDir(filepath.Dir(target)); err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	return nil
}

// resolve returns the file a write to path replaces: path itself, or
// where it leads if it is a symlink. A symlink that leads nowhere is
// refused rather than replaced by a regular file.
func resolve(path string) (string, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return path, nil
	case err != nil:
		return "", err
	case fi.Mode()&os.ModeSymlink == 0:
		return path, nil
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("follow symlink: %w", err)
	}
	return target, nil
}

// replace writes data to a new temporary file and renames it over target.
func replace(target string, data []byte, perm os.FileMode, unchanged func() error) (err error) {
	tmp, err := tempName(target)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := keepOwnerAndMode(f, target); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if unchanged != nil {
		if err := unchanged(); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	return os.Rename(tmp, target)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// tempName is a name beside target that nobody can predict.
func tempName(target string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+".tmp-"+hex.EncodeToString(b[:])), nil
}

// keepOwnerAndMode gives f the owner and mode of target, if target exists.
// The owner goes first: chown clears setuid and setgid bits.
func keepOwnerAndMode(f *os.File, target string) error {
	var st unix.Stat_t
	if err := unix.Stat(target, &st); errors.Is(err, unix.ENOENT) {
		return nil
	} else if err != nil {
		return err
	}
	var cur unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &cur); err != nil {
		return err
	}
	if cur.Uid != st.Uid || cur.Gid != st.Gid {
		if err := unix.Fchown(int(f.Fd()), int(st.Uid), int(st.Gid)); err != nil {
			return fmt.Errorf("keep owner %d:%d: %w", st.Uid, st.Gid, err)
		}
	}
	if err := unix.Fchmod(int(f.Fd()), st.Mode&0o7777); err != nil {
		return fmt.Errorf("keep mode %o: %w", st.Mode&0o7777, err)
	}
	return nil
}
