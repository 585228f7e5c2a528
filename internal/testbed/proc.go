package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Proc is a process started inside a host's namespace. The testbed reaps it
// itself (so that Segment.Close can always wait for it); use Proc.Wait, never
// Cmd.Wait.
type Proc struct {
	Cmd  *exec.Cmd
	host *Host
	done chan struct{}
	err  error
}

// Command is exec.CommandContext with defaults that suit a testbed: the
// child gets its own process group, and cancelling ctx kills the whole
// group, so helpers the program forks die with it.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killProcess(cmd) }
	// If a grandchild keeps stdout open after the group is killed, do not
	// let Wait hang on the pipe forever.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Output runs name with args inside the host's namespace to its end and
// returns what it wrote to stdout and stderr, as exec.Cmd.CombinedOutput.
// Command alone does not enter the namespace: a command run from it
// would change the test machine's own network.
func (h *Host) Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := h.Command(ctx, name, args...)
	var out []byte
	err := h.Do(func() error {
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	return out, err
}

// Start starts name with args inside the host's namespace; see StartCmd.
func (h *Host) Start(ctx context.Context, name string, args ...string) (*Proc, error) {
	return h.StartCmd(h.Command(ctx, name, args...))
}

// StartCmd starts cmd inside the host's namespace and registers it, so that
// Segment.Close kills it (the whole process group if Setpgid is set) and
// waits for it. Set cmd.Stdout/Stderr before calling.
//
// The fork happens on a thread switched into the namespace, and the child
// inherits that thread's namespace. That thread is discarded right after
// the fork, which is why cmd.SysProcAttr.Pdeathsig is refused: Linux sends
// the "parent death" signal when the forking *thread* exits, so the child
// would be killed immediately.
func (h *Host) StartCmd(cmd *exec.Cmd) (*Proc, error) {
	if cmd.SysProcAttr != nil && cmd.SysProcAttr.Pdeathsig != 0 {
		return nil, fmt.Errorf("host %s: start %s: Pdeathsig would fire as soon as the namespace thread exits", h.Name, cmd.Path)
	}
	if err := h.Do(cmd.Start); err != nil {
		return nil, fmt.Errorf("host %s: start %s: %w", h.Name, cmd.Path, err)
	}
	p := &Proc{Cmd: cmd, host: h, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()

	s := h.seg
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.procs = append(s.procs, p)
	}
	s.mu.Unlock()
	if closed {
		// Close ran between Do and here; do not leave an orphan behind.
		p.Kill()
		<-p.done
		return nil, fmt.Errorf("host %s: start %s: %w", h.Name, cmd.Path, errClosed)
	}
	return p, nil
}

// Wait waits for the process to exit and returns cmd.Wait's result. It may be
// called any number of times, from any goroutine.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Done is closed once the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Kill sends SIGKILL to the process (its process group if Setpgid is set).
// Killing an exited process is not an error.
func (p *Proc) Kill() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := killProcess(p.Cmd); err != nil {
		return fmt.Errorf("host %s: kill %s: %w", p.host.Name, p.Cmd.Path, err)
	}
	return nil
}

func killProcess(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	var err error
	if cmd.SysProcAttr != nil && cmd.SysProcAttr.Setpgid && cmd.SysProcAttr.Pgid == 0 {
		err = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
	} else {
		err = cmd.Process.Kill()
	}
	if errors.Is(err, unix.ESRCH) || errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}
