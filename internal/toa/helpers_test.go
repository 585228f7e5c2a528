package toa

import (
	"testing"

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
	cg, err := OpenCgroup(testbed.TempCgroup(t, mount))
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
