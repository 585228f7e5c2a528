// Package trust decides whether a file the root daemon acts on (a health
// check's program, the configuration naming those programs) could have
// been changed by someone other than root: then acting on it would let
// them act as root.
package trust

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Owner reports whether files of uid are trusted: root's, or the daemon's
// own user's.
func Owner(uid uint32) bool {
	return uid == 0 || int64(uid) == int64(os.Geteuid())
}

// Dirs checks every directory from p's up to the root: each must be owned
// by a trusted user and writable by no one else, so that no one else can
// rename, replace or swap anything on the way. A sticky directory (like
// /tmp) may be writable by others if what it holds on the way is a
// trusted user's: the sticky bit keeps others from renaming or removing
// it. subject names the file in errors, and why ends them.
func Dirs(subject, p, why string) error {
	child := p
	for dir := filepath.Dir(p); ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("%s, on the way to %q, cannot be checked: %v", dir, subject, err)
		}
		if uid, ok := FileOwner(di); ok && !Owner(uid) {
			return fmt.Errorf("%q is under %s, which is owned by uid %d, not root; %s", subject, dir, uid, why)
		}
		if di.Mode()&0o022 != 0 && !stickyHoldsTrusted(di, child) {
			return fmt.Errorf("%q is under %s, which is writable by %s (mode %s); %s",
				subject, dir, Writers(di.Mode()), Octal(di.Mode()), why)
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
		child = dir
	}
}

// stickyHoldsTrusted tells whether dir is sticky and its entry on the way,
// child, belongs to a trusted owner, who alone may then rename it.
func stickyHoldsTrusted(dir fs.FileInfo, child string) bool {
	if dir.Mode()&fs.ModeSticky == 0 {
		return false
	}
	ci, err := os.Lstat(child)
	if err != nil {
		return false
	}
	uid, ok := FileOwner(ci)
	return ok && Owner(uid)
}

// Octal writes a mode as chmod takes it: 0755, 1777.
func Octal(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return fmt.Sprintf("%04o", v)
}

// Writers says who besides the owner may write a file of mode m.
func Writers(m fs.FileMode) string {
	switch {
	case m&0o022 == 0o022:
		return "group and others"
	case m&0o002 != 0:
		return "others"
	}
	return "group"
}
