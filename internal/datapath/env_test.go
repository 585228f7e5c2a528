package datapath

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// nsThread is one OS thread parked in a private network namespace. Test
// runs resolve the ingress interface and do FIB lookups in the caller's
// namespace, so everything touching the test network runs through do().
type nsThread struct {
	fns  chan func()
	done chan struct{}
}

func newNSThread(t testing.TB) *nsThread {
	t.Helper()
	nt := &nsThread{fns: make(chan func()), done: make(chan struct{})}
	ready := make(chan error)
	go func() {
		runtime.LockOSThread()
		// The thread is never unlocked: when this goroutine ends the runtime
		// discards it, so its namespace cannot leak to other goroutines.
		ns, err := netns.New()
		if err != nil {
			ready <- fmt.Errorf("new netns: %w", err)
			return
		}
		defer ns.Close()
		ready <- nil
		for fn := range nt.fns {
			fn()
		}
		close(nt.done)
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(nt.fns); <-nt.done })
	return nt
}

func (nt *nsThread) do(fn func()) {
	finished := make(chan struct{})
	nt.fns <- func() { defer close(finished); fn() }
	<-finished
}

// testLink is one end of a veth pair inside the test namespace.
type testLink struct {
	ifindex int
	mac     net.HardwareAddr
}

// addVeth creates a veth pair (name, name+"p"), gives name the address,
// brings both up, enables forwarding on it (bpf_fib_lookup refuses to
// forward otherwise) and installs permanent neighbours.
func addVeth(t testing.TB, nt *nsThread, name string, mac net.HardwareAddr, addr netip.Prefix, neigh map[netip.Addr][6]byte) testLink {
	t.Helper()
	var out testLink
	var err error
	nt.do(func() {
		err = func() error {
			la := netlink.NewLinkAttrs()
			la.Name = name
			la.HardwareAddr = mac
			if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: name + "p"}); err != nil {
				return fmt.Errorf("add veth %s: %w", name, err)
			}
			for _, n := range []string{name, name + "p", "lo"} {
				l, err := netlink.LinkByName(n)
				if err != nil {
					return err
				}
				if err := netlink.LinkSetUp(l); err != nil {
					return err
				}
			}
			l, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			ipn := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}
			if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: ipn}); err != nil {
				return fmt.Errorf("add address %s: %w", addr, err)
			}
			for ip, hw := range neigh {
				err := netlink.NeighAdd(&netlink.Neigh{
					LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V4,
					State: netlink.NUD_PERMANENT, IP: ip.AsSlice(), HardwareAddr: hw[:],
				})
				if err != nil {
					return fmt.Errorf("add neighbour %s: %w", ip, err)
				}
			}
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+name+"/forwarding", []byte("1"), 0o644); err != nil {
				return err
			}
			out = testLink{ifindex: l.Attrs().Index, mac: l.Attrs().HardwareAddr}
			return nil
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
