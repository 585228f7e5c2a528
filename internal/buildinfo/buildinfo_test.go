package buildinfo

import "testing"

func TestRead(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "v1.2.3"
	if got := Read().Version; got != "v1.2.3" {
		t.Errorf("Read().Version = %q with Version set, want v1.2.3", got)
	}
	Version = ""
	if got := Read().Version; got == "" {
		t.Error("Read().Version is empty without Version; want the module's or unknown")
	}
}
