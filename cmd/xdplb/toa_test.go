package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/testbed"
	"github.com/xdplb/xdplb/internal/toa"
)

// TestTOACommands: install, status, install again, remove, remove again,
// on a cgroup made for the test, as an operator reads them.
func TestTOACommands(t *testing.T) {
	testbed.RequirePrivileges(t)
	mount, err := toa.Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(mount, fmt.Sprintf("xdplb-toa-cli-test-%d", os.Getpid()))
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	cg, err := toa.OpenCgroup(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { toa.RemoveID(cg.ID) })
	id := fmt.Sprintf("(id %d)", cg.ID)

	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"toa", "install", "--cgroup", path}, "TOA reader installed on cgroup " + path + " " + id},
		{[]string{"toa", "status"}, "cgroup " + path + " " + id},
		{[]string{"toa", "status"}, "  sockops       attached (program "},
		{[]string{"toa", "install", "--cgroup", path}, "TOA reader updated in place on cgroup " + path + " " + id},
		{[]string{"toa", "remove", "--cgroup", path}, "TOA reader removed from cgroup " + path + " " + id},
		{[]string{"toa", "remove", "--cgroup", path}, "no TOA reader is installed on cgroup " + path + " " + id},
		{[]string{"toa", "remove", "--cgroup-id", fmt.Sprint(cg.ID)}, "nothing to remove"},
	} {
		if got := mustRun(t, "/nonexistent.sock", step.args...); !strings.Contains(got, step.want) {
			t.Errorf("xdplb %s:\n%s\nwant %q", strings.Join(step.args, " "), got, step.want)
		}
	}

	mustRun(t, "/nonexistent.sock", "toa", "install", "--cgroup", path)
	var installs []toa.Installation
	if err := json.Unmarshal([]byte(mustRun(t, "/nonexistent.sock", "toa", "status", "--json")), &installs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, in := range installs {
		if in.CgroupID == cg.ID {
			found = in.CgroupPath == path && len(in.Hooks) == 3 && in.Hooks[0].Attached
		}
	}
	if !found {
		t.Errorf("toa status --json: %+v; want %s attached", installs, path)
	}
}

func TestTOAErrors(t *testing.T) {
	mount, err := toa.Cgroup2Mount()
	if err != nil {
		t.Skipf("no cgroup v2 here: %v", err)
	}
	dir := t.TempDir()
	wantErr(t, "/nonexistent.sock", "cgroup "+dir+" is not a cgroup v2 directory; cgroup v2 is mounted at "+mount,
		"toa", "install", "--cgroup", dir)
	wantErr(t, "/nonexistent.sock", "give --cgroup or --cgroup-id, not both", "toa", "remove", "--cgroup", dir, "--cgroup-id", "7")
}

func TestPrintTOAStatus(t *testing.T) {
	var out strings.Builder
	printTOAStatus(&out, nil)
	if !strings.Contains(out.String(), "not installed on any cgroup") {
		t.Errorf("nothing installed: %q", out.String())
	}
	out.Reset()
	printTOAStatus(&out, []toa.Installation{{
		CgroupID: 4242, PinDir: "/sys/fs/bpf/xdplb-toa/4242",
		Hooks:    []toa.HookState{{Hook: "sockops", Problem: "its cgroup is gone, or it was detached by hand"}},
		Counters: toa.Counters{Sockets: 5, FoundV4: 3, FoundV6: 1, Absent: 1},
	}})
	for _, want := range []string{
		"cgroup id 4242, which is gone (xdplb toa remove --cgroup-id 4242 removes what is left)",
		"  sockops  NOT ATTACHED: its cgroup is gone",
		"5 accepted, 4 with the client's address (3 IPv4, 1 IPv6), 1 without, 0 with malformed options",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status:\n%s\nwant %q", out.String(), want)
		}
	}
}
