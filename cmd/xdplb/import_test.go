package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/config"
)

// importRun runs `xdplb import ARGS` with stdin and returns its stdout and
// stderr apart.
func importRun(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"import"}, args...))
	err = root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

// loadsOnceFilledIn checks that y loads as xdplb reads it once a local
// address is filled in, and returns the number of services.
func loadsOnceFilledIn(t *testing.T, y string) int {
	t.Helper()
	filled := strings.Replace(y, "addresses: []", "addresses: [192.0.2.200]", 1)
	c, err := config.Parse([]byte(filled))
	if err != nil {
		t.Fatalf("the imported YAML does not load once filled in: %v\n%s", err, y)
	}
	return len(c.Services)
}

const cleanKeepalived = `virtual_server 10.0.0.1 80 {
    lb_algo wrr
    lb_kind FNAT
    real_server 10.0.1.1 80 {
        weight 2
        TCP_CHECK {
            connect_timeout 2
        }
    }
}
`

func TestImportKeepalived(t *testing.T) {
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean.conf")
	partial := filepath.Join(dir, "partial.conf")
	if err := os.WriteFile(clean, []byte(cleanKeepalived), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(partial, []byte("vrrp_instance VI_1 {\n}\n"+cleanKeepalived), 0o644); err != nil {
		t.Fatal(err)
	}

	out, errOut, err := importRun(t, "", "keepalived", clean)
	if err != nil || errOut != "" {
		t.Fatalf("import of a clean file: %v, stderr %q", err, errOut)
	}
	if n := loadsOnceFilledIn(t, out); n != 1 {
		t.Errorf("%d services", n)
	}

	out, errOut, err = importRun(t, "", "keepalived", partial)
	wantLine := partial + ":1: vrrp_instance: VRRP is not imported"
	if !strings.HasPrefix(errOut, wantLine) {
		t.Errorf("stderr %q, want it to start with %q", errOut, wantLine)
	}
	if err == nil || err.Error() != "1 keyword was not imported (listed above); the rest was written to stdout" {
		t.Errorf("error %v", err)
	}
	if n := loadsOnceFilledIn(t, out); n != 1 {
		t.Errorf("%d services", n)
	}
	if !strings.Contains(out, "#   "+wantLine) {
		t.Errorf("the YAML header does not list what was not imported:\n%s", out)
	}

	_, _, err = importRun(t, "", "keepalived", filepath.Join(dir, "nope.conf"))
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("a missing file: %v", err)
	}
	broken := filepath.Join(dir, "broken.conf")
	os.WriteFile(broken, []byte("virtual_server 10.0.0.1 80 {\n"), 0o644)
	if _, _, err = importRun(t, "", "keepalived", broken); err == nil ||
		err.Error() != broken+":1: the { here is never closed (the configuration ends first)" {
		t.Errorf("an unbalanced file: %v", err)
	}
	if _, _, err = importRun(t, "", "keepalived"); err == nil {
		t.Error("no FILE: no error")
	}
}

func TestImportOutputFile(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(in, []byte(cleanKeepalived), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "xdplb.yaml")
	out, _, err := importRun(t, "", "keepalived", in, "-o", dst)
	if err != nil || out != "" {
		t.Fatalf("-o: %v, stdout %q", err, out)
	}
	data, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	loadsOnceFilledIn(t, string(data))
	if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}

	os.WriteFile(dst, []byte("mine\n"), 0o600)
	_, _, err = importRun(t, "", "keepalived", in, "-o", dst)
	if err == nil || err.Error() != dst+" exists; give --force to replace it" {
		t.Errorf("overwrite without --force: %v", err)
	}
	if data, _ := os.ReadFile(dst); string(data) != "mine\n" {
		t.Errorf("the file was replaced: %q", data)
	}
	if _, _, err = importRun(t, "", "keepalived", in, "-o", dst, "--force"); err != nil {
		t.Errorf("--force: %v", err)
	}
	if data, _ := os.ReadFile(dst); !strings.Contains(string(data), "vip: 10.0.0.1") {
		t.Errorf("--force did not replace the file:\n%s", data)
	}
}

func TestImportIpvsadm(t *testing.T) {
	rules := "-A -t 10.0.0.1:80 -s rr -p 300\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1\n-A -u 10.0.0.1:53 -s sh\n" +
		"-a -u 10.0.0.1:53 -r 10.0.1.1:53 -m -w 1\n"
	for _, args := range [][]string{{"ipvsadm"}, {"ipvsadm", "-"}} {
		out, errOut, err := importRun(t, rules, args...)
		if err != nil || errOut != "" {
			t.Fatalf("%v: %v, stderr %q", args, err, errOut)
		}
		if n := loadsOnceFilledIn(t, out); n != 2 {
			t.Errorf("%v: %d services", args, n)
		}
		if !strings.HasPrefix(out, "# Imported from stdin by `xdplb import ipvsadm`.") {
			t.Errorf("%v: header:\n%s", args, out)
		}
	}
	file := filepath.Join(t.TempDir(), "rules")
	os.WriteFile(file, []byte(rules+"-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 1\n"), 0o644)
	out, errOut, err := importRun(t, "", "ipvsadm", file)
	if want := file + ":5: -g: this real server's forwarding (dsr-l2) differs from that of the first one of 10.0.0.1:80/tcp"; !strings.HasPrefix(errOut, want) {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "1 keyword was not imported") {
		t.Errorf("error %v", err)
	}
	loadsOnceFilledIn(t, out)
}

// TestImportExitStatus runs the command as a process: the YAML goes to
// stdout, what was not imported to stderr, and the status is 1.
func TestImportExitStatus(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rules")
	os.WriteFile(file, []byte("-A -t 10.0.0.1:80 -s sed\n"), 0o644)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainProcess$", "--", "import", "ipvsadm", file)
	cmd.Env = append(os.Environ(), "XDPLB_TEST_MAIN=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1; stderr:\n%s", err, stderr.String())
	}
	want := file + `:1: -s: "sed" (shortest expected delay) is not supported: xdplb has rr, wrr, maglev, sh, lc and wlc; ` +
		"the service uses rr, review it\n" +
		"xdplb: 1 keyword was not imported (listed above); the rest was written to stdout\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
	if loadsOnceFilledIn(t, stdout.String()) != 1 {
		t.Errorf("stdout:\n%s", stdout.String())
	}
}
