package ha

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/internal/testbed"
)

// wantFrame spells out a gratuitous ARP byte by byte, independently of
// garpFrame.
func wantFrame(mac net.HardwareAddr, addr netip.Addr) []byte {
	ip := addr.AsSlice()
	return slices.Concat(
		[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // to everyone
		mac,
		[]byte{0x08, 0x06},       // ethertype ARP
		[]byte{0x00, 0x01},       // hardware: Ethernet
		[]byte{0x08, 0x00},       // protocol: IPv4
		[]byte{6, 4},             // address lengths
		[]byte{0x00, 0x01},       // opcode: request
		mac,                      // sender MAC
		ip,                       // sender IP
		[]byte{0, 0, 0, 0, 0, 0}, // target MAC: unknown
		ip,                       // target IP: the sender's
	)
}

func TestGarpFrame(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0x00, 0x0a, 0x4e, 0x00, 0x01}
	addr := netip.MustParseAddr("10.78.0.10")
	if got, want := garpFrame(mac, addr), wantFrame(mac, addr); !bytes.Equal(got, want) {
		t.Errorf("garpFrame =\n% x\nwant\n% x", got, want)
	}
}

func TestAnnounceErrors(t *testing.T) {
	for _, tt := range []struct{ ifname, want string }{
		{"nosuch0", "gratuitous arp on nosuch0"},
		{"lo", "gratuitous arp on lo: not an Ethernet interface"},
	} {
		err := Announce(tt.ifname, []netip.Addr{vip1})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Announce(%s) = %v, want an error containing %q", tt.ifname, err, tt.want)
		}
	}
}

// TestAnnounce sends gratuitous ARPs from host a and checks on host b, on
// the same segment, the frame on the wire and that b's neighbour entry for
// the address moved to a's MAC address. b starts with a stale entry pointing
// elsewhere, like a client of the previous master: Linux updates an entry
// it has from a gratuitous ARP, but creates none without arp_accept.
func TestAnnounce(t *testing.T) {
	testbed.RequirePrivileges(t)
	seg, err := testbed.NewSegment(netip.MustParsePrefix("10.78.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := seg.Close(); err != nil {
			t.Error(err)
		}
	})
	a, err := seg.AddHost("a", netip.MustParseAddr("10.78.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := seg.AddHost("b", netip.MustParseAddr("10.78.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("10.78.0.10")
	if err := a.AddAddr(netip.PrefixFrom(vip, 32)); err != nil {
		t.Fatal(err)
	}
	oldMAC := net.HardwareAddr{0x02, 0x99, 0x00, 0x00, 0x00, 0x01}
	err = b.Do(func() error {
		return netlink.NeighAdd(&netlink.Neigh{
			LinkIndex:    b.Ifindex(),
			Family:       netlink.FAMILY_V4,
			State:        netlink.NUD_STALE,
			IP:           vip.AsSlice(),
			HardwareAddr: oldMAC,
		})
	})
	if err != nil {
		t.Fatalf("stale neighbour entry on b: %v", err)
	}
	capture := captureARP(t, b)

	err = a.Do(func() error {
		// The IPv6 address is skipped, not an error.
		return Announce(a.IfName, []netip.Addr{netip.MustParseAddr("2001:db8::10"), vip})
	})
	if err != nil {
		t.Fatal(err)
	}

	want := wantFrame(a.MAC, vip)
	if got := capture(vip); !bytes.Equal(got[:min(len(got), len(want))], want) || len(got) < len(want) {
		t.Errorf("captured on b:\n% x\nwant\n% x", got, want)
	}
	if mac := waitNeighbour(t, b, vip, a.MAC); !bytes.Equal(mac, a.MAC) {
		t.Errorf("b's neighbour entry for %s is %s, want a's %s", vip, mac, a.MAC)
	}
}

// captureARP opens a packet socket for ARP on h's interface and returns a
// function that returns the first frame whose sender IP is addr.
func captureARP(t *testing.T, h *testbed.Host) func(addr netip.Addr) []byte {
	t.Helper()
	fd := -1
	err := h.Do(func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP))); err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: h.Ifindex()}); err != nil {
			return err
		}
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if fd >= 0 {
		t.Cleanup(func() { unix.Close(fd) })
	}
	if err != nil {
		t.Fatalf("capture on %s: %v", h, err)
	}
	return func(addr netip.Addr) []byte {
		t.Helper()
		buf := make([]byte, 1500)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue // the receive timeout; try again until the deadline
			}
			// Sender IP at 28..32: 14 Ethernet + 8 ARP header + 6 MAC.
			if n >= 42 && bytes.Equal(buf[28:32], addr.AsSlice()) {
				return slices.Clone(buf[:n])
			}
		}
		t.Fatalf("no ARP from %s captured on %s", addr, h)
		return nil
	}
}

// waitNeighbour waits for h's neighbour entry for addr to carry mac and
// returns the MAC address it has in the end.
func waitNeighbour(t *testing.T, h *testbed.Host, addr netip.Addr, mac net.HardwareAddr) net.HardwareAddr {
	t.Helper()
	var got net.HardwareAddr
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		err := h.Do(func() error {
			neighs, err := netlink.NeighList(h.Ifindex(), netlink.FAMILY_V4)
			for _, n := range neighs {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == addr {
					got = n.HardwareAddr
				}
			}
			return err
		})
		if err != nil {
			t.Fatalf("neighbours of %s: %v", h, err)
		}
		if bytes.Equal(got, mac) {
			break
		}
	}
	return got
}
