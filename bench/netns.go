package bench

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// nsThread is one OS thread parked in a private network namespace, pinned
// to one CPU. Test runs resolve the ingress interface and do FIB lookups
// in the calling thread's namespace, so everything touching the private
// network runs through do(). When close ends the goroutine, the runtime
// throws the thread away (it is never unlocked), and the namespace with
// every interface in it goes with it.
type nsThread struct {
	fns  chan func()
	done chan struct{}
}

// newNSThread starts the thread; cpu < 0 leaves it unpinned.
func newNSThread(cpu int) (*nsThread, error) {
	nt := &nsThread{fns: make(chan func()), done: make(chan struct{})}
	ready := make(chan error, 1)
	var work func()
	work = func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread cannot be thrown away: hop to another one
			// (nothing was switched yet, so unlocking here is safe).
			hop := make(chan struct{})
			go func() { defer close(hop); work() }()
			<-hop
			runtime.UnlockOSThread()
			return
		}
		defer close(nt.done)
		ns, err := netns.New()
		if err != nil {
			ready <- fmt.Errorf("new network namespace: %w", err)
			return
		}
		defer ns.Close()
		if cpu >= 0 {
			var set unix.CPUSet
			set.Set(cpu)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				ready <- fmt.Errorf("pin to CPU %d: %w", cpu, err)
				return
			}
		}
		ready <- nil
		for fn := range nt.fns {
			fn()
		}
	}
	go work()
	if err := <-ready; err != nil {
		<-nt.done
		return nil, err
	}
	return nt, nil
}

func (nt *nsThread) do(fn func()) {
	finished := make(chan struct{})
	nt.fns <- func() { defer close(finished); fn() }
	<-finished
}

func (nt *nsThread) close() {
	close(nt.fns)
	<-nt.done
}

// vethLink is the balancer's end of a veth pair in the private namespace.
type vethLink struct {
	ifindex     int
	peerIfindex int
}

// addVeth creates the veth pair (name, name+"p") in the calling thread's
// namespace, gives name the address and MAC, enables forwarding on it
// (bpf_fib_lookup refuses to forward otherwise), installs permanent
// neighbours and attaches pass to the peer in native mode: frames sent
// with XDP_TX out of name only arrive when the peer runs XDP.
func addVeth(name string, mac net.HardwareAddr, addr netip.Prefix, neigh map[netip.Addr]net.HardwareAddr, pass *ebpf.Program) (vethLink, error) {
	la := netlink.NewLinkAttrs()
	la.Name = name
	la.HardwareAddr = mac
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: name + "p"}); err != nil {
		return vethLink{}, fmt.Errorf("add veth %s: %w", name, err)
	}
	for _, n := range []string{name, name + "p", "lo"} {
		l, err := netlink.LinkByName(n)
		if err != nil {
			return vethLink{}, err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return vethLink{}, fmt.Errorf("set %s up: %w", n, err)
		}
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return vethLink{}, err
	}
	peer, err := netlink.LinkByName(name + "p")
	if err != nil {
		return vethLink{}, err
	}
	ipn := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: ipn}); err != nil {
		return vethLink{}, fmt.Errorf("add address %s: %w", addr, err)
	}
	for ip, hw := range neigh {
		err := netlink.NeighAdd(&netlink.Neigh{
			LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V4,
			State: netlink.NUD_PERMANENT, IP: ip.AsSlice(), HardwareAddr: hw,
		})
		if err != nil {
			return vethLink{}, fmt.Errorf("add neighbour %s: %w", ip, err)
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+name+"/forwarding", []byte("1"), 0o644); err != nil {
		return vethLink{}, err
	}
	if pass != nil {
		flags := nl.XDP_FLAGS_DRV_MODE | nl.XDP_FLAGS_UPDATE_IF_NOEXIST
		if err := netlink.LinkSetXdpFdWithFlags(peer, pass.FD(), flags); err != nil {
			return vethLink{}, fmt.Errorf("attach XDP_PASS to %s: %w", name+"p", err)
		}
	}
	return vethLink{ifindex: l.Attrs().Index, peerIfindex: peer.Attrs().Index}, nil
}
