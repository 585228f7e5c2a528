package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/bgp"
	"github.com/xdplb/xdplb/internal/hostnet"
	"github.com/xdplb/xdplb/internal/metrics"
)

// announcePeriod is how often the announcements are decided again
// without a nudge: interface and XDP state are polled, not watched.
const announcePeriod = time.Second

// bgpNode is this node's BGP speaker and what it announces.
type bgpNode struct {
	speaker *bgp.Speaker
	nudge   chan struct{}
	// decisions are the last decisions, for status and metrics.
	decisions atomic.Pointer[[]prefixDecision]
	// withdrawals counts withdrawals by withdrawCause.
	mu          sync.Mutex
	withdrawals map[string]uint64
	// synced: the connections of the peers were copied once (or taken
	// over with the datapath). Later pulls, which repair lost datagrams,
	// hold nothing back.
	synced atomic.Bool
	// notForwarding: the last decision found this node not forwarding
	// (the announce loop's alone).
	notForwarding bool
}

// startBGP starts the speaker with what this node serves right now, so
// the first UPDATE carries it all. adopted says this daemon took over
// from one that handed over (SIGUSR2): the routers kept its routes as
// stale, and the speaker says it is restarting.
func (d *Daemon) startBGP(ctx context.Context, adopted bool) error {
	sc := d.cfg.BGP.Speaker()
	// Routers keep the routes of a restarting node only where the
	// datapath outlives the daemon; otherwise they would lead nowhere.
	if persist, _ := d.dp.PinsPersist(); !persist || d.cfg.State.PinPath == "" {
		sc.GracefulRestart.Enabled = false
	}
	sc.GracefulRestart.Restarting = adopted && sc.GracefulRestart.Enabled
	s, err := bgp.New(sc, d.log)
	if err != nil {
		return err
	}
	// An adopted datapath holds its predecessor's copy of the peers'
	// connections: it need not wait for a pull to announce.
	// Every reason has a series from the start, at 0.
	n := &bgpNode{speaker: s, nudge: make(chan struct{}, 1), withdrawals: map[string]uint64{
		string(causeNotServing): 0, string(causeSyncPending): 0, string(causeDrained): 0, string(causeBackends): 0,
	}}
	n.synced.Store(adopted)
	if err := n.apply(d.announceInput(n)); err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	d.bgp = n
	return nil
}

// announce decides again on every nudge (health flips, drains, reloads,
// sync readiness) and every announcePeriod.
func (d *Daemon) announce(ctx context.Context) {
	t := time.NewTicker(announcePeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.bgp.nudge:
		}
		in := d.announceInput(d.bgp)
		if d.watchNodes(ctx, in.NotServing == "") {
			in = d.announceInput(d.bgp)
		}
		if d.bgp.forwardingAgain(in) {
			d.reclaimLocal(ctx)
		}
		if err := d.bgp.apply(in); err != nil {
			d.log.Warn("bgp: announce", "err", err)
		}
	}
}

// forwardingAgain reports whether this node forwards again after it could
// not (an interface was down): a survivor may have held its local
// addresses meanwhile.
func (n *bgpNode) forwardingAgain(in announceInput) bool {
	was := n.notForwarding
	n.notForwarding = in.NotServing != ""
	return was && !n.notForwarding
}

// reclaimLocal announces this node's local addresses with gratuitous ARP,
// so that on-link backends that sent a survivor the replies while this
// node was away send them here again.
func (d *Daemon) reclaimLocal(ctx context.Context) {
	err := d.do(func() error {
		g := d.cfg.HA.GARP
		d.announcer.Start(ctx, d.addrInterface(), d.cfg.Local.Addresses, g.Repeat, g.Delay)
		return nil
	})
	if err != nil {
		d.log.Warn("bgp: announce the local addresses again", "err", err)
	}
}

// apply hands the decisions to the speaker and logs what changed.
func (n *bgpNode) apply(in announceInput) error {
	decisions := decideAnnouncements(in)
	prev := n.decisions.Swap(&decisions)
	want := map[netip.Prefix]bgp.Attrs{}
	for _, dec := range decisions {
		if dec.Announce {
			want[dec.Prefix] = bgp.Attrs{Backup: dec.Backup}
		}
	}
	n.countWithdrawals(prev, decisions)
	return n.speaker.SetPrefixes(want)
}

// countWithdrawals counts the prefixes announced before and withdrawn now,
// by the kind of reason.
func (n *bgpNode) countWithdrawals(prev *[]prefixDecision, now []prefixDecision) {
	if prev == nil {
		return
	}
	was := map[netip.Prefix]bool{}
	for _, dec := range *prev {
		was[dec.Prefix] = dec.Announce
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, dec := range now {
		if was[dec.Prefix] && !dec.Announce {
			n.withdrawals[string(dec.Cause)]++
		}
	}
}

// announceInput gathers what decides the announcements of n.
func (d *Daemon) announceInput(n *bgpNode) announceInput {
	v := d.view()
	cfg := v.cfg
	in := announceInput{MinUp: cfg.BGP.MinUpBackends, Local: cfg.Local.Addresses, TakenOver: v.takenOver}
	for _, ifname := range cfg.Interfaces {
		if why := hostnet.NotForwarding(ifname); why != "" {
			in.NotServing = why
			break
		}
	}
	if !v.ready && in.NotServing == "" {
		in.NotServing = "starting"
	}
	if d.cluster != nil && d.cluster.isReady() {
		n.synced.Store(true)
	}
	if cfg.SyncEnabled() && !n.synced.Load() {
		in.SyncPending = "waiting for the peers' connections (sync)"
	}
	rec := d.owned.snapshot()
	in.DrainAll = rec.BGPDrainAll
	in.Drained = map[netip.Addr]bool{}
	for _, a := range rec.BGPDrained {
		in.Drained[a] = true
	}
	checked := d.checkedStates()
	for _, s := range cfg.Services {
		su := serviceUp{Name: s.Name, VIP: s.VIP, All: len(s.Backends)}
		for _, b := range s.Backends {
			h, isChecked := checked[s.BackendKey(b)]
			if b.Weight > 0 && (!isChecked || h.Up) {
				su.Up++
			}
		}
		in.Services = append(in.Services, su)
	}
	return in
}

// drainBGP withdraws vip (every VIP if it is not valid) until undrained;
// the drain is recorded, so that a hand-over keeps it.
func (d *Daemon) drainBGP(vip netip.Addr, drain bool) error {
	if d.bgp == nil {
		return errNoBGP
	}
	if vip.IsValid() && !slices.Contains(vips(d.view().cfg.Services), vip) {
		return api.NotFound(fmt.Sprintf("%s is not a VIP of any service", vip))
	}
	err := d.owned.update(func(o *owned) {
		switch {
		case !vip.IsValid():
			o.BGPDrainAll = drain
			if !drain {
				o.BGPDrained = nil
			}
		case drain && !slices.Contains(o.BGPDrained, vip):
			o.BGPDrained = append(o.BGPDrained, vip)
		case !drain:
			o.BGPDrained = slices.DeleteFunc(o.BGPDrained, func(a netip.Addr) bool { return a == vip })
		}
	})
	if err != nil {
		return err
	}
	// At once, so that the answer shows the drain.
	return d.bgp.apply(d.announceInput(d.bgp))
}

// stopBGP ends the sessions: gracefully (withdrawing everything after the
// GRACEFUL_SHUTDOWN community had its time) unless the datapath is handed
// over, when the routers keep the routes for the next daemon.
func (d *Daemon) stopBGP(handOver bool) error {
	if d.bgp == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.BGP.ShutdownWait+10*time.Second)
	defer cancel()
	if handOver {
		d.log.Info("bgp: handing over; the routers keep this node's routes for the next daemon")
	} else {
		d.log.Info("bgp: withdrawing every route", "graceful_shutdown_for", d.cfg.BGP.ShutdownWait)
	}
	return d.bgp.speaker.Stop(ctx, !handOver)
}

// errNoBGP refuses a drain on a node without a bgp section.
var errNoBGP = api.Conflict("this node does not announce by BGP (no bgp section in its configuration)")

// BGP implements api.BGP.
func (d *Daemon) BGP() api.BGPStatus {
	cfg := d.view().cfg
	if d.bgp == nil {
		return api.BGPStatus{Peers: []api.BGPPeer{}, Prefixes: []api.BGPPrefix{}}
	}
	st := api.BGPStatus{Enabled: true, ASN: cfg.BGP.ASN, RouterID: cfg.BGP.RouterID.String(),
		Peers: []api.BGPPeer{}, Prefixes: []api.BGPPrefix{}}
	for _, p := range d.bgp.speaker.Status() {
		st.Peers = append(st.Peers, api.BGPPeer{Address: p.Address.String(), ASN: p.ASN, State: p.State, Up: p.Up,
			Uptime: p.Uptime, Sent: p.Sent, BFD: p.BFD, LastError: p.LastError})
	}
	if decisions := d.bgp.decisions.Load(); decisions != nil {
		for _, dec := range *decisions {
			st.Prefixes = append(st.Prefixes, api.BGPPrefix{Prefix: dec.Prefix.String(), Kind: string(dec.Kind),
				Announced: dec.Announce, Backup: dec.Backup, Why: dec.Why})
		}
	}
	return st
}

// Drain implements api.BGP.
func (d *Daemon) Drain(vip netip.Addr, drain bool) error { return d.drainBGP(vip, drain) }

// BGPMetrics implements metrics.Source.
func (d *Daemon) BGPMetrics() metrics.BGPStats {
	if d.bgp == nil {
		return metrics.BGPStats{}
	}
	st := metrics.BGPStats{On: true, PeersUp: map[string]bool{}, Withdrawals: map[string]uint64{}}
	for _, p := range d.bgp.speaker.Status() {
		st.PeersUp[p.Address.String()] = p.Up
	}
	if decisions := d.bgp.decisions.Load(); decisions != nil {
		for _, dec := range *decisions {
			st.Prefixes = append(st.Prefixes, metrics.BGPPrefix{Prefix: dec.Prefix.String(), Kind: string(dec.Kind), Announced: dec.Announce})
		}
	}
	d.bgp.mu.Lock()
	defer d.bgp.mu.Unlock()
	for kind, n := range d.bgp.withdrawals {
		st.Withdrawals[kind] = n
	}
	return st
}
