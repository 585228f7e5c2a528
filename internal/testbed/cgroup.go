package testbed

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TempCgroup makes a cgroup v2 directory under mount (the cgroup2 mount
// point) for the test alone, with a unique name, and removes it when the
// test ends: after every cleanup registered later, so processes in it and
// programs on it go first.
func TempCgroup(t testing.TB, mount string) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	path := filepath.Join(mount, fmt.Sprintf("xdplb-test-%d-%s", os.Getpid(), hex.EncodeToString(b)))
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A process killed a moment ago may still be leaving it.
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := unix.Rmdir(path)
			if err == nil || errors.Is(err, unix.ENOENT) {
				return
			}
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				t.Errorf("remove cgroup %s: %v", path, err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	return path
}
