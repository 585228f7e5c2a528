package testbed

import (
	"os"
	"testing"
)

// RequirePrivileges skips a test that needs root (and so BPF, netlink and
// namespaces) when run unprivileged by hand, and fails it under CI=true:
// CI runs as root, so a skip there would hide a test that never ran.
func RequirePrivileges(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root (CI=true: refusing to skip)")
	}
	t.Skip("needs root")
}
