package decap

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/internal/testbed"
)

// TestTunnelsReachVIP: a balancer sends a client's UDP datagram to the
// backend in IPIP and in GUE; the decapsulator on the backend's eth0 hands
// it to the socket bound on the VIP of the backend's loopback, with the
// client's address. The same from an address not allowed never arrives.
func TestTunnelsReachVIP(t *testing.T) {
	for _, mode := range []Mode{Native, Generic} {
		t.Run(mode.String(), func(t *testing.T) { testTunnels(t, mode) })
	}
}

func testTunnels(t *testing.T, mode Mode) {
	back := newHost(t)
	bal, err := back.Segment().AddHost("balancer", netip.MustParseAddr("10.91.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	notAllowed := netip.MustParseAddr("10.91.0.3")
	if err := bal.AddAddr(netip.PrefixFrom(notAllowed, 24)); err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddrPort("10.91.100.80:5000")
	client := netip.MustParseAddrPort("198.51.100.7:40000")
	err = back.Do(func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: vip.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
			return err
		}
		// The client is reached through the balancer's segment, so
		// that a strict reverse-path filter lets its packets in.
		eth0, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: bal.Addr.AsSlice()})
	})
	if err != nil {
		t.Fatal(err)
	}
	sock, err := back.ListenPacket("udp4", vip.String())
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	var dir string
	back.Do(func() error {
		done, err := Attach("eth0", []netip.Addr{bal.Addr}, testGUEPort, mode)
		if err != nil {
			t.Fatal(err)
		}
		dir = done.PinDir
		return nil
	})

	// receive returns the payload and source of the next datagram on the
	// VIP, or nil if none comes within wait.
	receive := func(wait time.Duration) ([]byte, net.Addr) {
		sock.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 2048)
		n, from, err := sock.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, nil
		} else if err != nil {
			t.Fatal(err)
		}
		return buf[:n], from
	}
	for _, tc := range []struct {
		name    string
		send    func(inner []byte) error
		arrives bool
	}{
		{"IPIP", func(inner []byte) error { return sendIPIP(bal, bal.Addr, back.Addr, inner) }, true},
		{"GUE", func(inner []byte) error {
			return sendGUE(bal, bal.Addr, netip.AddrPortFrom(back.Addr, testGUEPort), inner)
		}, true},
		{"IPIP from an address not allowed", func(inner []byte) error { return sendIPIP(bal, notAllowed, back.Addr, inner) }, false},
		{"GUE from an address not allowed", func(inner []byte) error {
			return sendGUE(bal, notAllowed, netip.AddrPortFrom(back.Addr, testGUEPort), inner)
		}, false},
	} {
		payload := []byte("through " + tc.name)
		if err := tc.send(packet{src: client, dst: vip, payload: payload}.bytes(t)); err != nil {
			t.Fatalf("%s: send: %v", tc.name, err)
		}
		wait := 5 * time.Second
		if !tc.arrives {
			wait = 300 * time.Millisecond
		}
		got, from := receive(wait)
		switch {
		case tc.arrives && (string(got) != string(payload) || from.String() != client.String()):
			t.Errorf("%s: received %q from %v; want %q from %v", tc.name, got, from, payload, client)
		case !tc.arrives && got != nil:
			t.Errorf("%s: received %q from %v; want nothing", tc.name, got, from)
		}
	}
	a, ok := attachment(t, dir)
	if c := a.Counters; !ok || c.Decapsulated != 2 || c.DroppedSource != 2 || c.DroppedMalformed != 0 || c.NotTunnel == 0 {
		t.Errorf("counters: %+v; want 2 decapsulated, 2 dropped for their source, some ARP not tunnelled", c)
	}
}

// sendIPIP sends inner from h in IPIP, from src to dst: the kernel writes
// the outer header of a raw socket of protocol 4.
func sendIPIP(h *testbed.Host, src, dst netip.Addr, inner []byte) error {
	return h.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_IPIP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()}); err != nil {
			return err
		}
		return unix.Sendto(fd, inner, 0, &unix.SockaddrInet4{Addr: dst.As4()})
	})
}

// sendGUE sends inner from h in GUE variant 1, from src: a UDP datagram
// whose payload is the inner packet.
func sendGUE(h *testbed.Host, src netip.Addr, dst netip.AddrPort, inner []byte) error {
	return h.Do(func() error {
		c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), net.UDPAddrFromAddrPort(dst))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(inner)
		return err
	})
}
