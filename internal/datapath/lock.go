package datapath

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/internal/atomicfile"
)

// One daemon per pin path: two would fight over the same maps, and the
// first to stop would remove the other's datapath.
//
// The lock is an flock on a regular file in lockDir, named after the pin
// path, beside a small file saying who holds it (written atomically, so a
// daemon refused reads it whole). Not the pin directory itself, although
// flock works on a BPF file system's directories: RemovePins deletes that
// directory (on a final stop, and with --reset-state while the lock is
// held) and the next Load makes a new one, which a lock on the old one
// would not cover; and the directory cannot exist before its BPF file
// system is mounted, which is a change to the host made before anything is
// checked. The pin path is cleaned, not resolved: a second daemon reaching
// the same directory through a symlink is not caught.
const lockDir = "/run/xdplb/locks"

// lockWait is how long LockPins waits for a holder to let go: the old
// daemon of a hand-over may still be exiting.
const lockWait = 3 * time.Second

// PinLock is this process's claim on a pin path.
type PinLock struct {
	file   *os.File // nil: there was nothing to lock
	path   string
	holder string
}

// holder is what a daemon refused the lock is told about the one that has
// it.
type holder struct {
	PID    int    `json:"pid"`
	Socket string `json:"api_socket"`
}

// LockPins claims pinPath for this daemon, whose API listens on socket,
// or fails saying which daemon has it. An empty pinPath pins nothing, so
// there is nothing to claim.
func LockPins(pinPath, socket string) (*PinLock, error) {
	if pinPath == "" {
		return &PinLock{}, nil
	}
	return lockPins(lockDir, pinPath, socket, lockWait)
}

func lockPins(dir, pinPath, socket string, wait time.Duration) (*PinLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lock state.pin_path %s: %w", pinPath, err)
	}
	name := filepath.Join(dir, lockName(pinPath))
	l := &PinLock{path: name + ".lock", holder: name + ".json"}
	deadline := time.Now().Add(wait)
	for {
		f, err := lockFile(l.path)
		switch {
		case err == nil:
			l.file = f
			if err := l.record(socket); err != nil {
				return nil, err
			}
			return l, nil
		case !errors.Is(err, unix.EWOULDBLOCK):
			return nil, fmt.Errorf("lock state.pin_path %s: %w", pinPath, err)
		case time.Now().After(deadline):
			return nil, fmt.Errorf("state.pin_path %s is in use by another xdplb daemon (%s); "+
				"stop it first or give this one another state.pin_path", filepath.Clean(pinPath), l.describeHolder())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lockFile opens and locks path, failing with EWOULDBLOCK if another has
// it. A lock won on a file that its last holder removed meanwhile (see
// Release) guards nothing, so it is taken again on the file now at path.
func lockFile(path string) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			return nil, err
		}
		held, err1 := f.Stat()
		now, err2 := os.Lstat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
	}
}

func (l *PinLock) record(socket string) error {
	b, err := json.Marshal(holder{PID: os.Getpid(), Socket: socket})
	if err == nil {
		err = atomicfile.Write(l.holder, b, 0o644)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("record pin path lock holder: %w", err), l.Release())
	}
	return nil
}

func (l *PinLock) describeHolder() string {
	var h holder
	b, err := os.ReadFile(l.holder)
	if err != nil || json.Unmarshal(b, &h) != nil {
		return "pid unknown"
	}
	return fmt.Sprintf("pid %d, api socket %s", h.PID, h.Socket)
}

// Release lets the pin path go. Its files are removed while the lock is
// still held; a daemon waiting on the removed lock file notices and locks
// the one it creates anew.
func (l *PinLock) Release() error {
	if l.file == nil {
		return nil
	}
	var errs []error
	for _, p := range []string{l.holder, l.path} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, l.file.Close())
	l.file = nil
	return errors.Join(errs...)
}

// lockName makes a file name of a pin path as systemd-escape --path does:
// /sys/fs/bpf/xdplb is sys-fs-bpf-xdplb. A byte that could make two paths
// meet ("-", say) is written \xNN.
func lockName(pinPath string) string {
	p := strings.Trim(filepath.Clean(pinPath), "/")
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '/':
			b.WriteByte('-')
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}
