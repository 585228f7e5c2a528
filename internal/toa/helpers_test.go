package toa

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

	"github.com/xdplb/xdplb/internal/testbed"
)

// tempCgroup makes a cgroup v2 directory for the test alone and removes it
// when the test ends, after every cleanup registered later (Remove, the
// processes in it).
func tempCgroup(t *testing.T) Cgroup {
	t.Helper()
	testbed.RequirePrivileges(t)
	mount, err := Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	path := filepath.Join(mount, fmt.Sprintf("xdplb-toa-test-%d-%s", os.Getpid(), hex.EncodeToString(b)))
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
	cg, err := OpenCgroup(path)
	if err != nil {
		t.Fatal(err)
	}
	return cg
}

// install installs the reader on cg and removes it when the test ends.
func install(t *testing.T, cg Cgroup) Installed {
	t.Helper()
	t.Cleanup(func() {
		if _, err := RemoveID(cg.ID); err != nil {
			t.Errorf("remove the reader from %s: %v", cg.Path, err)
		}
	})
	done, err := Install(cg.Path)
	if err != nil {
		t.Fatal(err)
	}
	return done
}

// installation returns the reader's status on cgroup id.
func installation(t *testing.T, id uint64) (Installation, bool) {
	t.Helper()
	all, err := Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range all {
		if in.CgroupID == id {
			return in, true
		}
	}
	return Installation{}, false
}
