package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadKey: the sync key must be a private file of at least 16 bytes;
// a link to one (as secret mounts make) is fine.
func TestReadKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "0123456789abcdef0123456789abcdef", 0o600)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path, err string
	}{
		{"private", good, ""},
		{"link to a private file", link, ""},
		{"readable by others", write("open", "0123456789abcdef0123456789abcdef", 0o644), "is open to group or others (mode 0644)"},
		{"short", write("short", "too short", 0o600), "holds 9 bytes, want at least 16"},
		{"missing", filepath.Join(dir, "none"), "no such file"},
		{"a directory", dir, "is not a regular file"},
	} {
		key, err := readKey(c.path)
		switch {
		case c.err == "" && (err != nil || len(key) != 32):
			t.Errorf("%s: %d bytes, %v", c.name, len(key), err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "sync.key_file: ")):
			t.Errorf("%s: error %v, want one naming sync.key_file and saying %q", c.name, err, c.err)
		}
	}
}
