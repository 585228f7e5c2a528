package backendprep

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestMergeSysctl: a setting apply changes again keeps the value it had
// before xdplb, unless someone changed it in between; a change back to
// where it started is no change.
func TestMergeSysctl(t *testing.T) {
	ign := func(prev, v int) Sysctl { return Sysctl{Dir: "all", Setting: arpIgnore, Previous: prev, Value: v} }
	rp := Sysctl{Dir: "eth0", Setting: rpFilter, Previous: 1, Value: 2}
	for _, tc := range []struct {
		name  string
		state []Sysctl
		add   Sysctl
		want  []Sysctl
	}{
		{"new", []Sysctl{rp}, ign(0, 1), []Sysctl{rp, ign(0, 1)}},
		// apply 0 -> 1, then finding 1 sets 2: 0 is still what to put back.
		{"chain", []Sysctl{ign(0, 1), rp}, ign(1, 2), []Sysctl{ign(0, 2), rp}},
		// apply 0 -> 1, someone sets 5, apply 5 -> 1: 5 is what to put back.
		{"changed between", []Sysctl{ign(0, 1), rp}, ign(5, 1), []Sysctl{ign(5, 1), rp}},
		{"back to start", []Sysctl{ign(0, 1), rp}, ign(1, 0), []Sysctl{rp}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &State{Sysctls: tc.state}
			s.addSysctl(tc.add)
			if !reflect.DeepEqual(s.Sysctls, tc.want) {
				t.Errorf("got %+v, want %+v", s.Sysctls, tc.want)
			}
		})
	}
}

func TestMergeOthers(t *testing.T) {
	a := Address{Interface: "lo", Address: netip.MustParseAddr("10.0.0.100")}
	b := Address{Interface: "lo", Address: netip.MustParseAddr("10.0.0.101")}
	s := &State{}
	s.addMode(DSRL2)
	s.addAddress(a)
	s.addLink(Link{Name: tunnelDev, SetUp: true})
	s.addGUEPort(6080)
	// A second apply, for another mode, with some of the same.
	s.addMode(DSRGUE)
	s.addMode(DSRL2)
	s.addAddress(b)
	s.addAddress(a)
	s.addLink(Link{Name: tunnelDev, Created: true})
	s.addGUEPort(6080)
	s.addGUEPort(7000)
	want := &State{
		Modes:     []Mode{DSRL2, DSRGUE},
		Addresses: []Address{a, b},
		Links:     []Link{{Name: tunnelDev, Created: true, SetUp: true}},
		GUEPorts:  []uint16{6080, 7000},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("merged %+v, want %+v", s, want)
	}
}

// TestStateFile: saved and loaded back the same, root's alone, in a
// directory made for it; a missing file is an empty state, and a file of
// another layout is refused.
func TestStateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "xdplb")
	path := filepath.Join(dir, "backend-prep.json")
	s, exists, err := Load(path)
	if err != nil || exists || !s.empty() || s.Version != stateVersion {
		t.Fatalf("Load(missing) = %+v, %v, %v", s, exists, err)
	}
	s.addMode(DSRIPIP)
	s.addAddress(Address{Interface: "lo", Address: netip.MustParseAddr("10.0.0.100")})
	s.addSysctl(Sysctl{Dir: "eth0.100", Setting: rpFilter, Previous: 1, Value: 2})
	s.addLink(Link{Name: tunnelDev, SetUp: true})
	s.addGUEPort(6080)
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v, %v; want mode %v", p, fi.Mode(), err, mode)
		}
	}
	got, exists, err := Load(path)
	if err != nil || !exists || !reflect.DeepEqual(got, s) {
		t.Errorf("Load = %+v, %v, %v; want %+v", got, exists, err, s)
	}

	for content, want := range map[string]string{
		`{"version": 2, "modes": ["dsr-l2"]}`: "layout version 2, but this xdplb reads version 1",
		`not json`:                            "it is not what xdplb backend-prep writes",
	} {
		os.WriteFile(path, []byte(content), 0o600)
		if _, _, err := Load(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%s) = %v, want %q", content, err, want)
		}
	}
}
