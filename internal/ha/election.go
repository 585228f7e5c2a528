// The election follows VRRP (RFC 5798) as keepalived implements it, with one
// addition, readiness, because a master here owns connection state and not
// just addresses:
//
//   - Master down. A peer's master-down interval is 3 × its advert interval
//     plus a skew of (256 − own priority) × that interval / 256, so that of
//     several backups the one with the highest priority notices a dead master
//     first. Until a master is heard, our own advert interval stands in.
//   - Start. A node starts as backup (only a priority of 255, which is not
//     allowed here, starts as master) and waits one master-down interval for
//     a master. A backup that hears no master advert for master-down becomes
//     master.
//   - Readiness. A node is ready once its bulk sync from the master finished
//     (or timed out). A node that is not ready advertises, but its priority
//     counts as 0 in every comparison, its own and its peers'. It never takes
//     over from a live master; on master down it leaves the role to a ready
//     peer, and becomes master only when no ready peer is alive, because a
//     lone node must serve. A master is ready by definition (the connections
//     it serves are its own), so becoming master marks the node ready.
//   - Preemption. A ready backup with Preempt that hears a master of lower
//     priority becomes master after PreemptDelay; a master of equal or higher
//     priority appearing, or losing readiness, cancels that. So a recovered
//     higher-priority node takes over only after it has the connections.
//     Without Preempt a backup never takes over from a live master.
//   - Two masters. A master that hears a master of higher priority (on a tie,
//     the higher NodeID) steps down at once. One that hears a peer turn
//     master with lower priority stays, and announces its addresses again
//     (Reannounce), since neighbours may have followed the other. It does
//     the same when a peer appears or reappears after being forgotten: that
//     peer may have been master while apart, and may have stepped down before
//     this node heard it as master. (A lower peer that was master already
//     needs nothing: this node took over from it and announced then.)
//   - Peers. A peer not heard for its master-down interval is forgotten.

package ha

import (
	"fmt"
	"time"
)

// Advert is what a node tells its peers every advert interval.
type Advert struct {
	NodeID         uint8
	Priority       uint8 // configured; receivers count it as 0 unless Ready
	Role           Role
	Ready          bool
	AdvertInterval time.Duration
}

// Change is one role change.
type Change struct {
	From, To Role
	Reason   string // for people: why the role changed
	At       time.Time
}

// Election is one node's view of the election. It is not safe for
// concurrent use; the daemon drives it from one goroutine.
type Election struct {
	cfg    Config
	role   Role
	reason string
	since  time.Time
	ready  bool
	now    time.Time // of the latest call; every timer up to it has fired

	// downAt is when a backup becomes master unless a master advert
	// arrives first; downWhy says what happened by then.
	downAt  time.Time
	downWhy string
	// preemptAt is when a backup takes over from a live lower master; zero
	// unless a preemption is pending.
	preemptAt time.Time

	peers      map[uint8]*peer
	changes    []Change
	reannounce bool
}

// peer is the latest advert of one peer.
type peer struct {
	Advert
	heard   time.Time
	expires time.Time // forgotten from here on
}

// NewElection returns a node that has just started: a backup waiting one
// master-down interval for a master, not ready. Its first Change, from
// RoleInit to RoleBackup, is already pending.
func NewElection(cfg Config, now time.Time) *Election {
	e := &Election{cfg: cfg, role: RoleInit, now: now, peers: map[uint8]*peer{}}
	down := e.masterDown(cfg.AdvertInterval)
	e.downAt = now.Add(down)
	e.downWhy = fmt.Sprintf("no master heard for %s", down)
	e.setRole(now, RoleBackup, fmt.Sprintf("starting: waiting %s for a master", down))
	return e
}

// Resume makes a node that has just started master at once: the daemon
// before it (a restart, an upgrade) was master and left the addresses in
// place, so waiting for master-down would take them away from a working
// master. The usual rules apply from here: a higher master heard steps it
// down.
func (e *Election) Resume(now time.Time) {
	e.becomeMaster(now, "resuming: the daemon before this one was master")
}

// Heard takes an advert from a peer. An advert carrying this node's own
// NodeID is ignored: it is our own, looped back.
func (e *Election) Heard(now time.Time, a Advert) {
	if a.NodeID == e.cfg.NodeID {
		return
	}
	e.forget(now) // a peer silent for master-down is new when it speaks again
	p, known := e.peers[a.NodeID]
	if !known {
		p = &peer{}
		e.peers[a.NodeID] = p
	}
	wasMaster := known && p.Role == RoleMaster
	p.Advert, p.heard, p.expires = a, now, now.Add(e.masterDown(a.AdvertInterval))

	switch {
	case e.role == RoleMaster && a.Role == RoleMaster && e.outrankedBy(p):
		e.becomeBackup(now, p, fmt.Sprintf("preempted by node %d (%s)", p.NodeID, e.versus(p)))
	case e.role == RoleMaster && (!known || (a.Role == RoleMaster && !wasMaster)):
		e.reannounce = true
	case e.role == RoleBackup && a.Role == RoleMaster:
		e.waitForMaster(now, p)
	}
	e.evaluate(now)
}

// SetReady records whether this node has the connections it needs to serve:
// its bulk sync completed, or the time allowed for it passed.
func (e *Election) SetReady(now time.Time, ready bool) {
	e.ready = ready
	e.evaluate(now)
}

// Tick fires the timers due by now.
func (e *Election) Tick(now time.Time) {
	e.evaluate(now)
}

// Next returns when Tick must run next at the latest. With no timer pending
// it returns one advert interval after the latest call, so the result can
// always serve as a deadline.
func (e *Election) Next() time.Time {
	next := e.now.Add(e.cfg.AdvertInterval)
	consider := func(t time.Time) {
		if t.After(e.now) && t.Before(next) {
			next = t
		}
	}
	if e.role == RoleBackup {
		consider(e.downAt)
		consider(e.preemptAt)
	}
	for _, p := range e.peers {
		consider(p.expires)
	}
	return next
}

// Role returns this node's current role.
func (e *Election) Role() Role { return e.role }

// Changes returns the role changes since the previous call, oldest first;
// each change is returned exactly once.
func (e *Election) Changes() []Change {
	c := e.changes
	e.changes = nil
	return c
}

// Reannounce reports, once, that this master should announce its addresses
// again because another node may have claimed them.
func (e *Election) Reannounce() bool {
	r := e.reannounce
	e.reannounce = false
	return r
}

// Advert returns what this node advertises now.
func (e *Election) Advert() Advert {
	return Advert{
		NodeID:         e.cfg.NodeID,
		Priority:       e.cfg.Priority,
		Role:           e.role,
		Ready:          e.ready,
		AdvertInterval: e.cfg.AdvertInterval,
	}
}

// evaluate forgets silent peers and lets a backup take over when a timer
// allows it. Every entry point ends here.
func (e *Election) evaluate(now time.Time) {
	e.now = now
	e.forget(now)
	if e.role != RoleBackup {
		return
	}
	if m := e.bestMaster(); m != nil {
		e.considerPreempt(now, m)
		return
	}
	e.preemptAt = time.Time{}
	switch {
	case now.Before(e.downAt):
	case e.ready:
		e.becomeMaster(now, "master down: "+e.downWhy)
	case !e.readyPeerAlive():
		e.becomeMaster(now, "master down: "+e.downWhy+"; not ready, but no ready peer is alive")
	}
}

// forget drops the peers not heard for their master-down interval.
func (e *Election) forget(now time.Time) {
	for id, p := range e.peers {
		if !now.Before(p.expires) {
			delete(e.peers, id)
		}
	}
}

// considerPreempt starts, cancels or completes a backup's preemption of the
// live master m.
func (e *Election) considerPreempt(now time.Time, m *peer) {
	theirs := effective(m.Priority, m.Ready)
	if !e.cfg.Preempt || !e.ready || theirs >= e.cfg.Priority {
		e.preemptAt = time.Time{}
		return
	}
	if e.preemptAt.IsZero() {
		e.preemptAt = now.Add(e.cfg.PreemptDelay)
	}
	if now.Before(e.preemptAt) {
		return
	}
	e.becomeMaster(now, fmt.Sprintf("peer node %d has lower priority %s < %d, preempt after %s",
		m.NodeID, priority(m.Priority, m.Ready), e.cfg.Priority, e.cfg.PreemptDelay))
}

// waitForMaster restarts a backup's master-down timer on an advert from the
// master p.
func (e *Election) waitForMaster(now time.Time, p *peer) {
	down := e.masterDown(p.AdvertInterval)
	e.downAt = now.Add(down)
	e.downWhy = fmt.Sprintf("no advert from node %d for %s", p.NodeID, down)
}

func (e *Election) becomeMaster(now time.Time, reason string) {
	e.ready = true
	e.preemptAt = time.Time{}
	e.setRole(now, RoleMaster, reason)
}

func (e *Election) becomeBackup(now time.Time, master *peer, reason string) {
	e.reannounce = false
	e.setRole(now, RoleBackup, reason)
	e.waitForMaster(now, master)
}

func (e *Election) setRole(now time.Time, to Role, reason string) {
	e.changes = append(e.changes, Change{From: e.role, To: to, Reason: reason, At: now})
	e.role, e.reason, e.since = to, reason, now
}

// bestMaster returns the live master that wins among the peers, nil if none.
func (e *Election) bestMaster() *peer {
	var best *peer
	for _, p := range e.peers {
		if p.Role == RoleMaster && (best == nil || outranks(p.Advert, best.Advert)) {
			best = p
		}
	}
	return best
}

// readyPeerAlive reports whether a live, ready backup can take over instead
// of this node.
func (e *Election) readyPeerAlive() bool {
	for _, p := range e.peers {
		if p.Ready && p.Role == RoleBackup {
			return true
		}
	}
	return false
}

// outrankedBy reports whether the master p wins against this node as master.
func (e *Election) outrankedBy(p *peer) bool {
	return outranks(p.Advert, e.Advert())
}

// versus explains outrankedBy's verdict for a reason string.
func (e *Election) versus(p *peer) string {
	theirs, mine := effective(p.Priority, p.Ready), effective(e.cfg.Priority, e.ready)
	if theirs == mine {
		return fmt.Sprintf("priority %s = %s, higher node id", priority(p.Priority, p.Ready), priority(e.cfg.Priority, e.ready))
	}
	return fmt.Sprintf("priority %s > %s", priority(p.Priority, p.Ready), priority(e.cfg.Priority, e.ready))
}

// masterDown returns how long a backup waits for a master advertising every
// interval before it declares the master dead. A peer that advertises no
// interval gets ours rather than a master-down of nothing.
func (e *Election) masterDown(interval time.Duration) time.Duration {
	if interval <= 0 {
		interval = e.cfg.AdvertInterval
	}
	skew := time.Duration(256-int(e.cfg.Priority)) * interval / 256
	return 3*interval + skew
}

// outranks reports whether a wins against b when both are master: higher
// effective priority, on a tie the higher node id.
func outranks(a, b Advert) bool {
	pa, pb := effective(a.Priority, a.Ready), effective(b.Priority, b.Ready)
	return pa > pb || pa == pb && a.NodeID > b.NodeID
}

// effective is the priority a node counts with: 0 until it is ready.
func effective(prio uint8, ready bool) uint8 {
	if !ready {
		return 0
	}
	return prio
}

// priority formats an effective priority for reasons, saying when it is 0
// for want of readiness.
func priority(prio uint8, ready bool) string {
	if !ready {
		return "0 (not ready)"
	}
	return fmt.Sprint(prio)
}
