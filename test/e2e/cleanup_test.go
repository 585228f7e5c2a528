package e2e

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"

	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// lbState is what the balancer changes on the lb host.
type lbState struct {
	xdp        *netlink.LinkXdp
	addrs      []netip.Addr // on eth0
	forwarding string       // net.ipv4.conf.eth0.forwarding
}

func (s lbState) has(a netip.Addr) bool {
	for _, x := range s.addrs {
		if x == a {
			return true
		}
	}
	return false
}

func (s lbState) xdpAttached() bool { return s.xdp != nil && s.xdp.Attached }

func readLBState(t *testing.T, lb *testbed.Host) lbState {
	t.Helper()
	var s lbState
	err := lb.Do(func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		s.xdp = link.Attrs().Xdp
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok {
				s.addrs = append(s.addrs, ip.Unmap())
			}
		}
		fwd, err := os.ReadFile("/proc/sys/net/ipv4/conf/eth0/forwarding")
		s.forwarding = strings.TrimSpace(string(fwd))
		return err
	})
	if err != nil {
		t.Fatalf("inspect %s: %v", lb, err)
	}
	return s
}

// TestDaemonCleanup stops a balancer that carried traffic and checks that
// it took everything back: no XDP program on eth0, no VIP, the forwarding
// setting as it was, the API socket gone, and the lb's own address (which it
// found already configured) left alone.
func TestDaemonCleanup(t *testing.T) {
	testbed.RequirePrivileges(t)
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, mode)
			before := readLBState(t, e.ref.LB)
			if before.xdpAttached() || before.has(testbed.ReferenceVIP) {
				t.Fatalf("lb already has XDP (%+v) or the VIP (%v) before the balancer starts", before.xdp, before.addrs)
			}
			e.start(t, func(dir string) string { return demo.ReferenceConfig(mode, dir) })

			// The balancer must really be in place, or the checks after
			// Stop prove nothing.
			running := readLBState(t, e.ref.LB)
			wantMode := uint32(nl.XDP_ATTACHED_DRV)
			if mode == "generic" {
				wantMode = nl.XDP_ATTACHED_SKB
			}
			if !running.xdpAttached() || running.xdp.AttachMode != wantMode {
				t.Errorf("while running: eth0 XDP %+v, want attached in mode %d", running.xdp, wantMode)
			}
			if !running.has(testbed.ReferenceVIP) {
				t.Errorf("while running: VIP %s not on eth0 (addresses %v)", testbed.ReferenceVIP, running.addrs)
			}
			if running.forwarding != "1" {
				t.Errorf("while running: eth0 forwarding %q, want 1", running.forwarding)
			}
			body, err := httpGet(t.Context(), e.ref.Client.HTTPClient(false), webURL)
			if err != nil || body != "rs-1" {
				t.Errorf("request through the VIP: %q, %v; want rs-1", body, err)
			}
			if t.Failed() {
				t.FailNow()
			}

			if err := e.stop(); err != nil {
				t.Fatalf("stop balancer: %v", err)
			}
			after := readLBState(t, e.ref.LB)
			if after.xdpAttached() {
				t.Errorf("after stop: XDP program still attached to eth0: %+v", after.xdp)
			}
			if after.has(testbed.ReferenceVIP) {
				t.Errorf("after stop: VIP %s still on eth0 (addresses %v)", testbed.ReferenceVIP, after.addrs)
			}
			if !after.has(testbed.ReferenceLB) {
				t.Errorf("after stop: the lb's own address %s was removed from eth0 (addresses %v)", testbed.ReferenceLB, after.addrs)
			}
			if after.forwarding != before.forwarding {
				t.Errorf("after stop: eth0 forwarding %q, want %q as before the balancer started", after.forwarding, before.forwarding)
			}
			if _, err := os.Stat(e.bal.Socket); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after stop: API socket %s: %v, want it removed", e.bal.Socket, err)
			}
		})
	}
}
