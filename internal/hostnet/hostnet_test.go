package hostnet

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/testbed"
)

func fakeProcSys(t *testing.T) {
	dir := t.TempDir()
	old := procSys
	procSys = dir
	t.Cleanup(func() { procSys = old })
	if err := os.MkdirAll(filepath.Join(dir, "conf", "eth0"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "conf", "eth0", "forwarding"), []byte("0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "ip_local_port_range"), []byte("32768\t60999\n"), 0o644)
}

func TestSysctls(t *testing.T) {
	fakeProcSys(t)
	lo, hi, err := EphemeralRange()
	if err != nil || lo != 32768 || hi != 60999 {
		t.Errorf("EphemeralRange() = %d, %d, %v", lo, hi, err)
	}
	was, err := EnableForwarding("eth0")
	if err != nil || was != "0" {
		t.Fatalf("EnableForwarding() = %q, %v", was, err)
	}
	b, _ := os.ReadFile(filepath.Join(procSys, "conf", "eth0", "forwarding"))
	if string(b) != "1" {
		t.Errorf("forwarding is %q after enabling", b)
	}
	if err := RestoreForwarding("eth0", was); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(procSys, "conf", "eth0", "forwarding"))
	if string(b) != "0" {
		t.Errorf("forwarding is %q after restoring", b)
	}
	if _, err := EnableForwarding("nosuch0"); err == nil {
		t.Error("EnableForwarding of a missing interface succeeded")
	}
	os.WriteFile(filepath.Join(procSys, "ip_local_port_range"), []byte("garbage"), 0o644)
	if _, _, err := EphemeralRange(); err == nil {
		t.Error("EphemeralRange accepted garbage")
	}
}

// TestAddressesAndNeighbours runs on a throw-away two-host segment: an
// address is added and removed once, and a neighbour is resolved by the
// kernel on request.
func TestAddressesAndNeighbours(t *testing.T) {
	testbed.RequirePrivileges(t)
	seg, err := testbed.NewSegment(netip.MustParsePrefix("10.77.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	a, err := seg.AddHost("a", netip.MustParseAddr("10.77.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := seg.AddHost("b", netip.MustParseAddr("10.77.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("10.77.0.10")
	err = a.Do(func() error {
		added, err := AddAddr("eth0", vip)
		if err != nil || !added {
			t.Errorf("AddAddr = %v, %v; want added", added, err)
		}
		if added, err := AddAddr("eth0", vip); err != nil || added {
			t.Errorf("second AddAddr = %v, %v; want not added (already there)", added, err)
		}
		if has, _ := HostHas(vip); !has {
			t.Error("HostHas(vip) is false after AddAddr")
		}
		if err := RemoveAddr("eth0", vip); err != nil {
			t.Error(err)
		}
		if err := RemoveAddr("eth0", vip); err != nil {
			t.Errorf("removing an absent address: %v", err)
		}
		if has, _ := HostHas(vip); has {
			t.Error("HostHas(vip) is true after RemoveAddr")
		}

		n := NewNeighbours(slog.New(slog.NewTextHandler(io.Discard, nil)))
		n.SetTargets([]netip.Addr{b.Addr})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if missing := n.WaitResolved(ctx); len(missing) != 0 {
			t.Errorf("unresolved after 5s: %v", missing)
		}
		if err := n.Forget(); err != nil {
			t.Error(err)
		}
		if hop, err := nextHop(b.Addr); err != nil || (validNeighbours{}).has(hop) {
			t.Errorf("after Forget the neighbour entry is still there (%v)", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
