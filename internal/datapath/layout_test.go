package datapath

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/internal/testbed"
)

// TestMapLayouts: every map the kernel holds has the key size, value size
// and number of entries the Go side reads and writes it with. The
// expectations come from the generated struct types and the generated
// limits (bpf/lib/types.h), so a layout changed on one side only fails
// here.
func TestMapLayouts(t *testing.T) {
	testbed.RequirePrivileges(t)
	const capacity = 4096
	dp, err := Load(Options{ConntrackCapacity: capacity})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()

	size := func(v any) uint32 {
		n := binary.Size(v)
		if n <= 0 {
			t.Fatalf("binary.Size(%T) = %d", v, n)
		}
		return uint32(n)
	}
	u32 := size(uint32(0))
	type layout struct{ key, value, entries uint32 }
	want := map[string]layout{
		"services":        {size(xdplbSvcKey{}), size(xdplbSvcValue{}), uint32(xdplbLimitsMAX_SERVICES)},
		"vips":            {u32, u32, uint32(xdplbLimitsMAX_SERVICES)},
		"rings":           {u32, u32, uint32(xdplbLimitsRING_SLOTS)},
		"rr_pos":          {u32, u32, uint32(xdplbLimitsMAX_SERVICES)},
		"backends":        {u32, size(xdplbBackend{}), uint32(xdplbLimitsMAX_BACKENDS)},
		"backend_loads":   {u32, size(xdplbBackendLoad{}), uint32(xdplbLimitsMAX_BACKENDS)},
		"persist_masks":   {u32, u32, uint32(xdplbLimitsMAX_SERVICES)},
		"persist":         {size(xdplbPersistKey{}), size(xdplbPersistValue{}), uint32(xdplbLimitsPERSIST_ENTRIES)},
		"local_addrs":     {u32, u32, uint32(xdplbLimitsMAX_LOCAL_ADDRS)},
		"config":          {u32, size(xdplbLbConfig{}), 1},
		"ct_forward":      {size(xdplbCtKey{}), size(xdplbCtFwd{}), capacity},
		"ct_reverse":      {size(xdplbCtKey{}), size(xdplbCtRev{}), capacity},
		"svc_stats":       {u32, size(xdplbTraffic{}), uint32(xdplbLimitsMAX_SERVICES)},
		"backend_stats":   {u32, size(xdplbTraffic{}), uint32(xdplbLimitsMAX_BACKENDS)},
		"reasons":         {size(xdplbReason(0)), size(uint64(0)), uint32(xdplbReasonR_MAX)},
		"layout":          {u32, size(xdplbLayoutVersion(0)), 1},
		"events":          {0, 0, 64 * 1024}, // a ring buffer: its size in bytes
		"sync_events":     {0, 0, 4 * 1024 * 1024},
		"sync_stats":      {u32, size(uint64(0)), uint32(xdplbSyncCounterSYNC_COUNTERS)},
		"syn_rate":        {u32, size(xdplbSynWindow{}), 1},
		"syn_verified":    {u32, size(uint64(0)), 1 << 18},
		"svc_client_addr": {u32, u32, uint32(xdplbLimitsMAX_SERVICES)},
		"toa_pending":     {size(xdplbCtKey{}), u32, 1 << 18},
		"toa_stats":       {u32, size(uint64(0)), uint32(xdplbToaCounterTOA_COUNTERS)},
		"port_pools":      {u32, u32, uint32(xdplbLimitsMAX_BACKENDS)}, // values are map ids
		"pool_cursor":     {u32, u32, uint32(xdplbLimitsMAX_BACKENDS)},
		"backend_pool":    {u32, u32, uint32(xdplbLimitsMAX_BACKENDS)},
		"local_index":     {u32, u32, uint32(xdplbLimitsMAX_LOCAL_ADDRS)},
		"half_open":       {u32, size(int64(0)), uint32(xdplbLimitsMAX_SERVICES) + 1},
		"backend_hops":    {u32, size(xdplbBackendHop{}), uint32(xdplbLimitsMAX_BACKENDS)},
		"svc_fwd_mode":    {u32, u32, uint32(xdplbLimitsMAX_SERVICES)},
		"decap_sources":   {u32, u32, 1024},
		"icmp_budget":     {u32, 16, 1},
		"services6":       {size(xdplbSvc6Key{}), size(xdplbSvcValue{}), uint32(xdplbLimitsMAX_SERVICES)},
		"vips6":           {size(xdplbAddr6{}), u32, uint32(xdplbLimitsMAX_SERVICES)},
		"backends6":       {u32, size(xdplbBackend6{}), uint32(xdplbLimitsMAX_BACKENDS)},
		"local6_addrs":    {u32, size(xdplbAddr6{}), uint32(xdplbLimitsMAX_LOCAL_ADDRS)},
		"local6_index":    {size(xdplbAddr6{}), u32, uint32(xdplbLimitsMAX_LOCAL_ADDRS)},
		"config6":         {u32, size(xdplbLbConfig6{}), 1},
		"persist6_masks":  {u32, size(xdplbAddr6{}), uint32(xdplbLimitsMAX_SERVICES)},
		"persist6":        {size(xdplbPersist6Key{}), size(xdplbPersist6Value{}), uint32(xdplbLimitsPERSIST_ENTRIES)},
		"ct6_forward":     {size(xdplbCt6Key{}), size(xdplbCt6Fwd{}), capacity},
		"ct6_reverse":     {size(xdplbCt6Key{}), size(xdplbCt6Rev{}), capacity},
		"scratch6":        {u32, 80 + 88 + 64 + 64, 1}, // not pinned: per-CPU room
		"svc_nat64":       {u32, u32, uint32(xdplbLimitsMAX_SERVICES)},
		"ct_rev_client6":  {size(xdplbCtKey{}), size(xdplbCt6Key{}), capacity},
	}

	// Every map of the object, found by its bpf2go tag, so a map added
	// later without an expectation fails too.
	seen := map[string]bool{}
	maps := reflect.ValueOf(dp.objs.xdplbMaps)
	for i := range maps.NumField() {
		name := maps.Type().Field(i).Tag.Get("ebpf")
		m := maps.Field(i).Interface().(*ebpf.Map)
		seen[name] = true
		w, ok := want[name]
		if !ok {
			t.Errorf("map %s: no expected layout; add it to this test", name)
			continue
		}
		info, err := m.Info() // the kernel's account, not the spec's
		if err != nil {
			t.Fatalf("map %s: %v", name, err)
		}
		got := layout{info.KeySize, info.ValueSize, info.MaxEntries}
		if got != w {
			t.Errorf("map %s: key %d, value %d, %d entries in the kernel; Go expects key %d, value %d, %d entries",
				name, got.key, got.value, got.entries, w.key, w.value, w.entries)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("map %s expected but not in the object", name)
		}
	}

	// The conntrack maps were resized above; their compiled size is the
	// default (DefaultConntrackCapacity, which cannot differ: load.go).
	spec, err := loadXdplb()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ct_forward", "ct_reverse"} {
		if got := spec.Maps[name].MaxEntries; got != uint32(xdplbLimitsCT_DEFAULT_ENTRIES) {
			t.Errorf("map %s: compiled with %d entries, want CT_DEFAULT_ENTRIES %d", name, got, xdplbLimitsCT_DEFAULT_ENTRIES)
		}
	}
}
