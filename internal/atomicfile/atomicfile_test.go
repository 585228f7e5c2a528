package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/xdplb/xdplb/internal/testbed"
)

func TestWriteNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "owned.json")
	if err := Write(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, "new", 0o600)
	assertOnly(t, filepath.Dir(path), "owned.json")
}

// TestWriteKeepsOwnerAndMode: an operator's chown and chmod survive.
func TestWriteKeepsOwnerAndMode(t *testing.T) {
	testbed.RequirePrivileges(t)
	path := filepath.Join(t.TempDir(), "xdplb.yaml")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 1234, 1234); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, "new", 0o640)
	st := stat(t, path)
	if st.Uid != 1234 || st.Gid != 1234 {
		t.Errorf("owner %d:%d, want 1234:1234", st.Uid, st.Gid)
	}
}

// TestWriteFollowsNoPlantedLink: links planted where a temporary file
// might go (the old fixed name among them) are never written through.
func TestWriteFollowsNoPlantedLink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "owned.json")
	for _, name := range []string{"owned.json.tmp", ".owned.json.tmp", ".owned.json.tmp-0000000000000000"} {
		if err := os.Symlink(victim, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 200 {
		if err := Write(path, []byte(strings.Repeat("x", i)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	assertFile(t, victim, "precious", 0o600)
	assertOnly(t, dir, ".owned.json.tmp", ".owned.json.tmp-0000000000000000", "owned.json", "owned.json.tmp")
}

// TestWriteThroughOperatorLink: a config file linked into place is
// updated where it really is, and the link stays a link.
func TestWriteThroughOperatorLink(t *testing.T) {
	real := filepath.Join(t.TempDir(), "xdplb.yaml")
	if err := os.WriteFile(real, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "xdplb.yaml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := Write(link, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	assertFile(t, real, "new", 0o640)
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link replaced: %v %v", fi.Mode(), err)
	}
	assertOnly(t, filepath.Dir(real), "xdplb.yaml")
}

func TestWriteRefusesDanglingLink(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "xdplb.yaml")
	if err := os.Symlink(filepath.Join(dir, "gone"), link); err != nil {
		t.Fatal(err)
	}
	if err := Write(link, []byte("new"), 0o600); err == nil {
		t.Fatal("wrote through a link that leads nowhere")
	}
	assertOnly(t, dir, "xdplb.yaml")
}

// TestWriteRemovesTempOnFailure: a rename that fails (the target is a
// directory) leaves nothing behind.
func TestWriteRemovesTempOnFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "owned.json")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new"), 0o600); err == nil {
		t.Fatal("replaced a directory")
	}
	assertOnly(t, dir, "owned.json")
}

func stat(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

func assertFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != content {
		t.Errorf("%s holds %q, want %q", path, b, content)
	}
	if m := stat(t, path).Mode & 0o7777; os.FileMode(m) != mode {
		t.Errorf("%s has mode %o, want %o", path, m, mode)
	}
}

// assertOnly checks that dir holds exactly names: no temporary file is
// left and nothing planted was replaced.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

// TestWriteIfRefused: a precondition that fails right before the rename
// leaves the file as it was and no temporary file behind.
func TestWriteIfRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("changed meanwhile")
	if err := WriteIf(path, []byte("new"), 0o600, func() error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("WriteIf: %v, want the precondition's error", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "old" {
		t.Errorf("file is %q, want it untouched", data)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left %v behind", entries)
	}
}
