package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// execWaitDelay bounds how long a finished (or killed) command's output
// is still read, in case something it started keeps the pipe open.
const execWaitDelay = 200 * time.Millisecond

type execProber struct {
	target Target
	addr   netip.AddrPort
}

func (p *execProber) probe(ctx context.Context) error {
	argv := p.target.Spec.Command
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(),
		"XDPLB_SERVICE="+p.target.Service,
		"XDPLB_BACKEND_ADDR="+p.addr.Addr().String(),
		"XDPLB_BACKEND_PORT="+strconv.Itoa(int(p.addr.Port())),
	)
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
