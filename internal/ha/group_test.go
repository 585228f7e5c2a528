package ha

import (
	"maps"
	"slices"
	"testing"
	"time"
)

// group simulates nodes driven the way the daemon drives them: each node
// advertises every advert interval and at once after a role change, Ticks
// only when its Next comes due, and its adverts reach every running peer it
// is not cut off from without delay.
type group struct {
	t     *testing.T
	now   time.Time
	nodes map[uint8]*simNode
	cut   bool // the nodes cannot hear each other
}

type simNode struct {
	cfg         Config
	e           *Election
	up          bool
	nextAdvert  time.Time
	changes     []Change // since start, the initial one left out
	reannounced int
}

// newGroup starts every node at t0.
func newGroup(t *testing.T, cfgs ...Config) *group {
	g := &group{t: t, now: t0, nodes: map[uint8]*simNode{}}
	for _, c := range cfgs {
		g.nodes[c.NodeID] = &simNode{cfg: c}
		g.start(c.NodeID)
	}
	return g
}

// start (re)starts a node: a new process with a new Election.
func (g *group) start(id uint8) {
	n := g.nodes[id]
	n.e, n.up, n.nextAdvert, n.changes = NewElection(n.cfg, g.now), true, g.now, nil
	n.e.Changes()
}

func (g *group) stop(id uint8) { g.nodes[id].up = false }

func (g *group) setReady(id uint8) {
	n := g.nodes[id]
	n.e.SetReady(g.now, true)
	g.collect(n)
}

// order is the node ids in a fixed order, so a run is reproducible.
func (g *group) order() []uint8 {
	var ids []uint8
	for _, id := range slices.Sorted(maps.Keys(g.nodes)) {
		if g.nodes[id].up {
			ids = append(ids, id)
		}
	}
	return ids
}

// run advances the clock by d, event by event.
func (g *group) run(d time.Duration) {
	end := g.now.Add(d)
	for steps := 0; ; steps++ {
		if steps > 100000 {
			g.t.Fatal("simulation does not progress")
		}
		next := end
		for _, id := range g.order() {
			n := g.nodes[id]
			next = earliest(next, n.nextAdvert, n.e.Next())
		}
		g.now = next
		for _, id := range g.order() {
			if n := g.nodes[id]; !g.now.Before(n.e.Next()) {
				n.e.Tick(g.now)
				g.collect(n)
			}
		}
		for _, id := range g.order() {
			if n := g.nodes[id]; !g.now.Before(n.nextAdvert) {
				g.advertise(n)
			}
		}
		if !next.Before(end) {
			return
		}
	}
}

func (g *group) advertise(from *simNode) {
	from.nextAdvert = g.now.Add(from.cfg.AdvertInterval)
	if g.cut {
		return
	}
	a := from.e.Advert()
	for _, id := range g.order() {
		if n := g.nodes[id]; n != from {
			n.e.Heard(g.now, a)
			g.collect(n)
		}
	}
}

// collect does what the daemon does after each call: apply the changes and
// advertise a new role at once, and count reannouncements.
func (g *group) collect(n *simNode) {
	if c := n.e.Changes(); len(c) > 0 {
		n.changes = append(n.changes, c...)
		n.nextAdvert = g.now
	}
	if n.e.Reannounce() {
		n.reannounced++
	}
}

// want checks each node's role and the time and reason of its latest change.
func (g *group) want(id uint8, role Role, at time.Duration, reason string) {
	g.t.Helper()
	n := g.nodes[id]
	if n.e.Role() != role {
		g.t.Errorf("at %s node %d is %s, want %s (changes %+v)", g.now.Sub(t0), id, n.e.Role(), role, n.changes)
		return
	}
	if len(n.changes) == 0 {
		if reason != "" {
			g.t.Errorf("node %d never changed role, want a change at %s: %q", id, at, reason)
		}
		return
	}
	last := n.changes[len(n.changes)-1]
	if last.At.Sub(t0) != at || last.Reason != reason {
		g.t.Errorf("node %d's latest change at %s: %q, want at %s: %q", id, last.At.Sub(t0), last.Reason, at, reason)
	}
}

func earliest(t time.Time, ts ...time.Time) time.Time {
	for _, u := range ts {
		if u.Before(t) {
			t = u
		}
	}
	return t
}

// pair is the usual HA pair with a 1s advert interval: node 1 at priority
// 200 (master-down 3.21875s) and node 2 at 100 (master-down 3.609375s).
func pair() (Config, Config) {
	return Config{NodeID: 1, Priority: 200, AdvertInterval: time.Second, Preempt: true, PreemptDelay: 2 * time.Second},
		Config{NodeID: 2, Priority: 100, AdvertInterval: time.Second, Preempt: true, PreemptDelay: 2 * time.Second}
}

func TestGroupStartTogether(t *testing.T) {
	for _, tt := range []struct {
		name   string
		ready  bool
		reason string
	}{
		{"ready", true, "master down: no master heard for 3.21875s"},
		// A cold start of both: nobody to sync from, so the higher one
		// serves rather than both waiting for their sync to time out.
		{"not ready", false, "master down: no master heard for 3.21875s; not ready, but no ready peer is alive"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := newGroup(t, pair1(), pair2())
			if tt.ready {
				g.setReady(1)
				g.setReady(2)
			}
			g.run(10 * time.Second)
			g.want(1, RoleMaster, 3218750*time.Microsecond, tt.reason)
			g.want(2, RoleBackup, 0, "")
		})
	}
}

func TestGroupEqualPriorityTieByNodeID(t *testing.T) {
	a, b := pair()
	a.Priority, b.Priority = 150, 150
	g := newGroup(t, a, b)
	g.setReady(1)
	g.setReady(2)
	g.run(10 * time.Second)
	// Same priority, same master-down: both take over at once, then hear
	// each other, and node 2 keeps the role.
	g.want(1, RoleBackup, 3414062500*time.Nanosecond, "preempted by node 2 (priority 150 = 150, higher node id)")
	g.want(2, RoleMaster, 3414062500*time.Nanosecond, "master down: no master heard for 3.4140625s")
	if g.nodes[2].reannounced != 1 {
		t.Errorf("node 2 reannounced %d times, want 1", g.nodes[2].reannounced)
	}
}

// TestGroupFailoverAndRecovery is the life of a pair: the master dies, the
// backup takes over, the old master comes back and takes over again only
// once its bulk sync completed and the preempt delay passed.
func TestGroupFailoverAndRecovery(t *testing.T) {
	g := newGroup(t, pair1(), pair2())
	g.setReady(1)
	g.setReady(2)
	g.run(5 * time.Second)
	g.want(1, RoleMaster, 3218750*time.Microsecond, "master down: no master heard for 3.21875s")

	// Node 1's last advert was at 4.21875s; node 2 waits 3.609375s.
	g.stop(1)
	g.run(5 * time.Second)
	g.want(2, RoleMaster, 7828125*time.Microsecond, "master down: no advert from node 1 for 3.609375s")

	g.start(1)
	g.run(10 * time.Second)
	g.want(1, RoleBackup, 0, "")
	if w := g.nodes[1].e.Status().Waiting; w != "not ready: waiting for bulk sync" {
		t.Errorf("recovered node 1 waiting for %q", w)
	}

	g.setReady(1) // at 20s
	g.run(1999 * time.Millisecond)
	g.want(1, RoleBackup, 0, "")
	g.run(time.Millisecond)
	g.want(1, RoleMaster, 22*time.Second, "peer node 2 has lower priority 100 < 200, preempt after 2s")
	g.want(2, RoleBackup, 22*time.Second, "preempted by node 1 (priority 200 > 100)")
}

func TestGroupNoPreempt(t *testing.T) {
	a, b := pair()
	a.Preempt = false
	g := newGroup(t, a, b)
	g.setReady(2)
	g.run(5 * time.Second)
	// Node 1 is not ready and leaves master-down to the ready node 2.
	g.want(2, RoleMaster, 3609375*time.Microsecond, "master down: no master heard for 3.609375s")
	g.setReady(1)
	g.run(time.Minute)
	g.want(1, RoleBackup, 0, "")
	g.want(2, RoleMaster, 3609375*time.Microsecond, "master down: no master heard for 3.609375s")
	if w := g.nodes[1].e.Status().Waiting; w != "nopreempt: node 2 stays master" {
		t.Errorf("node 1 waiting for %q", w)
	}
}

func TestGroupSplitBrain(t *testing.T) {
	for _, tt := range []struct {
		name  string
		apart time.Duration
	}{
		// Node 1 advertises at 3.21875s + k, node 2, master from
		// 7.828125s, at 7.828125s + k.
		{"the lower master is heard first", 4500 * time.Millisecond},
		// Node 2 steps down before node 1 hears it as master; node 1
		// reannounces because node 2 reappears after being forgotten.
		{"the higher master is heard first", 5 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := newGroup(t, pair1(), pair2())
			g.setReady(1)
			g.setReady(2)
			g.run(5 * time.Second)

			g.cut = true
			g.run(tt.apart)
			g.want(1, RoleMaster, 3218750*time.Microsecond, "master down: no master heard for 3.21875s")
			g.want(2, RoleMaster, 7828125*time.Microsecond, "master down: no advert from node 1 for 3.609375s")

			g.cut = false
			g.run(2 * time.Second)
			g.want(1, RoleMaster, 3218750*time.Microsecond, "master down: no master heard for 3.21875s")
			g.want(2, RoleBackup, 10218750*time.Microsecond, "preempted by node 1 (priority 200 > 100)")
			if g.nodes[1].reannounced != 1 {
				t.Errorf("node 1 reannounced %d times, want 1", g.nodes[1].reannounced)
			}
		})
	}
}

func pair1() Config { a, _ := pair(); return a }
func pair2() Config { _, b := pair(); return b }
