package debpkg

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tool finds a Debian tool the check needs; CI has them (dpkg is part of
// every Debian system, systemd is installed by .ci/run).
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// TestPackage builds the package from a freshly built xdplb, unpacks it as
// dpkg would install it, and checks the files and that the installed unit
// verifies with its ExecStart pointing at the installed binary.
func TestPackage(t *testing.T) {
	dpkgDeb, analyze := tool(t, "dpkg-deb"), tool(t, "systemd-analyze")
	dir := t.TempDir()
	bin := filepath.Join(dir, "xdplb")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/xdplb").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	deb := filepath.Join(dir, "xdplb_1.2.3_amd64.deb")
	if err := Build(Options{Binary: bin, Version: "1.2.3", Arch: "amd64", Repo: "../.."}, deb); err != nil {
		t.Fatal(err)
	}
	info, err := exec.Command(dpkgDeb, "--info", deb).CombinedOutput()
	if err != nil || !strings.Contains(string(info), "Package: xdplb") || !strings.Contains(string(info), "Version: 1.2.3") {
		t.Fatalf("dpkg-deb --info: %v\n%s", err, info)
	}
	root := filepath.Join(dir, "root")
	if out, err := exec.Command(dpkgDeb, "-x", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	for _, f := range []string{
		InstalledBinary, "/lib/systemd/system/xdplb.service", "/usr/share/bash-completion/completions/xdplb",
		"/usr/share/man/man1/xdplb.1", "/usr/share/man/man1/xdplb-serve.1", "/usr/share/doc/xdplb/xdplb.yaml.example",
		"/usr/share/doc/xdplb/operations.md",
	} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("the package lacks %s: %v", f, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, InstalledBinary)); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("%s: %v, mode %v; want 0755", InstalledBinary, err, fi.Mode())
	}
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/xdplb.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart="+InstalledBinary+" serve") {
		t.Errorf("the installed unit does not run %s:\n%s", InstalledBinary, unit)
	}
	check := filepath.Join(dir, "xdplb.service")
	text := strings.ReplaceAll(string(unit), InstalledBinary, filepath.Join(root, InstalledBinary))
	if err := os.WriteFile(check, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", check).CombinedOutput(); err != nil || strings.Contains(string(out), "xdplb.service") {
		t.Errorf("systemd-analyze verify of the installed unit: %v\n%s", err, out)
	}
	if out, err := exec.Command(filepath.Join(root, InstalledBinary), "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "xdplb ") {
		t.Errorf("the installed xdplb version: %v\n%s", err, out)
	}
}
