package datapath

import (
	"maps"
	"testing"

	"github.com/xdplb/xdplb/internal/testbed"
)

// TestBackendEntriesRoundTrip: what SetBackend and ClearBackend write is
// what BackendEntries reads back, the owning service included.
func TestBackendEntriesRoundTrip(t *testing.T) {
	testbed.RequirePrivileges(t)
	dp, err := Load(Options{ConntrackCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()

	writes := []struct {
		id, svc uint32
		entry   BackendEntry
	}{
		{0, 0, BackendEntry{ServiceID: 0, Addr: ap("172.19.0.2:80"), Assigned: true}},
		{1, 3, BackendEntry{ServiceID: 3, Addr: ap("172.19.0.3:8080"), Drained: true, Assigned: true}},
		{7, MaxServices - 1, BackendEntry{ServiceID: MaxServices - 1, Addr: ap("10.0.0.1:53"), Assigned: true}},
		{MaxBackends - 1, 12, BackendEntry{ServiceID: 12, Addr: ap("10.0.0.2:443"), Assigned: true}},
		{9, 4, BackendEntry{ServiceID: 4, Addr: ap("10.0.0.9:1"), Assigned: true}}, // cleared below
	}
	want := map[uint32]BackendEntry{}
	for _, w := range writes {
		if err := dp.SetBackend(w.id, w.svc, w.entry.Addr, w.entry.Drained); err != nil {
			t.Fatal(err)
		}
		want[w.id] = w.entry
	}
	if err := dp.ClearBackend(9); err != nil {
		t.Fatal(err)
	}
	delete(want, 9)
	// Rewriting an id moves it to another service and address.
	if err := dp.SetBackend(0, 5, ap("172.19.0.4:80"), false); err != nil {
		t.Fatal(err)
	}
	want[0] = BackendEntry{ServiceID: 5, Addr: ap("172.19.0.4:80"), Assigned: true}

	got, err := dp.BackendEntries()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("BackendEntries:\n got %v\nwant %v", got, want)
	}

	var raw xdplbBackend
	if err := dp.objs.Backends.Lookup(uint32(9), &raw); err != nil {
		t.Fatal(err)
	}
	if raw != (xdplbBackend{}) {
		t.Errorf("cleared backend 9 holds %+v, want nothing", raw)
	}

	for _, bad := range []struct{ id, svc uint32 }{{MaxBackends, 0}, {0, MaxServices}} {
		if err := dp.SetBackend(bad.id, bad.svc, ap("10.0.0.1:80"), false); err == nil {
			t.Errorf("SetBackend(id %d, service %d) accepted", bad.id, bad.svc)
		}
	}
}
