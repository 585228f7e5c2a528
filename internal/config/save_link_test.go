package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSaveServicesThroughLink: a config file the operator linked into
// place is updated where it is, and the link stays.
func TestSaveServicesThroughLink(t *testing.T) {
	real := filepath.Join(t.TempDir(), "xdplb.yaml")
	orig, err := os.ReadFile("testdata/reference.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, orig, 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "xdplb.yaml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(link)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SaveServices(link, cfg.Services[:0], digestOf(t, link)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("link replaced: %v, %v", fi, err)
	}
	saved, err := Load(real)
	if err != nil {
		t.Fatal(err)
	}
	if len(saved.Services) != 0 {
		t.Errorf("saved to the link's target: %d services, want 0", len(saved.Services))
	}
	if fi, _ := os.Stat(real); fi.Mode().Perm() != 0o640 {
		t.Errorf("saved file mode %v, want 0640", fi.Mode().Perm())
	}
}
