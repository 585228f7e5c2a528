package hostnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Neighbours keeps the next hops of the backends resolved, so the datapath's
// FIB lookups find a MAC address for a backend before its first packet. The
// kernel does the resolving: entries are created "managed" (the kernel keeps
// re-validating them by itself) where supported, and otherwise nudged with
// NTF_USE, which makes the kernel send a probe if the entry is not valid.
type Neighbours struct {
	log     *slog.Logger
	mu      sync.Mutex
	targets map[netip.Addr]bool
	kick    chan struct{}
	// created are the entries this keeper (or a predecessor) asked the
	// kernel for, removed again by Forget.
	created map[Hop]bool
	// onCreate records entries before they are relied on, so a successor
	// knows they are xdplb's to remove.
	onCreate func([]Hop) error
	// managed are the targets whose next hop is a managed entry this
	// keeper made: the kernel keeps it resolved, so a pass for new
	// targets skips them. Used by the Run goroutine only.
	managed map[netip.Addr]bool
}

// NewNeighbours returns a keeper with no targets.
func NewNeighbours(log *slog.Logger) *Neighbours {
	return &Neighbours{log: log, targets: map[netip.Addr]bool{}, kick: make(chan struct{}, 1), created: map[Hop]bool{}, onCreate: func([]Hop) error { return nil }, managed: map[netip.Addr]bool{}}
}

// Adopt takes over the entries a predecessor created, so Forget removes
// them too, and has every entry created from now on recorded by
// onCreate.
func (n *Neighbours) Adopt(hops []Hop, onCreate func([]Hop) error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, h := range hops {
		n.created[h] = true
	}
	n.onCreate = onCreate
}

// SetTargets replaces the set of backend addresses to keep resolved.
// Only a changed set asks for a pass: an edit of something else costs
// no pass over thousands of backends.
func (n *Neighbours) SetTargets(addrs []netip.Addr) {
	targets := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		targets[a] = true
	}
	n.mu.Lock()
	changed := !maps.Equal(targets, n.targets)
	n.targets = targets
	n.mu.Unlock()
	if changed {
		n.Kick()
	}
}

// Kick asks for an immediate pass, e.g. when the datapath reports a missing
// neighbour.
func (n *Neighbours) Kick() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Run refreshes the neighbours every interval and on Kick until ctx ends.
// A kick (new targets, a missing neighbour) passes over the targets the
// kernel does not keep resolved by itself; the periodic pass checks all,
// so a changed route is noticed within interval.
func (n *Neighbours) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	full := true
	for {
		// Only the periodic passes report failures: kicks come with
		// every change and every packet to an unresolved backend.
		n.refresh(full, full)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			full = true
		case <-n.kick:
			full = false
		}
	}
}

// WaitResolved waits until every target's next hop is resolved, or ctx
// ends; it returns the addresses still unresolved.
func (n *Neighbours) WaitResolved(ctx context.Context) []netip.Addr {
	for first := true; ; first = false {
		n.refresh(first, true)
		missing := n.unresolved()
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return missing
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (n *Neighbours) snapshot() []netip.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]netip.Addr, 0, len(n.targets))
	for a := range n.targets {
		out = append(out, a)
	}
	return out
}

// refresh asks the kernel to resolve every target not resolved yet (all
// of them, or only those without a managed entry of ours); loud says
// whether to log the failures (not on every retry of a wait).
func (n *Neighbours) refresh(loud, all bool) {
	valid := validNeighbours{}
	if all {
		n.managed = map[netip.Addr]bool{} // forgets targets that went
	}
	var noRoute, unresolved failures
	var made []Hop
	for _, a := range n.snapshot() {
		if !all && n.managed[a] {
			continue
		}
		hop, err := nextHop(a)
		if err != nil {
			noRoute.add(a, err)
			continue
		}
		if valid.has(hop) {
			continue
		}
		managed, err := resolve(hop)
		if err != nil {
			unresolved.add(a, err)
			continue
		}
		n.managed[a] = managed
		n.mu.Lock()
		if !n.created[hop] {
			made = append(made, hop)
		}
		n.created[hop] = true
		n.mu.Unlock()
	}
	if len(made) > 0 {
		n.mu.Lock()
		record := n.onCreate
		n.mu.Unlock()
		if err := record(made); err != nil {
			n.log.Warn("neighbour entries not recorded; a later daemon may leave them behind", "entries", len(made), "err", err)
		}
	}
	// One line per kind and pass, however many backends: thousands of
	// unreachable backends must not flood the log.
	if loud {
		noRoute.log(n.log, "no route to backends")
		unresolved.log(n.log, "cannot resolve backends' next hops")
	}
}

// failures are the backends one pass could not serve, with the first few
// reasons as examples.
type failures struct {
	count    int
	examples []string
}

func (f *failures) add(a netip.Addr, err error) {
	if f.count++; len(f.examples) < 3 {
		f.examples = append(f.examples, fmt.Sprintf("%s: %v", a, err))
	}
}

func (f *failures) log(log *slog.Logger, msg string) {
	if f.count > 0 {
		log.Warn(msg, "backends", f.count, "examples", f.examples)
	}
}
func (n *Neighbours) unresolved() []netip.Addr {
	var out []netip.Addr
	valid := validNeighbours{}
	for _, a := range n.snapshot() {
		hop, err := nextHop(a)
		if err != nil || !valid.has(hop) {
			out = append(out, a)
		}
	}
	return out
}

// Forget removes the neighbour entries this keeper created. The kernel
// makes them again when anything else needs them.
func (n *Neighbours) Forget() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	for h := range n.created {
		err := netlink.NeighDel(&netlink.Neigh{LinkIndex: h.Ifindex, Family: familyOf(h.IP), IP: h.IP.AsSlice()})
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("remove neighbour %s: %w", h.IP, err))
		}
		delete(n.created, h)
	}
	return errors.Join(errs...)
}

// Hop is a next hop: an address on the link with that index. An IPv6
// gateway is often a link-local address, kept without its zone: the link
// says where it is.
type Hop struct {
	IP      netip.Addr `json:"ip"`
	Ifindex int        `json:"ifindex"`
}

// familyOf is the neighbour table an address is resolved in: ARP's for
// IPv4, neighbour discovery's for IPv6.
func familyOf(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// nextHop is the gateway towards addr, or addr itself when on-link.
func nextHop(addr netip.Addr) (Hop, error) {
	routes, err := netlink.RouteGet(addr.AsSlice())
	if err != nil {
		return Hop{}, err
	}
	if len(routes) == 0 {
		return Hop{}, fmt.Errorf("no route")
	}
	r := routes[0]
	h := Hop{IP: addr, Ifindex: r.LinkIndex}
	if gw, ok := netip.AddrFromSlice(r.Gw); ok && r.Gw != nil {
		h.IP = gw.Unmap()
	}
	return h, nil
}

const nudValid = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY |
	netlink.NUD_PROBE | netlink.NUD_PERMANENT | netlink.NUD_NOARP

// validNeighbours caches, per link and family, the addresses with a valid
// neighbour entry, read once per pass: a pass over thousands of backends
// must not list the neighbour table once per backend.
type validNeighbours map[linkTable]map[netip.Addr]bool

// linkTable is one link's entries in one family's neighbour table.
type linkTable struct{ ifindex, family int }

func (v validNeighbours) has(h Hop) bool {
	t := linkTable{h.Ifindex, familyOf(h.IP)}
	valid, ok := v[t]
	if !ok {
		valid = map[netip.Addr]bool{}
		neighs, _ := netlink.NeighList(t.ifindex, t.family)
		for _, ne := range neighs {
			if ip, ok := netip.AddrFromSlice(ne.IP); ok && ne.State&nudValid != 0 && len(ne.HardwareAddr) > 0 {
				valid[ip.Unmap()] = true
			}
		}
		v[t] = valid
	}
	return valid[h.IP]
}

// resolve asks the kernel to resolve the hop: first as a managed entry,
// which the kernel then keeps fresh on its own (managed is true);
// kernels without managed neighbours get a one-off NTF_USE nudge.
func resolve(h Hop) (managed bool, err error) {
	entry := &netlink.Neigh{
		LinkIndex: h.Ifindex, Family: familyOf(h.IP), IP: h.IP.AsSlice(),
		State: netlink.NUD_NONE, FlagsExt: netlink.NTF_EXT_MANAGED,
	}
	if err := netlink.NeighSet(entry); err == nil {
		return true, nil
	}
	use := &netlink.Neigh{
		LinkIndex: h.Ifindex, Family: familyOf(h.IP), IP: h.IP.AsSlice(),
		State: netlink.NUD_NONE, Flags: unix.NTF_USE,
	}
	return false, netlink.NeighSet(use)
}

// Probe asks the kernel, once, to resolve the next hop towards addr,
// without keeping or recording an entry: for the clients of connections
// adopted from a peer, whose replies find no neighbour on this host. The
// kernel ages the entry out like any other.
func Probe(addr netip.Addr) error {
	hop, err := nextHop(addr)
	if err != nil {
		return err
	}
	return netlink.NeighSet(&netlink.Neigh{
		LinkIndex: hop.Ifindex, Family: familyOf(hop.IP), IP: hop.IP.AsSlice(),
		State: netlink.NUD_NONE, Flags: unix.NTF_USE,
	})
}
