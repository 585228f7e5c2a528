package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/testbed"
)

// Balancer is an `xdplb serve` process running on a testbed host.
type Balancer struct {
	Proc   *testbed.Proc
	API    *api.Client
	Socket string
	Config string // path of the config file it was started with
}

// StartBalancer writes config (YAML) into dir, starts `binary serve` with it
// inside host's namespace and waits until its API reports ready. The config
// must put the API socket at filepath.Join(dir, "xdplb.sock").
func StartBalancer(ctx context.Context, host *testbed.Host, binary, dir, config string, logs io.Writer) (*Balancer, error) {
	path := filepath.Join(dir, "xdplb.yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		return nil, err
	}
	cmd := host.Command(context.WithoutCancel(ctx), binary, "serve", "--config", path)
	cmd.Stdout, cmd.Stderr = logs, logs
	proc, err := host.StartCmd(cmd)
	if err != nil {
		return nil, err
	}
	b := &Balancer{Proc: proc, Socket: filepath.Join(dir, "xdplb.sock"), Config: path}
	b.API = api.NewClient(b.Socket)
	if err := b.waitReady(ctx, 20*time.Second); err != nil {
		proc.Kill()
		proc.Wait()
		return nil, err
	}
	return b, nil
}

func (b *Balancer) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		st, err := b.API.Status(ctx)
		if err == nil && st.Ready {
			return nil
		}
		select {
		case <-b.Proc.Done():
			return fmt.Errorf("balancer exited before it was ready: %v", b.Proc.Wait())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("balancer not ready after %s (last error: %v)", limit, err)
		}
	}
}

// Stop asks the balancer to shut down (SIGTERM), as an operator would, and
// waits for it; it is killed if it takes longer than 10 seconds.
func (b *Balancer) Stop() error {
	if err := b.Proc.Cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-b.Proc.Done():
		if err := b.Proc.Wait(); err != nil {
			return fmt.Errorf("balancer exited: %w", err)
		}
		return nil
	case <-time.After(10 * time.Second):
		b.Proc.Kill()
		<-b.Proc.Done()
		return errors.New("balancer did not stop within 10s of SIGTERM; killed")
	}
}
