package datapath

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/internal/ident"
)

// TestLayout3Migrated: maps pinned by a datapath of layout version 3, whose
// backends recorded no service, are adopted and upgraded: every backend id
// a service's ring names is assigned to that service, the others are left
// as they were.
func TestLayout3Migrated(t *testing.T) {
	path := filepath.Join(tempBPFFS(t), "xdplb")
	opts := Options{ConntrackCapacity: 1024, PinPath: path}
	dp, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := dp.Migrated(); ok {
		t.Error("fresh maps reported as migrated")
	}

	// What a version 3 daemon left: backends without service ids.
	backends := map[uint32]struct {
		addr    string
		drained bool
	}{
		1: {"172.19.0.2:80", false},
		2: {"172.19.0.3:80", false},
		3: {"172.19.0.2:53", false},
		4: {"172.19.0.3:53", false},
		5: {"172.19.0.4:53", true},  // drained, so in no ring
		6: {"172.19.0.9:80", false}, // named only by a slot outside every ring
	}
	for id, b := range backends {
		a := ap(b.addr)
		v := xdplbBackend{Addr: mustBE32(a.Addr()), Port: be16(a.Port())}
		if b.drained {
			v.Flags = xdplbBackendFlagsBACKEND_DRAINED
		}
		if err := dp.objs.Backends.Update(id, v, ebpf.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	rings := []struct {
		offset uint32
		ids    []uint32
	}{
		{10, []uint32{1, 2, 1}}, // wrr repeats ids
		{13, []uint32{6}},       // no service's slice
		{100, []uint32{3, 4}},
	}
	for _, r := range rings {
		if err := dp.WriteRing(r.offset, r.ids); err != nil {
			t.Fatal(err)
		}
	}
	services := map[ident.Service]Service{
		{VIP: vip, Port: 80, Proto: ident.TCP}: {ID: 5, Ring: Ring{Offset: 10, Len: 3}},
		{VIP: vip, Port: 53, Proto: ident.UDP}: {ID: 7, Ring: Ring{Offset: 100, Len: 2}, Index: IndexTupleHash},
	}
	for k, s := range services {
		if err := dp.SetService(k, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := dp.objs.Layout.Update(uint32(0), uint32(3), ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	if err := dp.Close(); err != nil {
		t.Fatal(err)
	}

	dp, err = Load(opts)
	if err != nil {
		t.Fatalf("adopting layout 3: %v", err)
	}
	if from, ok := dp.Migrated(); !ok || from != 3 {
		t.Errorf("Migrated() = %d, %t; want 3, true", from, ok)
	}
	if !dp.Adopted() {
		t.Error("migrated maps not reported as adopted")
	}
	var v uint32
	if err := dp.objs.Layout.Lookup(uint32(0), &v); err != nil || v != LayoutVersion {
		t.Errorf("layout version after migration: %d, %v; want %d", v, err, LayoutVersion)
	}
	want := map[uint32]BackendEntry{
		1: {ServiceID: 5, Addr: ap("172.19.0.2:80"), Assigned: true},
		2: {ServiceID: 5, Addr: ap("172.19.0.3:80"), Assigned: true},
		3: {ServiceID: 7, Addr: ap("172.19.0.2:53"), Assigned: true},
		4: {ServiceID: 7, Addr: ap("172.19.0.3:53"), Assigned: true},
		5: {Addr: ap("172.19.0.4:53"), Drained: true},
		6: {Addr: ap("172.19.0.9:80")},
	}
	got, err := dp.BackendEntries()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("backends after migration:\n got %v\nwant %v", got, want)
	}
	gotSvcs, err := dp.Services()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(gotSvcs, services) {
		t.Errorf("services after migration:\n got %v\nwant %v", gotSvcs, services)
	}
	if err := dp.Close(); err != nil {
		t.Fatal(err)
	}

	// Once upgraded, the maps are adopted as they are.
	dp, err = Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	if from, ok := dp.Migrated(); ok {
		t.Errorf("second adoption reported as migrated from %d", from)
	}
	if got, err := dp.BackendEntries(); err != nil || !maps.Equal(got, want) {
		t.Errorf("backends after the second adoption: %v, %v", got, err)
	}

	// Versions it cannot migrate are refused as before.
	if err := dp.objs.Layout.Update(uint32(0), uint32(2), ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	dp.Close()
	if _, err := Load(opts); !errors.Is(err, ErrIncompatiblePins) {
		t.Errorf("layout 2: error %v, want ErrIncompatiblePins", err)
	}
}

// TestResizedCountersRestart: a version that counts more verdict reasons
// finds the pinned counters of one that counted fewer; it makes them anew
// (saying so) and keeps every connection.
func TestResizedCountersRestart(t *testing.T) {
	path := filepath.Join(tempBPFFS(t), "xdplb")
	opts := Options{ConntrackCapacity: 1024, PinPath: path}
	dp, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	fwd := Forward{Key: FlowKey{Src: client, Dst: vip80, Proto: TCP}, Local: ap("172.19.0.5:10000"),
		Backend: ap("172.19.0.2:80"), State: StateEstablished, LastSeen: 1}
	rev := Reverse{Key: fwd.ReverseKey(), Client: fwd.Key, State: StateEstablished, LastSeen: 1}
	if err := dp.PutConns([]Forward{fwd}, []Reverse{rev}); err != nil {
		t.Fatal(err)
	}
	dp.Close()

	// An older version's reasons map: fewer entries.
	pin := filepath.Join(path, "reasons")
	old, err := ebpf.LoadPinnedMap(pin, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec := &ebpf.MapSpec{Type: old.Type(), KeySize: old.KeySize(), ValueSize: old.ValueSize(), MaxEntries: old.MaxEntries() - 4}
	old.Close()
	smaller, err := ebpf.NewMap(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer smaller.Close()
	if err := os.Remove(pin); err != nil {
		t.Fatal(err)
	}
	if err := smaller.Pin(pin); err != nil {
		t.Fatal(err)
	}

	dp, err = Load(opts)
	if err != nil {
		t.Fatalf("load over smaller pinned counters: %v", err)
	}
	defer dp.Remove()
	if got := dp.RestartedCounters(); len(got) != 1 || got[0] != "reasons" {
		t.Errorf("restarted counters %v, want [reasons]", got)
	}
	n := 0
	if err := dp.WalkForward(func(b []Forward) error { n += len(b); return nil }); err != nil || n != 1 {
		t.Errorf("connections after the load: %d (%v), want the 1 kept", n, err)
	}
	if _, err := dp.Reasons(); err != nil {
		t.Errorf("read the new counters: %v", err)
	}
}
