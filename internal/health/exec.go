package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xdplb/xdplb/internal/trust"
)

// execWaitDelay bounds how long a finished (or killed) command's output
// is still read, in case something it started keeps the pipe open.
const execWaitDelay = 200 * time.Millisecond

type execProber struct {
	target Target
	addr   netip.AddrPort
}

// execPath is the whole PATH of a check's command: the system's
// directories, never the daemon's own environment, which may hold
// secrets or whatever the shell that started it had.
const execPath = "/usr/sbin:/usr/bin:/sbin:/bin"

func (p *execProber) probe(ctx context.Context) error {
	argv := p.target.Spec.Command
	// Validate checked the program when the check was configured; the
	// file or its directory may have changed since.
	if err := checkProgram(argv[0]); err != nil {
		return fmt.Errorf("not run: %v", err)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{
		"PATH=" + execPath,
		"XDPLB_SERVICE=" + p.target.Service.String(),
		"XDPLB_BACKEND_ADDR=" + p.addr.Addr().String(),
		"XDPLB_BACKEND_PORT=" + strconv.Itoa(int(p.addr.Port())),
	}
	// The command runs in a process group of its own, and the whole
	// group is killed at the timeout, so that "sh -c 'curl ...'" does
	// not leave the curl behind.
	setProcessGroup(cmd)
	cmd.WaitDelay = execWaitDelay
	out := &headBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = out, out

	err := cmd.Run()
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%s: killed after the %v timeout", argv[0], p.target.Spec.Timeout)
		}
		return fmt.Errorf("%s: canceled", argv[0])
	}
	if cmd.ProcessState != nil && cmd.ProcessState.Success() {
		// Possibly exec.ErrWaitDelay: the command passed, but left
		// something holding its output open.
		return nil
	}
	if err == nil {
		return nil
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		err = errors.New(exitErr.ProcessState.String()) // "exit status 1", "signal: killed"
	}
	if line := out.lastLine(); line != "" {
		return fmt.Errorf("%s: %v: %s", argv[0], err, line)
	}
	return fmt.Errorf("%s: %w", argv[0], err)
}

// checkProgram refuses a program that someone other than root (or the
// daemon's own user) could change: a check runs with the daemon's
// privileges, so a program, or a directory holding it, that others can
// write would let them run anything as root. The program must be an
// absolute path (nothing depends on PATH or the working directory) to an
// executable regular file that only its owner can write, owned by root
// or the daemon's user, on a path of directories that no one else can
// write (trust.Dirs). A symbolic link is followed, and the path to
// its target is checked too.
func checkProgram(path string) error {
	switch {
	case hasControl(path):
		return fmt.Errorf("%q holds a control character", path)
	case !filepath.IsAbs(path):
		return fmt.Errorf("%q is not an absolute path", path)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%q does not exist", path)
	case err != nil:
		return fmt.Errorf("%q cannot be checked: %v", path, pathErr(err))
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%q is not a regular file (mode %s)", path, fi.Mode())
	case fi.Mode()&0o111 == 0:
		return fmt.Errorf("%q is not executable (mode %s)", path, trust.Octal(fi.Mode()))
	case fi.Mode()&0o022 != 0:
		return fmt.Errorf("%q is writable by %s (mode %s); a check runs as root", path, trust.Writers(fi.Mode()), trust.Octal(fi.Mode()))
	}
	if uid, ok := trust.FileOwner(fi); ok && !trust.Owner(uid) {
		return fmt.Errorf("%q is owned by uid %d, not root; a check runs as root", path, uid)
	}
	paths := []string{path}
	if real, err := filepath.EvalSymlinks(path); err == nil && real != path {
		paths = append(paths, real)
	}
	for _, p := range paths {
		if err := trust.Dirs(path, p, "a check runs as root"); err != nil {
			return err
		}
	}
	return nil
}

// pathErr drops the path and operation of an *fs.PathError, which the
// message names already.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// headBuffer keeps the first max bytes written to it and discards the
// rest, so a chatty command cannot grow the daemon's memory.
type headBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *headBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// lastLine returns the last non-empty line of output, shortened to fit
// in a log line.
func (b *headBuffer) lastLine() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(b.buf.String()), "\n")
	line := strings.TrimSpace(lines[len(lines)-1])
	if len(line) > 200 {
		line = line[:200] + "..."
	}
	return line
}
