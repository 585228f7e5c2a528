package api

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// maxSocketPath is the size of a unix socket address's path, its
// terminating NUL included.
const maxSocketPath = len(syscall.RawSockaddrUnix{}.Path)

// Listen opens the API's unix socket at path, readable by root only: the
// API changes what the balancer does. It removes nothing it did not make.
// A file at path that is not a socket is refused, and so is a socket that
// a running daemon answers on (so a second daemon stops before it changes
// anything); only a socket nobody answers on, left by a daemon that died,
// is replaced. Closing the listener removes the socket, if it is still the
// one bound, and the directories Listen made for it, if they are empty.
func Listen(path string) (net.Listener, error) {
	if len(path) >= maxSocketPath {
		return nil, fmt.Errorf("api.socket: path is %d bytes, longer than the %d a unix socket allows", len(path), maxSocketPath-1)
	}
	made, err := mkdirs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("api.socket %s: %w", path, err)
	}
	if err := privateDir(filepath.Dir(path)); err != nil {
		removeDirs(made)
		return nil, err
	}
	if err := removeStaleSocket(path); err != nil {
		removeDirs(made)
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		removeDirs(made)
		return nil, fmt.Errorf("api.socket %s: %w", path, err)
	}
	// Close removes the file itself, once it has checked it is this one.
	ln.SetUnlinkOnClose(false)
	l := &socketListener{Listener: ln, path: path, made: made}
	if l.bound, err = os.Lstat(path); err == nil {
		err = os.Chmod(path, 0o600)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("api.socket %s: %w", path, err), l.Close())
	}
	return l, nil
}

// privateDir refuses a socket directory that someone other than root (or
// the daemon's user) owns or may write: the daemon keeps its ownership
// record there, which says what it may remove from the host, and trusts
// what it finds there at the next start.
func privateDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("api.socket directory %s: %w", dir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("api.socket directory %s is owned by uid %d; it must be root's: the daemon keeps its ownership record there", dir, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("api.socket directory %s is writable by others (mode %04o); the daemon keeps its ownership record there, "+
			"so give it a directory only root may write, such as /run/xdplb", dir, fi.Mode().Perm())
	}
	return nil
}

// removeStaleSocket deletes a socket file left by a daemon that died, and
// refuses anything else.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("api.socket %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("api.socket %s: exists and is not a socket; refusing to remove it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("another daemon is listening on api.socket %s; stop it first or give this one another api.socket", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("api.socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale api.socket %s: %w", path, err)
	}
	return nil
}

// socketListener is the API's listener, which cleans up after itself.
type socketListener struct {
	net.Listener
	path  string
	bound os.FileInfo // the socket file, as bound
	made  []string

	once sync.Once
	err  error
}

// Close stops listening and removes the socket file and the directories
// Listen made. The file is removed only if it is still the one bound: a
// daemon that replaced it since owns it.
func (l *socketListener) Close() error {
	l.once.Do(func() {
		l.err = l.Listener.Close()
		if now, err := os.Lstat(l.path); err == nil && l.bound != nil && os.SameFile(now, l.bound) {
			if err := os.Remove(l.path); err != nil {
				l.err = errors.Join(l.err, err)
			}
		}
		removeDirs(l.made)
	})
	return l.err
}

// mkdirs makes dir and its missing parents, as os.MkdirAll does, and
// returns the ones it made, outermost first.
func mkdirs(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	var made []string
	for i := len(missing) - 1; i >= 0; i-- {
		err := os.Mkdir(missing[i], 0o755)
		switch {
		case errors.Is(err, os.ErrExist):
			// Made by someone else meanwhile: theirs, not to remove.
		case err != nil:
			removeDirs(made)
			return nil, err
		default:
			made = append(made, missing[i])
		}
	}
	return made, nil
}

// removeDirs removes the directories mkdirs made, innermost first, that
// are empty. One that is not (the daemon's state file may be there) stays,
// and nothing is lost.
func removeDirs(made []string) {
	for i := len(made) - 1; i >= 0; i-- {
		os.Remove(made[i])
	}
}
