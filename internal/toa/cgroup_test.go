package toa

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCgroup2MountIn(t *testing.T) {
	const hybrid = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	for _, tc := range []struct {
		name, mountinfo, want string
	}{
		{"unified", "35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n", "/sys/fs/cgroup"},
		{"hybrid", hybrid, "/sys/fs/cgroup/unified"},
		{"escaped", `50 23 0:40 / /mnt/my\040cgroups\134v2 rw - cgroup2 none rw` + "\n", `/mnt/my cgroups\v2`},
		{"optional fields", "41 31 0:38 / /cg rw shared:1 master:2 - cgroup2 cgroup2 rw\n", "/cg"},
		{"v1 only", "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", ""},
		{"a cgroup2 source on another file system", "60 23 0:41 / /mnt rw - tmpfs cgroup2 rw\n", ""},
	} {
		got, ok := cgroup2MountIn(tc.mountinfo)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
}

// TestNotACgroup: install and remove refuse what is not a cgroup v2
// directory, and say where cgroup v2 is mounted on this host.
func TestNotACgroup(t *testing.T) {
	mount, err := Cgroup2Mount()
	if err != nil {
		t.Skipf("no cgroup v2 here: %v", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, want string
	}{
		{dir, "cgroup " + dir + " is not a cgroup v2 directory; cgroup v2 is mounted at " + mount + " on this host"},
		{file, "cgroup " + file + ": not a directory; give a cgroup v2 directory, under " + mount + " on this host"},
		{filepath.Join(dir, "nosuch"), "cgroup " + filepath.Join(dir, "nosuch") + ": no such file or directory"},
	} {
		if _, err := Install(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Install(%s): %v; want %q", tc.path, err, tc.want)
		}
		if _, err := Remove(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Remove(%s): %v; want %q", tc.path, err, tc.want)
		}
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("left %v in %s", es, dir)
	}
}
