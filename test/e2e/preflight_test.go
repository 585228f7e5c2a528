package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// TestEphemeralOverlapRefused: a NAT port range overlapping the kernel's
// ephemeral range on the balancer's own address is refused at start, with
// a message saying what to change, and nothing is left behind.
func TestEphemeralOverlapRefused(t *testing.T) {
	testbed.RequirePrivileges(t)
	ref, err := testbed.NewReference()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ref.Close() })
	dir := t.TempDir()
	path := filepath.Join(dir, "xdplb.yaml")
	cfg := demo.Setup{Mode: "native", Dir: dir, Services: demo.ReferenceServices, Ports: "30000-40000"}.YAML()
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out testbed.LogBuffer
	cmd := ref.LB.Command(ctx, xdplbBin, "serve", "--config", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	proc, err := ref.LB.StartCmd(cmd)
	if err != nil {
		t.Fatal(err)
	}
	err = proc.Wait()
	if _, ok := err.(*exec.ExitError); !ok {
		t.Fatalf("xdplb serve: %v, want a non-zero exit\n%s", err, out.String())
	}
	for _, want := range []string{"local.ports", "ephemeral port range", "172.19.0.5"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("message lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(demo.PinPath(dir)); !os.IsNotExist(err) {
		t.Errorf("pinned state %s left behind: %v", demo.PinPath(dir), err)
	}
}
