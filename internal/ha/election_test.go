package ha

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// t0 is when every test's clock starts.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// iv is the advert interval of the rule tests. It makes master-down easy to
// read off: 768ms + (256 − own priority)ms, 874ms at the default 150.
const iv = 256 * time.Millisecond

// node1 is the node under test unless a case says otherwise.
func node1() Config {
	return Config{NodeID: 1, Priority: 150, AdvertInterval: iv, Preempt: true}
}

func master(id, prio uint8) Advert {
	return Advert{NodeID: id, Priority: prio, Role: RoleMaster, Ready: true, AdvertInterval: iv}
}

func backup(id, prio uint8) Advert {
	return Advert{NodeID: id, Priority: prio, Role: RoleBackup, Ready: true, AdvertInterval: iv}
}

func notReady(a Advert) Advert {
	a.Ready = false
	return a
}

func withInterval(a Advert, d time.Duration) Advert {
	a.AdvertInterval = d
	return a
}

// event is something that happens to the node under test at a time after t0.
type event struct {
	at    time.Duration
	apply func(e *Election, now time.Time)
}

func hear(at time.Duration, a Advert) event {
	return event{at, func(e *Election, now time.Time) { e.Heard(now, a) }}
}

func ready(at time.Duration, r bool) event {
	return event{at, func(e *Election, now time.Time) { e.SetReady(now, r) }}
}

// every has a peer advertise a from from to to, every a.AdvertInterval.
func every(from, to time.Duration, a Advert) []event {
	var evs []event
	for at := from; at <= to; at += a.AdvertInterval {
		evs = append(evs, hear(at, a))
	}
	return evs
}

func events(lists ...[]event) []event { return slices.Concat(lists...) }

// change is a Change relative to t0, comparable in tests.
type change struct {
	at     time.Duration
	to     Role
	reason string
}

func (c change) String() string { return fmt.Sprintf("%s→%s %q", c.at, c.to, c.reason) }

// replay runs events against a new Election the way the daemon drives it:
// Tick whenever Next comes due (a timer fires before an event at the same
// instant), and the changes and reannouncements collected after each call.
// The initial change to backup is checked and left out.
func replay(t *testing.T, cfg Config, evs []event, until time.Duration) (*Election, []change, []time.Duration) {
	t.Helper()
	e := NewElection(cfg, t0)
	if got := e.Changes(); len(got) != 1 || got[0].From != RoleInit || got[0].To != RoleBackup || !got[0].At.Equal(t0) {
		t.Fatalf("initial changes = %+v, want one init→backup at start", got)
	}
	var changes []change
	var reannounced []time.Duration
	collect := func(now time.Time) {
		for _, c := range e.Changes() {
			changes = append(changes, change{c.At.Sub(t0), c.To, c.Reason})
		}
		if e.Reannounce() {
			reannounced = append(reannounced, now.Sub(t0))
		}
	}
	tickUntil := func(end time.Time) {
		for next := e.Next(); !next.After(end); next = e.Next() {
			e.Tick(next)
			collect(next)
		}
	}
	slices.SortStableFunc(evs, func(a, b event) int { return cmp.Compare(a.at, b.at) })
	for _, ev := range evs {
		now := t0.Add(ev.at)
		tickUntil(now)
		ev.apply(e, now)
		collect(now)
	}
	tickUntil(t0.Add(until))
	return e, changes, reannounced
}

func TestElectionRules(t *testing.T) {
	nopreempt := node1()
	nopreempt.Preempt = false
	slow := node1() // a 1s advert interval, for master-down in familiar units
	slow.Priority, slow.AdvertInterval = 128, time.Second
	slowHigh := slow
	slowHigh.Priority, slowHigh.Preempt = 254, false // and does not preempt the 200
	high := node1()
	high.Priority, high.PreemptDelay = 200, time.Second
	delayed := node1()
	delayed.PreemptDelay = time.Second
	low := node1()
	low.Priority = 50
	node3 := node1()
	node3.NodeID = 3

	tests := []struct {
		name        string
		cfg         Config
		events      []event
		until       time.Duration
		want        []change
		reannounced []time.Duration
	}{{
		name:   "lone ready node becomes master after master-down",
		cfg:    node1(),
		events: []event{ready(0, true)},
		until:  2 * time.Second,
		want:   []change{{874 * time.Millisecond, RoleMaster, "master down: no master heard for 874ms"}},
	}, {
		name:  "lone node that is not ready becomes master after master-down",
		cfg:   node1(),
		until: 2 * time.Second,
		want:  []change{{874 * time.Millisecond, RoleMaster, "master down: no master heard for 874ms; not ready, but no ready peer is alive"}},
	}, {
		name:   "backup stays backup while a higher master advertises",
		cfg:    node1(),
		events: events([]event{ready(0, true)}, every(0, 3*time.Second, master(2, 200))),
		until:  3 * time.Second,
	}, {
		name:   "master dies: backup takes over after 3 intervals and a skew of (256-128)/256",
		cfg:    slow,
		events: events([]event{ready(0, true)}, every(0, 5*time.Second, withInterval(master(2, 200), time.Second))),
		until:  10 * time.Second,
		want:   []change{{8500 * time.Millisecond, RoleMaster, "master down: no advert from node 2 for 3.5s"}},
	}, {
		name:   "master dies: a higher backup has a shorter skew",
		cfg:    slowHigh,
		events: events([]event{ready(0, true)}, every(0, 5*time.Second, withInterval(master(2, 200), time.Second))),
		until:  10 * time.Second,
		want:   []change{{8*time.Second + 7812500*time.Nanosecond, RoleMaster, "master down: no advert from node 2 for 3.0078125s"}},
	}, {
		name:   "master's advert interval sets master-down",
		cfg:    node1(),
		events: events([]event{ready(0, true)}, every(0, 5*time.Second, withInterval(master(2, 200), time.Second))),
		until:  10 * time.Second,
		// 3 × 1s + (256−150)/256 × 1s after the advert at 5s.
		want: []change{{8*time.Second + 414062500*time.Nanosecond, RoleMaster, "master down: no advert from node 2 for 3.4140625s"}},
	}, {
		name:   "not ready: never takes over from a live master, even a lower one",
		cfg:    high,
		events: every(0, 3*time.Second, master(2, 100)),
		until:  3 * time.Second,
	}, {
		name:   "recovered higher priority waits for ready, then the preempt delay",
		cfg:    high,
		events: events(every(0, 5*time.Second, master(2, 100)), []event{ready(2*time.Second, true)}),
		until:  5 * time.Second,
		want:   []change{{3 * time.Second, RoleMaster, "peer node 2 has lower priority 100 < 200, preempt after 1s"}},
	}, {
		name:   "preempt delay 0 takes over on the first lower advert",
		cfg:    node1(),
		events: []event{ready(0, true), hear(100*time.Millisecond, master(2, 100))},
		until:  time.Second,
		want:   []change{{100 * time.Millisecond, RoleMaster, "peer node 2 has lower priority 100 < 150, preempt after 0s"}},
	}, {
		name:   "nopreempt: never takes over from a live lower master, only when it dies",
		cfg:    nopreempt,
		events: events([]event{ready(0, true)}, every(0, 3*time.Second, master(2, 100))),
		until:  5 * time.Second,
		// The last advert is at 2.816s (11 × 256ms).
		want: []change{{3690 * time.Millisecond, RoleMaster, "master down: no advert from node 2 for 874ms"}},
	}, {
		name:   "a higher master cancels a pending preemption",
		cfg:    delayed,
		events: events([]event{ready(0, true)}, every(0, 3*time.Second, master(2, 100)), every(500*time.Millisecond, 3*time.Second, master(3, 200))),
		until:  3 * time.Second,
	}, {
		name:   "losing readiness cancels a pending preemption",
		cfg:    delayed,
		events: events([]event{ready(0, true), ready(500*time.Millisecond, false)}, every(0, 3*time.Second, master(2, 100))),
		until:  3 * time.Second,
	}, {
		name:   "a master that is not ready counts as priority 0",
		cfg:    low,
		events: []event{ready(0, true), hear(100*time.Millisecond, notReady(master(2, 200)))},
		until:  time.Second,
		want:   []change{{100 * time.Millisecond, RoleMaster, "peer node 2 has lower priority 0 (not ready) < 50, preempt after 0s"}},
	}, {
		name:   "equal priority never preempts",
		cfg:    node1(),
		events: events([]event{ready(0, true)}, every(0, 3*time.Second, master(2, 150))),
		until:  3 * time.Second,
	}, {
		name:   "master steps down at once to a higher master",
		cfg:    node1(),
		events: []event{ready(0, true), hear(time.Second, master(2, 200))},
		until:  1500 * time.Millisecond,
		want: []change{
			{874 * time.Millisecond, RoleMaster, "master down: no master heard for 874ms"},
			{time.Second, RoleBackup, "preempted by node 2 (priority 200 > 150)"},
		},
	}, {
		name:   "masters of equal priority: the higher node id wins",
		cfg:    node1(),
		events: []event{ready(0, true), hear(time.Second, master(2, 150))},
		until:  1500 * time.Millisecond,
		want: []change{
			{874 * time.Millisecond, RoleMaster, "master down: no master heard for 874ms"},
			{time.Second, RoleBackup, "preempted by node 2 (priority 150 = 150, higher node id)"},
		},
	}, {
		name:        "masters of equal priority: the lower node id loses",
		cfg:         node3,
		events:      []event{ready(0, true), hear(time.Second, master(2, 150))},
		until:       1500 * time.Millisecond,
		want:        []change{{874 * time.Millisecond, RoleMaster, "master down: no master heard for 874ms"}},
		reannounced: []time.Duration{time.Second},
	}, {
		name:        "master hearing a lower master stays and reannounces once",
		cfg:         node1(),
		events:      events([]event{ready(0, true)}, every(time.Second, 2*time.Second, master(2, 100))),
		until:       2 * time.Second,
		want:        []change{{874 * time.Millisecond, RoleMaster, "master down: no master heard for 874ms"}},
		reannounced: []time.Duration{time.Second},
	}, {
		name: "master reannounces when a known backup turns master, once",
		cfg:  node1(),
		events: []event{
			ready(0, true),
			hear(time.Second, backup(2, 100)),
			hear(1200*time.Millisecond, master(2, 100)),
			hear(1400*time.Millisecond, master(2, 100)),
		},
		until:       1500 * time.Millisecond,
		want:        []change{{874 * time.Millisecond, RoleMaster, "master down: no master heard for 874ms"}},
		reannounced: []time.Duration{time.Second, 1200 * time.Millisecond},
	}, {
		name: "master reannounces when a forgotten peer reappears",
		cfg:  node1(),
		events: []event{
			ready(0, true),
			hear(time.Second, backup(2, 100)),
			hear(1500*time.Millisecond, backup(2, 100)), // still known
			hear(3*time.Second, backup(2, 100)),         // forgotten at 2.374s
		},
		until:       3 * time.Second,
		want:        []change{{874 * time.Millisecond, RoleMaster, "master down: no master heard for 874ms"}},
		reannounced: []time.Duration{time.Second, 3 * time.Second},
	}, {
		name:   "not ready: leaves master down to a ready backup while it lives",
		cfg:    node1(),
		events: every(0, 3*time.Second, backup(2, 100)),
		until:  5 * time.Second,
		// The ready backup's last advert is at 2.816s; it is forgotten
		// 874ms later.
		want: []change{{3690 * time.Millisecond, RoleMaster, "master down: no master heard for 874ms; not ready, but no ready peer is alive"}},
	}, {
		name:   "not ready: a backup that is not ready either does not hold it back",
		cfg:    node1(),
		events: every(0, 3*time.Second, notReady(backup(2, 100))),
		until:  3 * time.Second,
		want:   []change{{874 * time.Millisecond, RoleMaster, "master down: no master heard for 874ms; not ready, but no ready peer is alive"}},
	}, {
		name:   "not ready: a ready peer in fault does not hold it back",
		cfg:    node1(),
		events: every(0, 3*time.Second, Advert{NodeID: 2, Priority: 200, Role: RoleFault, Ready: true, AdvertInterval: iv}),
		until:  3 * time.Second,
		want:   []change{{874 * time.Millisecond, RoleMaster, "master down: no master heard for 874ms; not ready, but no ready peer is alive"}},
	}, {
		name:   "adverts with our own node id are ignored",
		cfg:    node1(),
		events: events([]event{ready(0, true)}, every(0, 3*time.Second, master(1, 200))),
		until:  3 * time.Second,
		want:   []change{{874 * time.Millisecond, RoleMaster, "master down: no master heard for 874ms"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, reannounced := replay(t, tt.cfg, tt.events, tt.until)
			if !slices.Equal(got, tt.want) {
				t.Errorf("changes:\n got %v\nwant %v", got, tt.want)
			}
			if !slices.Equal(reannounced, tt.reannounced) {
				t.Errorf("reannounced at %v, want %v", reannounced, tt.reannounced)
			}
		})
	}
}

func TestNewElection(t *testing.T) {
	e := NewElection(node1(), t0)
	want := Change{From: RoleInit, To: RoleBackup, Reason: "starting: waiting 874ms for a master", At: t0}
	if got := e.Changes(); len(got) != 1 || got[0] != want {
		t.Errorf("Changes() = %+v, want [%+v]", got, want)
	}
	if got := e.Changes(); got != nil {
		t.Errorf("second Changes() = %+v, want none", got)
	}
	if e.Role() != RoleBackup {
		t.Errorf("Role() = %s, want backup", e.Role())
	}
	if got := e.Next(); !got.Equal(t0.Add(iv)) {
		t.Errorf("Next() = %s after start, want one advert interval (master-down is later)", got.Sub(t0))
	}
	want2 := Advert{NodeID: 1, Priority: 150, Role: RoleBackup, Ready: false, AdvertInterval: iv}
	if got := e.Advert(); got != want2 {
		t.Errorf("Advert() = %+v, want %+v", got, want2)
	}
}

// TestHeardForgetsFirst checks that a peer heard after its master-down counts
// as new even when no Tick came in between.
func TestHeardForgetsFirst(t *testing.T) {
	e := NewElection(node1(), t0)
	e.SetReady(t0, true)
	e.Tick(t0.Add(874 * time.Millisecond))
	e.Heard(t0.Add(time.Second), backup(2, 100))
	if !e.Reannounce() {
		t.Fatal("no reannouncement for a new peer")
	}
	e.Heard(t0.Add(2500*time.Millisecond), backup(2, 100)) // forgotten at 1.874s
	if !e.Reannounce() {
		t.Error("no reannouncement for a peer that reappeared after its master-down")
	}
}

// TestNextIsTheNearestTimer checks Next against each timer on its own; the
// rule tests check that ticking only at Next misses none.
func TestNextIsTheNearestTimer(t *testing.T) {
	delayed := node1()
	delayed.PreemptDelay = 100 * time.Millisecond
	tests := []struct {
		name   string
		cfg    Config
		events []event
		want   time.Duration
	}{
		{"master-down", node1(), []event{ready(800*time.Millisecond, true)}, 874 * time.Millisecond},
		{"master-down after a master's advert", node1(), []event{hear(700*time.Millisecond, master(2, 200)), ready(1500*time.Millisecond, true)}, 1574 * time.Millisecond},
		{"pending preemption", delayed, []event{ready(0, true), hear(50*time.Millisecond, master(2, 100))}, 150 * time.Millisecond},
		{"a peer to forget", node1(), []event{hear(100*time.Millisecond, backup(2, 100)), ready(900*time.Millisecond, true)}, 974 * time.Millisecond},
		{"nothing pending: one advert interval", node1(), []event{ready(0, true), ready(time.Second, true)}, time.Second + iv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewElection(tt.cfg, t0)
			for _, ev := range tt.events {
				ev.apply(e, t0.Add(ev.at))
			}
			if got := e.Next().Sub(t0); got != tt.want {
				t.Errorf("Next() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	e, _, _ := replay(t, node1(), events(
		[]event{ready(0, true)},
		every(0, 2*time.Second, master(3, 200)),
		every(0, 1500*time.Millisecond, notReady(backup(2, 100))),
	), 2*time.Second)
	want := Status{
		NodeID:   1,
		Role:     RoleBackup,
		Reason:   "starting: waiting 874ms for a master",
		Since:    t0,
		Priority: 150,
		Ready:    true,
		Waiting:  "node 3 is master with priority 200 >= 150",
		Peers: []PeerStatus{
			{NodeID: 2, Priority: 100, Role: RoleBackup, Ready: false, LastHeard: t0.Add(1280 * time.Millisecond)},
			{NodeID: 3, Priority: 200, Role: RoleMaster, Ready: true, LastHeard: t0.Add(1792 * time.Millisecond)},
		},
	}
	if got := e.Status(); !reflect.DeepEqual(got, want) {
		t.Errorf("Status() =\n%+v\nwant\n%+v", got, want)
	}

	// Node 2 is forgotten 874ms after its last advert, node 3 likewise.
	e.Tick(t0.Add(2154 * time.Millisecond))
	if got := e.Status().Peers; len(got) != 1 || got[0].NodeID != 3 {
		t.Errorf("peers after node 2's master-down: %+v, want node 3 only", got)
	}
	e.Tick(t0.Add(2666 * time.Millisecond))
	if st := e.Status(); st.Role != RoleMaster || len(st.Peers) != 0 {
		t.Errorf("after node 3's master-down: %s with peers %+v, want master with none", st.Role, st.Peers)
	}
	if st := e.Status(); st.Waiting != "" || st.Since != t0.Add(2666*time.Millisecond) || !strings.HasPrefix(st.Reason, "master down: no advert from node 3") {
		t.Errorf("master status: waiting %q, since %s, reason %q", st.Waiting, st.Since.Sub(t0), st.Reason)
	}
}

func TestStatusWaiting(t *testing.T) {
	nopreempt := node1()
	nopreempt.Preempt = false
	delayed := node1()
	delayed.PreemptDelay = time.Second
	tests := []struct {
		name   string
		cfg    Config
		events []event
		want   string
	}{
		{"before master-down", node1(), nil, "waiting for a master advert"},
		{"a ready backup takes over", node1(), []event{hear(800*time.Millisecond, backup(2, 100)), hear(900*time.Millisecond, backup(2, 100))}, "not ready: waiting for bulk sync; a ready peer takes over"},
		{"a higher master", node1(), []event{hear(0, master(2, 200))}, "node 2 is master with priority 200 >= 150"},
		{"not ready", node1(), []event{hear(0, master(2, 100))}, "not ready: waiting for bulk sync"},
		{"nopreempt", nopreempt, []event{ready(0, true), hear(0, master(2, 100))}, "nopreempt: node 2 stays master"},
		{"preempting", delayed, []event{ready(0, true), hear(0, master(2, 100))}, "preempting node 2 (priority 100 < 150) at 2025-01-01T00:00:01Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewElection(tt.cfg, t0)
			for _, ev := range tt.events {
				ev.apply(e, t0.Add(ev.at))
			}
			if got := e.Status().Waiting; got != tt.want {
				t.Errorf("Waiting = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRoleString(t *testing.T) {
	for r, want := range map[Role]string{RoleInit: "init", RoleBackup: "backup", RoleMaster: "master", RoleFault: "fault", 9: "role(9)"} {
		if r.String() != want {
			t.Errorf("Role(%d).String() = %q, want %q", r, r.String(), want)
		}
	}
}

// TestResume: a daemon that takes over from a master predecessor is master
// (and ready) at once, and still yields to a higher master it hears.
func TestResume(t *testing.T) {
	t0 := time.Unix(1000, 0)
	e := NewElection(Config{NodeID: 1, Priority: 100, AdvertInterval: time.Second, Preempt: true}, t0)
	e.Resume(t0)
	if e.Role() != RoleMaster || !e.Advert().Ready {
		t.Fatalf("after Resume: role %s ready %v, want a ready master", e.Role(), e.Advert().Ready)
	}
	changes := e.Changes()
	if len(changes) != 2 || changes[1].To != RoleMaster {
		t.Fatalf("changes %+v, want init->backup then backup->master", changes)
	}
	e.Heard(t0.Add(time.Second), Advert{NodeID: 2, Priority: 200, Role: RoleMaster, Ready: true, AdvertInterval: time.Second})
	if e.Role() != RoleBackup {
		t.Errorf("a resumed master heard a higher master and is %s, want backup", e.Role())
	}
}
