package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBadConfigRefused runs `xdplb serve` with a config whose only problem
// is services[0].port = 70000. Validation fails before the daemon touches
// anything, so this runs in the root namespace and needs no privileges.
func TestBadConfigRefused(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "xdplb.sock")
	path := filepath.Join(dir, "xdplb.yaml")
	config := fmt.Sprintf(`interfaces: [eth0]
xdp_mode: native
local:
  addresses: [172.19.0.5]
  ports: 10000-19999
services:
  - name: web
    vip: 172.19.0.10
    port: 70000
    protocol: tcp
    scheduler: rr
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
api:
  socket: %s
`, socket)
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, xdplbBin, "serve", "--config", path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("stderr:\n%s", stderr.String())
	exit, ok := errors.AsType[*exec.ExitError](err)
	switch {
	case err == nil:
		t.Fatal("xdplb serve accepted port 70000 and exited 0")
	case !ok:
		t.Fatalf("running xdplb serve: %v", err)
	case ctx.Err() != nil:
		t.Fatalf("xdplb serve did not exit (killed after 30s): it seems to have accepted port 70000")
	case exit.ExitCode() <= 0:
		t.Errorf("xdplb serve: %v, want a non-zero exit status", err)
	}
	if !strings.Contains(stderr.String(), "services[0].port") {
		t.Errorf("stderr does not name the field services[0].port:\n%s", stderr.String())
	}
	if _, err := os.Stat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("API socket %s: %v; a refused config must not start anything", socket, err)
	}
}
