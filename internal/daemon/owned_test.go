package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadOwnedTrustsOnlyRootsFile: the ownership record is read only if
// it is a regular file no one else may write, never through a link.
func TestReadOwnedTrustsOnlyRootsFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	record := `{"addresses":[{"interface":"eth0","address":"10.0.0.1"}],"forwarding":{}}`
	if err := os.WriteFile(good, []byte(record), 0o600); err != nil {
		t.Fatal(err)
	}
	if o, err := readOwned(good); err != nil || len(o.Addresses) != 1 {
		t.Fatalf("readOwned of a good record: %+v, %v", o, err)
	}
	shared := filepath.Join(dir, "shared.json")
	if err := os.WriteFile(shared, []byte(record), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o666); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{shared, link} {
		if _, err := readOwned(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("readOwned(%s): %v, want a refusal naming it", path, err)
		}
	}
	if o, err := readOwned(filepath.Join(dir, "missing.json")); err != nil || len(o.Addresses) != 0 {
		t.Errorf("a missing record: %+v, %v; want an empty one", o, err)
	}
}
