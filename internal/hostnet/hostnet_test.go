package hostnet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/internal/testbed"
)

func fakeProcSys(t *testing.T) {
	dir := t.TempDir()
	old := procSys
	procSys = dir
	t.Cleanup(func() { procSys = old })
	for _, family := range []string{"ipv4", "ipv6"} {
		if err := os.MkdirAll(filepath.Join(dir, family, "conf", "eth0"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, family, "conf", "eth0", "forwarding"), []byte("0\n"), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "ipv6", "conf", "eth0", "accept_ra"), []byte("1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "ipv4", "ip_local_port_range"), []byte("32768\t60999\n"), 0o644)
}

// setting reads a fake net.<family>.conf.eth0.<name>.
func setting(t *testing.T, family, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(procSys, family, "conf", "eth0", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
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
	if got := setting(t, "ipv4", "forwarding"); got != "1" {
		t.Errorf("forwarding is %q after enabling", got)
	}
	if err := RestoreForwarding("eth0", was); err != nil {
		t.Fatal(err)
	}
	if got := setting(t, "ipv4", "forwarding"); got != "0" {
		t.Errorf("forwarding is %q after restoring", got)
	}
	if _, err := EnableForwarding("nosuch0"); err == nil {
		t.Error("EnableForwarding of a missing interface succeeded")
	}
	if got := setting(t, "ipv6", "forwarding"); got != "0" {
		t.Errorf("enabling IPv4 forwarding set IPv6's to %q", got)
	}
	os.WriteFile(filepath.Join(procSys, "ipv4", "ip_local_port_range"), []byte("garbage"), 0o644)
	if _, _, err := EphemeralRange(); err == nil {
		t.Error("EphemeralRange accepted garbage")
	}
}

// TestIPv6Forwarding: accept_ra 1 becomes 2 before forwarding goes on, and
// both go back; an accept_ra of 0 or 2 is left as it is.
func TestIPv6Forwarding(t *testing.T) {
	for _, tc := range []struct {
		forwarding, acceptRA string
		want                 IPv6Forwarding
		during               string
	}{
		{"0", "1", IPv6Forwarding{Forwarding: "0", AcceptRA: "1"}, "2"},
		{"0", "0", IPv6Forwarding{Forwarding: "0"}, "0"},
		{"0", "2", IPv6Forwarding{Forwarding: "0"}, "2"},
		// Forwarding already: accept_ra 1 ignores advertisements on
		// purpose, and stays.
		{"1", "1", IPv6Forwarding{Forwarding: "1"}, "1"},
	} {
		fakeProcSys(t)
		os.WriteFile(filepath.Join(procSys, "ipv6", "conf", "eth0", "forwarding"), []byte(tc.forwarding+"\n"), 0o644)
		os.WriteFile(filepath.Join(procSys, "ipv6", "conf", "eth0", "accept_ra"), []byte(tc.acceptRA+"\n"), 0o644)
		was, err := EnableIPv6Forwarding("eth0")
		if err != nil || was != tc.want {
			t.Fatalf("forwarding %s, accept_ra %s: EnableIPv6Forwarding() = %+v, %v; want %+v", tc.forwarding, tc.acceptRA, was, err, tc.want)
		}
		if f, ra := setting(t, "ipv6", "forwarding"), setting(t, "ipv6", "accept_ra"); f != "1" || ra != tc.during {
			t.Errorf("accept_ra %s: after enabling, forwarding %s and accept_ra %s; want 1 and %s", tc.acceptRA, f, ra, tc.during)
		}
		if got := setting(t, "ipv4", "forwarding"); got != "0" {
			t.Errorf("enabling IPv6 forwarding set IPv4's to %q", got)
		}
		if err := RestoreIPv6Forwarding("eth0", was); err != nil {
			t.Fatal(err)
		}
		if f, ra := setting(t, "ipv6", "forwarding"), setting(t, "ipv6", "accept_ra"); f != tc.forwarding || ra != tc.acceptRA {
			t.Errorf("accept_ra %s: after restoring, forwarding %s and accept_ra %s; want %s and %s", tc.acceptRA, f, ra, tc.forwarding, tc.acceptRA)
		}
	}
	if _, err := EnableIPv6Forwarding("nosuch0"); err == nil || !strings.Contains(err.Error(), "net.ipv6.conf.nosuch0.forwarding") {
		t.Errorf("EnableIPv6Forwarding of a missing interface: %v", err)
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

// TestIPv6Host runs on a throw-away two-host segment with IPv6 turned on
// in both hosts: an IPv6 VIP is usable the moment it is added (no
// duplicate address detection), forwarding on the interface keeps router
// advertisements accepted, and an IPv6 backend's neighbour is resolved.
func TestIPv6Host(t *testing.T) {
	testbed.RequirePrivileges(t)
	seg, err := testbed.NewSegment(netip.MustParsePrefix("10.77.1.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	a, err := seg.AddHost("a", netip.MustParseAddr("10.77.1.1"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := seg.AddHost("b", netip.MustParseAddr("10.77.1.2"))
	if err != nil {
		t.Fatal(err)
	}
	addrA, addrB := netip.MustParsePrefix("2001:db8:77::1/64"), netip.MustParsePrefix("2001:db8:77::2/64")
	if err := b.Do(func() error { return withIPv6("eth0", addrB) }); err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("2001:db8:77::10")
	err = a.Do(func() error {
		if err := withIPv6("eth0", addrA); err != nil {
			return err
		}
		added, err := AddAddr("eth0", vip)
		if err != nil || !added {
			t.Errorf("AddAddr(%s) = %v, %v; want added", vip, added, err)
		}
		// At once, not after DAD's second: neither tentative nor anything
		// but a host route.
		if got, err := addrOn("eth0", vip); err != nil {
			t.Error(err)
		} else if ones, _ := got.Mask.Size(); ones != 128 || got.Flags&unix.IFA_F_NODAD == 0 || got.Flags&unix.IFA_F_TENTATIVE != 0 {
			t.Errorf("%s added as /%d with flags %#x; want /128, NODAD and not tentative", vip, ones, got.Flags)
		}
		if err := RemoveAddr("eth0", vip); err != nil {
			t.Error(err)
		}
		if has, _ := HostHas(vip); has {
			t.Error("HostHas(vip) is true after RemoveAddr")
		}

		if err := writeSetting("ipv6", "eth0", "accept_ra", "1"); err != nil {
			return err
		}
		was, err := EnableIPv6Forwarding("eth0")
		if err != nil {
			return err
		}
		if f, ra := sysctl(t, "forwarding"), sysctl(t, "accept_ra"); f != "1" || ra != "2" {
			t.Errorf("after enabling: forwarding %s, accept_ra %s; want 1 and 2", f, ra)
		}
		if err := RestoreIPv6Forwarding("eth0", was); err != nil {
			t.Error(err)
		}
		if f, ra := sysctl(t, "forwarding"), sysctl(t, "accept_ra"); f != "0" || ra != "1" {
			t.Errorf("after restoring: forwarding %s, accept_ra %s; want 0 and 1", f, ra)
		}

		n := NewNeighbours(slog.New(slog.NewTextHandler(io.Discard, nil)))
		n.SetTargets([]netip.Addr{addrB.Addr()})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if missing := n.WaitResolved(ctx); len(missing) != 0 {
			t.Errorf("unresolved after 5s: %v", missing)
		}
		hop, err := nextHop(addrB.Addr())
		if err != nil || hop.IP != addrB.Addr() {
			t.Errorf("next hop of %s: %+v, %v; want itself, on-link", addrB.Addr(), hop, err)
		}
		if err := Probe(addrB.Addr()); err != nil {
			t.Errorf("Probe(%s): %v", addrB.Addr(), err)
		}
		if err := n.Forget(); err != nil {
			t.Error(err)
		}
		if (validNeighbours{}).has(hop) {
			t.Error("after Forget the neighbour entry is still there")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// withIPv6 turns IPv6 on for the interface, which the testbed leaves
// off, and gives it the address, without DAD so it answers at once.
func withIPv6(ifname string, p netip.Prefix) error {
	if err := writeSetting("ipv6", ifname, "disable_ipv6", "0"); err != nil {
		return err
	}
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return err
	}
	return netlink.AddrAdd(l, &netlink.Addr{IPNet: netipx(p), Flags: unix.IFA_F_NODAD})
}

func netipx(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// addrOn is the interface's entry for addr.
func addrOn(ifname string, addr netip.Addr) (netlink.Addr, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return netlink.Addr{}, err
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		return netlink.Addr{}, err
	}
	for _, x := range addrs {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip == addr {
			return x, nil
		}
	}
	return netlink.Addr{}, fmt.Errorf("%s is not on %s", addr, ifname)
}

// sysctl reads net.ipv6.conf.eth0.<name> in the calling thread's namespace.
func sysctl(t *testing.T, name string) string {
	t.Helper()
	v, err := readSetting("ipv6", "eth0", name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
