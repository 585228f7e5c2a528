package datapath

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/internal/testbed"
)

func pinPath(t *testing.T) string {
	t.Helper()
	testbed.RequirePrivileges(t)
	// A subtest's name has a slash: one directory, not two.
	p := fmt.Sprintf("/sys/fs/bpf/xdplb-test-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), os.Getpid())
	t.Cleanup(func() { os.RemoveAll(p) })
	return p
}

// TestPinnedStateAdopted: a second Load with the same pin path sees the
// first one's connections.
func TestPinnedStateAdopted(t *testing.T) {
	path := pinPath(t)
	first, err := Load(Options{ConntrackCapacity: 1024, PinPath: path})
	if err != nil {
		t.Fatal(err)
	}
	if first.Adopted() {
		t.Error("fresh maps reported as adopted")
	}
	f := Forward{Key: FlowKey{Src: ap("10.0.0.1:1000"), Dst: ap("172.19.0.10:80"), Proto: TCP},
		Local: ap("172.19.0.5:10000"), Backend: ap("172.19.0.2:80"), State: StateEstablished}
	r := Reverse{Key: f.ReverseKey(), Client: f.Key, State: StateEstablished}
	if err := first.PutConns([]Forward{f}, []Reverse{r}); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := Load(Options{ConntrackCapacity: 1024, PinPath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Remove()
	if !second.Adopted() {
		t.Error("pinned maps not reported as adopted")
	}
	var n int
	second.WalkForward(func(b []Forward) error { n += len(b); return nil })
	if n != 1 {
		t.Errorf("%d connections after adoption, want 1", n)
	}
}

// TestIncompatiblePinsRefused: maps of another size or layout version are
// refused with a message saying how to discard them.
func TestIncompatiblePinsRefused(t *testing.T) {
	path := pinPath(t)
	dp, err := Load(Options{ConntrackCapacity: 1024, PinPath: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := dp.objs.Layout.Update(uint32(0), LayoutVersion+1, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	dp.Close()

	_, err = Load(Options{ConntrackCapacity: 1024, PinPath: path})
	if !errors.Is(err, ErrIncompatiblePins) {
		t.Fatalf("other layout version: error %v, want ErrIncompatiblePins", err)
	}
	_, err = Load(Options{ConntrackCapacity: 2048, PinPath: path})
	if !errors.Is(err, ErrIncompatiblePins) {
		t.Fatalf("other capacity: error %v, want ErrIncompatiblePins", err)
	}
	for _, want := range []string{"--reset-state", path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not mention %q", err, want)
		}
	}
	if err := RemovePins(path); err != nil {
		t.Fatal(err)
	}
	dp, err = Load(Options{ConntrackCapacity: 2048, PinPath: path})
	if err != nil {
		t.Fatalf("after RemovePins: %v", err)
	}
	dp.Remove()
}

// TestOlderLayoutsAdopted: layout 5's and 6's maps are layout 7's, their
// new fields and flags zero (Full-NAT, not local, not NAT64): adopted as
// they are, connections included, and stamped 7 so that an older daemon
// refuses them afterwards.
func TestOlderLayoutsAdopted(t *testing.T) {
	for _, old := range []uint32{5, 6} {
		t.Run(fmt.Sprint(old), func(t *testing.T) {
			path := pinPath(t)
			first, err := Load(Options{ConntrackCapacity: 1024, PinPath: path})
			if err != nil {
				t.Fatal(err)
			}
			f := Forward{Key: FlowKey{Src: ap("10.0.0.1:1000"), Dst: ap("172.19.0.10:80"), Proto: TCP},
				Local: ap("172.19.0.5:10000"), Backend: ap("172.19.0.2:80"), State: StateEstablished}
			r := Reverse{Key: f.ReverseKey(), Client: f.Key, State: StateEstablished}
			if err := first.PutConns([]Forward{f}, []Reverse{r}); err != nil {
				t.Fatal(err)
			}
			if err := first.objs.Layout.Update(uint32(0), old, ebpf.UpdateAny); err != nil {
				t.Fatal(err)
			}
			first.Close()

			second, err := Load(Options{ConntrackCapacity: 1024, PinPath: path})
			if err != nil {
				t.Fatalf("layout %d pins: %v", old, err)
			}
			defer second.Remove()
			var got []Forward
			second.WalkForward(func(b []Forward) error { got = append(got, b...); return nil })
			if len(got) != 1 || got[0].Forwarding != FullNAT || got[0].Local != f.Local {
				t.Errorf("connections after adoption: %+v, want the one Full-NAT connection", got)
			}
			var v uint32
			if err := second.objs.Layout.Lookup(uint32(0), &v); err != nil || v != LayoutVersion || LayoutVersion != 7 {
				t.Errorf("layout after adoption: %d (%v), want 7", v, err)
			}
		})
	}
}
