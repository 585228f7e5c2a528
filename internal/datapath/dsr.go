package datapath

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
)

// Forwarding is how a service's packets reach its backends.
type Forwarding uint32

const (
	// FullNAT rewrites client -> VIP into local address -> backend.
	FullNAT = Forwarding(xdplbFwdModeFWD_FULLNAT)
	// DSRL2 sends the packet unchanged to the backend's MAC.
	DSRL2 = Forwarding(xdplbFwdModeFWD_DSR_L2)
	// DSRIPIP sends it inside an outer IPv4 header (protocol 4).
	DSRIPIP = Forwarding(xdplbFwdModeFWD_DSR_IPIP)
	// DSRGUE sends it inside IPv4 + UDP (GUE variant 1).
	DSRGUE = Forwarding(xdplbFwdModeFWD_DSR_GUE)
)

// DSR tells the direct-server-return modes, whose connections have only
// their client's half.
func (f Forwarding) DSR() bool { return f != FullNAT }

// DSRSettings are the node's settings for direct server return.
type DSRSettings struct {
	// EncapSource is the outer source address of IPIP and GUE packets.
	EncapSource netip.Addr
	// GUEPort is the UDP port GUE packets are sent to and accepted on.
	GUEPort uint16
	// DecapSources are the balancers whose IPIP and GUE packets this node
	// decapsulates and passes to its stack instead of balancing them
	// (co-located mode). Empty: nothing is decapsulated.
	DecapSources []netip.Addr
}

// SetDSR applies the DSR settings. The allowed sources are replaced as a
// set: the ones kept are never absent in between, and decapsulation is
// turned off before the last one goes. An unset encapsulation source
// keeps the one written before: connections opened as tunnels go on
// being sent with it, where an outer source of 0.0.0.0 would be dropped
// by every backend.
func (d *Datapath) SetDSR(s DSRSettings) error {
	var src uint32
	if s.EncapSource.IsValid() {
		a, err := be32(s.EncapSource)
		if err != nil {
			return fmt.Errorf("dsr encapsulation source: %w", err)
		}
		src = a
	}
	want := map[uint32]bool{}
	for _, a := range s.DecapSources {
		k, err := be32(a)
		if err != nil {
			return fmt.Errorf("dsr decapsulation source: %w", err)
		}
		want[k] = true
	}
	if len(want) == 0 {
		if err := setGlobals(global{"decap_on", d.objs.DecapOn, uint32(0)}); err != nil {
			return err
		}
	}
	for k := range want {
		if err := d.objs.DecapSources.Update(k, uint32(0), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("write decapsulation source %s: %w", addrFromBE32(k), err)
		}
	}
	var stale []uint32
	var k, v uint32
	it := d.objs.DecapSources.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list decapsulation sources: %w", err)
	}
	for _, k := range stale {
		if err := d.objs.DecapSources.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete decapsulation source %s: %w", addrFromBE32(k), err)
		}
	}
	gs := []global{{"gue_port", d.objs.GuePort, uint32(s.GUEPort)}}
	if src != 0 {
		gs = append(gs, global{"encap_saddr", d.objs.EncapSaddr, src})
	}
	if len(want) > 0 {
		gs = append(gs, global{"decap_on", d.objs.DecapOn, uint32(1)})
	}
	return setGlobals(gs...)
}

// hostAddrs is a set of this host's addresses, safe for concurrent use.
type hostAddrs struct {
	mu  sync.Mutex
	set map[netip.Addr]bool
}

func (h *hostAddrs) has(a netip.Addr) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.set[a.Unmap()]
}

// SetHostAddrs says which addresses are this host's. A DSR service's
// backend at one of them (co-located mode: every server balances and
// serves) gets its packets through the host's own stack, unchanged. The
// backends already written are marked again.
func (d *Datapath) SetHostAddrs(addrs []netip.Addr) error {
	set := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		set[a.Unmap()] = true
	}
	d.hostAddrs.mu.Lock()
	d.hostAddrs.set = set
	d.hostAddrs.mu.Unlock()

	all, err := readArray[xdplbBackend](d.objs.Backends, MaxBackends)
	if err != nil {
		return err
	}
	marked := map[uint32]xdplbBackend{}
	for id, be := range all {
		if be.Flags&xdplbBackendFlagsBACKEND_ASSIGNED == 0 {
			continue
		}
		local := set[addrFromBE32(be.Addr)]
		if local != (be.Flags&xdplbBackendFlagsBACKEND_LOCAL != 0) {
			be.Flags ^= xdplbBackendFlagsBACKEND_LOCAL
			marked[uint32(id)] = be
		}
	}
	for id, be := range marked {
		if err := d.objs.Backends.Update(id, be, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("mark backend %d (%s): %w", id, addrFromBE32(be.Addr), err)
		}
	}
	return nil
}
