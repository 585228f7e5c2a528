package datapath

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"net/netip"
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
	pinOldConntrack(t, path, 1024, nil)

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
	if _, err := dp.FinishMigration(); err != nil {
		t.Fatal(err)
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

// pinOldConntrack replaces the conntrack maps pinned at path with maps of
// layouts 3 and 4 (values 48 and 56 bytes), holding conns.
func pinOldConntrack(t *testing.T, path string, capacity uint32, conns map[xdplbCtKey]struct {
	fwd ctFwd4
	rev ctRev4
	rk  xdplbCtKey
}) {
	t.Helper()
	for _, h := range []struct {
		name  string
		value uint32
	}{{"ct_forward", 48}, {"ct_reverse", 56}} {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Name: h.name, Type: ebpf.Hash, KeySize: 16, ValueSize: h.value, MaxEntries: capacity})
		if err != nil {
			t.Fatal(err)
		}
		for fk, c := range conns {
			k, v := any(fk), any(c.fwd)
			if h.name == "ct_reverse" {
				k, v = c.rk, c.rev
			}
			if err := m.Update(k, v, ebpf.UpdateNoExist); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(path, h.name)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := m.Pin(p); err != nil {
			t.Fatal(err)
		}
		m.Close()
	}
}

// TestLayout4Migrated: conntrack maps of layout 4 (values without the
// sequence fields) are copied into maps of this layout, every entry kept
// with its new fields zero ("not known yet"); the entries the old program
// adds until it is replaced are copied by FinishMigration; a failed
// upgrade leaves the old maps pinned as they were.
func TestLayout4Migrated(t *testing.T) {
	path := filepath.Join(tempBPFFS(t), "xdplb")
	opts := Options{ConntrackCapacity: 1024, PinPath: path}
	dp, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := dp.objs.Layout.Update(uint32(0), uint32(4), ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	dp.Close()
	conn := func(i byte) (xdplbCtKey, xdplbCtFwd, xdplbCtKey, xdplbCtRev) {
		fk := xdplbCtKey{Saddr: mustBE32(netip.AddrFrom4([4]byte{10, 0, 0, i})), Daddr: mustBE32(vip), Sport: be16(40000), Dport: be16(80), Proto: TCP}
		f := xdplbCtFwd{LastSeen: 7, LocalAddr: mustBE32(localAddr), BackendAddr: mustBE32(rs1HTTP.Addr()), LocalPort: be16(20000 + uint16(i)),
			BackendPort: be16(80), BackendId: 3, SvcId: 1, State: xdplbCtStateCT_ESTABLISHED, HopIfindex: 9, HopDmac: [6]byte(rs1MAC)}
		rk := reverseKeyOf(fk, &f)
		r := xdplbCtRev{LastSeen: 8, Client: fk, ClientMac: [6]byte(clientMAC), Ifindex: 9, SvcId: 1, BackendId: 3,
			State: xdplbCtStateCT_ESTABLISHED, Origin: 2, Flags: 1}
		return fk, f, rk, r
	}
	type old = struct {
		fwd ctFwd4
		rev ctRev4
		rk  xdplbCtKey
	}
	truncated := func(v any, n int) []byte {
		var b bytes.Buffer
		if err := binary.Write(&b, binary.NativeEndian, v); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()[:n]
	}
	conns := map[xdplbCtKey]old{}
	for i := byte(1); i <= 2; i++ {
		fk, f, rk, r := conn(i)
		conns[fk] = old{fwd: ctFwd4(truncated(f, 48)), rev: ctRev4(truncated(r, 56)), rk: rk}
	}
	pinOldConntrack(t, path, 1024, conns)

	// Too small for them: refused, and the old maps stay pinned.
	if _, err := Load(Options{ConntrackCapacity: 1, PinPath: path}); err == nil {
		t.Fatal("upgrade into a table too small for the connections succeeded")
	}
	checkPinned(t, path, map[string]uint32{"ct_forward": 48, "ct_reverse": 56})

	dp, err = Load(opts)
	if err != nil {
		t.Fatalf("adopting layout 4: %v", err)
	}
	defer dp.Remove()
	if from, ok := dp.Migrated(); !ok || from != 4 || dp.MigratedConns() != 2 {
		t.Errorf("Migrated() = %d, %t, %d connections; want 4, true, 2", from, ok, dp.MigratedConns())
	}
	for i := byte(1); i <= 2; i++ {
		fk, f, rk, r := conn(i)
		var gf xdplbCtFwd
		var gr xdplbCtRev
		if err := dp.objs.CtForward.Lookup(fk, &gf); err != nil || gf != f {
			t.Errorf("forward half %d after the upgrade: %+v (%v), want %+v", i, gf, err, f)
		}
		if err := dp.objs.CtReverse.Lookup(rk, &gr); err != nil || gr != r {
			t.Errorf("reverse half %d after the upgrade: %+v (%v), want %+v", i, gr, err, r)
		}
	}
	// Until the new program runs everywhere, the old state stays pinned as
	// it was, and the layout says so.
	checkPinned(t, path, map[string]uint32{"ct_forward": 48, "ct_reverse": 56})
	var layout uint32
	if err := dp.objs.Layout.Lookup(uint32(0), &layout); err != nil || layout != 4 {
		t.Errorf("layout before FinishMigration: %d (%v), want 4", layout, err)
	}
	// The old program gave conn 4's port out after the first copy, and
	// the new program gave it to another client: the newer one keeps it.
	fk4, f4, rk4, r4 := conn(4)
	other := r4
	other.Client.Sport = be16(40001)
	if err := dp.objs.CtReverse.Update(rk4, other, ebpf.UpdateNoExist); err != nil {
		t.Fatal(err)
	}
	if err := dp.oldCT.rev.Update(rk4, ctRev4(truncated(r4, 56)), ebpf.UpdateNoExist); err != nil {
		t.Fatal(err)
	}
	if err := dp.oldCT.fwd.Update(fk4, ctFwd4(truncated(f4, 48)), ebpf.UpdateNoExist); err != nil {
		t.Fatal(err)
	}
	// The old program opens one more before it is replaced.
	fk, f, rk, r := conn(3)
	if err := dp.oldCT.rev.Update(rk, ctRev4(truncated(r, 56)), ebpf.UpdateNoExist); err != nil {
		t.Fatal(err)
	}
	if err := dp.oldCT.fwd.Update(fk, ctFwd4(truncated(f, 48)), ebpf.UpdateNoExist); err != nil {
		t.Fatal(err)
	}
	if n, err := dp.FinishMigration(); err != nil || n != 1 {
		t.Errorf("FinishMigration() = %d, %v; want 1 connection", n, err)
	}
	var gf xdplbCtFwd
	if err := dp.objs.CtForward.Lookup(fk, &gf); err != nil || gf != f {
		t.Errorf("connection opened during the upgrade: %+v (%v), want %+v", gf, err, f)
	}
	if err := dp.objs.CtForward.Lookup(fk4, new(xdplbCtFwd)); err == nil {
		t.Error("a connection whose port the new program gave to another client was copied: two clients on one tuple")
	}
	checkPinned(t, path, map[string]uint32{"ct_forward": 56, "ct_reverse": 64})
	if err := dp.objs.Layout.Lookup(uint32(0), &layout); err != nil || layout != LayoutVersion {
		t.Errorf("layout after FinishMigration: %d (%v), want %d", layout, err, LayoutVersion)
	}
	if n, err := dp.FinishMigration(); err != nil || n != 0 {
		t.Errorf("second FinishMigration() = %d, %v; want nothing", n, err)
	}
}

// checkPinned: the maps pinned at path under each name have values of the
// given size.
func checkPinned(t *testing.T, path string, sizes map[string]uint32) {
	t.Helper()
	for name, size := range sizes {
		m, err := ebpf.LoadPinnedMap(filepath.Join(path, name), nil)
		if err != nil {
			t.Fatalf("pinned %s: %v", name, err)
		}
		if m.ValueSize() != size {
			t.Errorf("pinned %s: values of %d bytes, want %d", name, m.ValueSize(), size)
		}
		m.Close()
	}
}
