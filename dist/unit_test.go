// Package dist holds what installs xdplb on a host: the systemd unit.
package dist

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnitVerifies runs systemd-analyze verify on the unit, with ExecStart
// pointing at an executable that exists: the unit's syntax, directives and
// capabilities are all ones systemd knows.
func TestUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is missing; .ci/run installs systemd")
		}
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile("xdplb.service")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "xdplb.service")
	text := strings.ReplaceAll(string(unit), "/usr/local/sbin/xdplb", self)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "xdplb.service") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
