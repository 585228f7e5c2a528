package health

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/xdplb/xdplb/internal/ident"
)

// DefaultMaxConcurrent is the default bound on probes in flight at once.
const DefaultMaxConcurrent = 64

// Target is one backend of one service and how to check it. The check
// connects to Addr (an IP address and port; for an exec check, the values
// of XDPLB_BACKEND_ADDR and XDPLB_BACKEND_PORT), never to a name. A
// target is identified by Service and Addr; Spec may change under it.
type Target struct {
	Service ident.Service
	Addr    netip.AddrPort
	Spec    Spec
	// VIPPath, for a backend of a direct-server-return service, is how
	// the clients' packets reach it: the check proves it answers on the
	// VIP first.
	VIPPath *VIPPath
}

// Backend is the identity of the target: its service and address.
func (t Target) Backend() ident.Backend { return ident.Backend{Service: t.Service, Addr: t.Addr} }

type targetKey = ident.Backend

func (t Target) key() targetKey { return t.Backend() }

// Change reports that a target went up or down.
type Change struct {
	Target Target
	Up     bool
	// Since is when the change happened (the end of the deciding probe).
	Since time.Time
	// Reason is the error of the probe that took the target down, or
	// "N consecutive checks passed" when it came up.
	Reason string
}

// State is the current health of one target, for the API and CLI.
type State struct {
	Target Target
	Up     bool
	// Since is the time of the last change, or when the target was
	// first given to SetTargets if it never changed.
	Since time.Time
	// LastCheck is when the most recent probe ended; zero before the
	// first one.
	LastCheck time.Time
	// LastError is the message of the most recent failed probe, kept
	// after the target recovers; empty if no probe ever failed.
	LastError string
	// Successes and Failures are the current streaks of consecutive
	// passed and failed probes (at most one of them is non-zero).
	Successes, Failures int
	// Checks counts the probes of this target.
	Checks uint64
}

// Options configure a Monitor. The zero value is usable.
type Options struct {
	// MaxConcurrent bounds the probes in flight at once, however many
	// targets there are. Default DefaultMaxConcurrent.
	MaxConcurrent int
	// DialContext creates the sockets of TCP, HTTP and HTTPS checks.
	// Default: a net.Dialer's DialContext.
	DialContext DialFunc
	// ListenPacket creates the sockets of UDP checks; the probe sends to
	// the target with WriteTo and only accepts replies from it. Default:
	// a net.ListenConfig's ListenPacket.
	ListenPacket ListenPacketFunc
	// OnChange, if set, is called on every change of a target's state.
	// Calls are made one at a time, in order for any one target, from
	// the Monitor's workers, so OnChange should return quickly (a slow
	// one holds a worker). After SetTargets returns, no Change is
	// delivered for a target it removed. OnChange must not call
	// SetTargets (it would deadlock); States is fine.
	OnChange func(Change)
	// Logger receives "backend down" and "backend up" at info level for
	// every change. Default: discard.
	Logger *slog.Logger
}

// Monitor checks a set of targets and tracks their up/down state.
//
// A single scheduler goroutine keeps the targets in a heap ordered by
// their next probe time and hands due probes to a fixed pool of
// MaxConcurrent workers; there is no goroutine per target. A target is
// never probed twice at once. Its first probe comes at a random point
// within its first interval, so that a thousand targets added together
// do not fire together; after that, probes start Interval apart (or
// immediately after the previous one, if it took longer than that).
//
// SetTargets and States may be called at any time, before, during or
// after Run.
type Monitor struct {
	log      *slog.Logger
	onChange func(Change)
	workers  int
	sockets  sockets

	// deliverMu serializes OnChange calls. SetTargets holds it so that
	// no Change for a target it removes is delivered after it returns.
	// It is taken before mu.
	deliverMu sync.Mutex

	mu      sync.Mutex
	targets map[targetKey]*entry
	queue   queue // targets waiting for their next probe
	running bool
	wake    chan struct{} // tells the scheduler that the queue changed
}

// entry is the Monitor's record of one target.
type entry struct {
	target  Target // Spec defaulted
	prober  prober
	fsm     fsm
	gen     uint64 // bumped when Spec changes; results of older probes are dropped
	next    time.Time
	index   int  // position in the queue, -1 when not queued
	busy    bool // a probe is in flight
	removed bool
}

// New returns a Monitor with no targets.
func New(opts Options) *Monitor {
	m := &Monitor{
		log:      opts.Logger,
		onChange: opts.OnChange,
		workers:  opts.MaxConcurrent,
		sockets:  sockets{dial: opts.DialContext, listen: opts.ListenPacket},
		targets:  make(map[targetKey]*entry),
		wake:     make(chan struct{}, 1),
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.workers <= 0 {
		m.workers = DefaultMaxConcurrent
	}
	if m.sockets.dial == nil {
		m.sockets.dial = (&net.Dialer{}).DialContext
	}
	if m.sockets.listen == nil {
		m.sockets.listen = (&net.ListenConfig{}).ListenPacket
	}
	return m
}

// SetTargets replaces the set of targets. Targets already present with
// the same Service, Addr and Spec keep their state and schedule; new
// ones start in their Spec's initial state with a first probe within one
// interval; those missing are dropped (a probe in flight is abandoned).
// A target whose Spec changed keeps its up/down state and the time of
// it, but restarts its rise/fall streaks and is rescheduled.
//
// Each Spec is defaulted and validated first; if any target is invalid,
// or two share Service and Addr, nothing changes and the error names
// them all.
func (m *Monitor) SetTargets(targets []Target) error {
	want := make(map[targetKey]Target, len(targets))
	var errs []error
	for i, t := range targets {
		t.Spec = t.Spec.clone()
		t.Spec.Defaults()
		name := fmt.Sprintf("target %d (service %s, backend %s)", i, t.Service, t.Addr)
		if !t.Addr.IsValid() || t.Addr.Port() == 0 {
			errs = append(errs, fmt.Errorf("%s: the address is not an IP address and port", name))
		}
		if err := t.Spec.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		if _, dup := want[t.key()]; dup {
			errs = append(errs, fmt.Errorf("%s: listed twice", name))
		}
		want[t.key()] = t
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	m.deliverMu.Lock()
	defer m.deliverMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for k, e := range m.targets {
		if _, keep := want[k]; !keep {
			e.removed = true
			if e.index >= 0 {
				heap.Remove(&m.queue, e.index)
			}
			delete(m.targets, k)
		}
	}
	for k, t := range want {
		e, ok := m.targets[k]
		switch {
		case !ok:
			e = &entry{
				target: t,
				prober: newProber(t, m.sockets),
				fsm:    newFSM(t.Spec.Rise, t.Spec.Fall, t.Spec.Initial != InitialDown, now),
				index:  -1,
			}
			m.targets[k] = e
			e.next = now.Add(jitter(t.Spec.Interval))
			heap.Push(&m.queue, e)
		case reflect.DeepEqual(e.target.Spec, t.Spec) && reflect.DeepEqual(e.target.VIPPath, t.VIPPath):
			// Unchanged.
		default:
			e.target = t
			e.prober = newProber(t, m.sockets)
			e.gen++
			e.fsm.retune(t.Spec.Rise, t.Spec.Fall)
			if e.index >= 0 {
				e.next = now.Add(jitter(t.Spec.Interval))
				heap.Fix(&m.queue, e.index)
			} // else a probe is in flight; requeue reschedules it.
		}
	}
	m.poke()
	return nil
}

// States returns the state of every target, sorted by service and
// address.
func (m *Monitor) States() []State {
	m.mu.Lock()
	out := make([]State, 0, len(m.targets))
	for _, e := range m.targets {
		t := e.target
		t.Spec = t.Spec.clone()
		out = append(out, State{
			Target:    t,
			Up:        e.fsm.up,
			Since:     e.fsm.since,
			LastCheck: e.fsm.lastCheck,
			LastError: e.fsm.lastErr,
			Successes: e.fsm.successes,
			Failures:  e.fsm.failures,
			Checks:    e.fsm.checks,
		})
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b State) int {
		return cmp.Or(a.Target.Service.Compare(b.Target.Service), a.Target.Addr.Compare(b.Target.Addr))
	})
	return out
}

// Run probes the targets until ctx ends, then returns nil once every
// goroutine it started has stopped. Probes cut short by the end of ctx
// are not counted. Run may be called again after it returns (the state
// is kept), but not while it runs.
func (m *Monitor) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.running {
		m.mu.Unlock()
		return errors.New("health: Monitor.Run called while already running")
	}
	m.running = true
	// Spread the first probes over an interval from now, whenever the
	// targets were set.
	now := time.Now()
	for _, e := range m.queue {
		e.next = now.Add(jitter(e.target.Spec.Interval))
	}
	heap.Init(&m.queue)
	m.mu.Unlock()

	jobs := make(chan job)
	var wg sync.WaitGroup
	for range m.workers {
		wg.Go(func() {
			for j := range jobs {
				m.runJob(ctx, j)
			}
		})
	}
	m.schedule(ctx, jobs)
	close(jobs)
	wg.Wait()

	m.mu.Lock()
	m.running = false
	m.mu.Unlock()
	return nil
}

// job is one probe of one target.
type job struct {
	e       *entry
	gen     uint64
	prober  prober
	timeout time.Duration
}

// schedule hands due probes to the workers until ctx ends.
func (m *Monitor) schedule(ctx context.Context, jobs chan<- job) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var j job
		wait := time.Duration(-1) // nothing queued: wait for SetTargets
		m.mu.Lock()
		if len(m.queue) > 0 {
			e := m.queue[0]
			if d := time.Until(e.next); d > 0 {
				wait = d
			} else {
				heap.Pop(&m.queue)
				e.busy = true
				j = job{e: e, gen: e.gen, prober: e.prober, timeout: e.target.Spec.Timeout}
			}
		}
		m.mu.Unlock()

		if j.e != nil {
			// Blocks while every worker is busy: that is the bound on
			// concurrent probes. Due probes just wait their turn.
			select {
			case jobs <- j:
				continue
			case <-ctx.Done():
				now := time.Now()
				m.mu.Lock()
				m.requeue(j.e, j.gen, now, now)
				m.mu.Unlock()
				return
			}
		}
		var fire <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-fire:
		case <-m.wake:
		}
	}
}

// runJob probes one target and records the result.
func (m *Monitor) runJob(ctx context.Context, j job) {
	start := time.Now()
	if ctx.Err() != nil {
		// Handed over as Run was stopping.
		m.mu.Lock()
		m.requeue(j.e, j.gen, start, start)
		m.mu.Unlock()
		return
	}
	pctx, cancel := context.WithTimeout(ctx, j.timeout)
	err := j.prober.probe(pctx)
	cancel()
	end := time.Now()

	e := j.e
	var change *Change
	m.mu.Lock()
	if ctx.Err() == nil && !e.removed && e.gen == j.gen {
		if changed, reason := e.fsm.record(err, end); changed {
			t := e.target
			t.Spec = t.Spec.clone()
			change = &Change{Target: t, Up: e.fsm.up, Since: e.fsm.since, Reason: reason}
		}
	}
	m.mu.Unlock()

	// Deliver before the target is queued again, so that its changes
	// are delivered in order.
	if change != nil {
		m.deliver(e, *change)
	}

	m.mu.Lock()
	m.requeue(e, j.gen, start, end)
	m.mu.Unlock()
}

// requeue schedules the next probe of e after one that started at start
// and ended at end. m.mu must be held.
func (m *Monitor) requeue(e *entry, gen uint64, start, end time.Time) {
	e.busy = false
	if e.removed {
		return
	}
	if e.gen == gen {
		e.next = start.Add(e.target.Spec.Interval)
		if e.next.Before(end) {
			e.next = end
		}
	} else {
		// The Spec changed during the probe: start the new one afresh.
		e.next = end.Add(jitter(e.target.Spec.Interval))
	}
	heap.Push(&m.queue, e)
	m.poke()
}

// deliver logs a change and passes it to OnChange, unless the target was
// removed meanwhile.
func (m *Monitor) deliver(e *entry, c Change) {
	m.deliverMu.Lock()
	defer m.deliverMu.Unlock()
	m.mu.Lock()
	removed := e.removed
	m.mu.Unlock()
	if removed {
		return
	}
	msg := "backend down"
	if c.Up {
		msg = "backend up"
	}
	m.log.Info(msg,
		"service", c.Target.Service.String(),
		"backend", c.Target.Addr.String(),
		"check", c.Target.Spec.Kind,
		"reason", c.Reason)
	if m.onChange != nil {
		m.onChange(c)
	}
}

// poke wakes the scheduler; m.mu must be held or the call otherwise
// ordered after the queue change.
func (m *Monitor) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// jitter returns a random delay in [0, interval).
func jitter(interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(interval)))
}

// queue is a min-heap of entries by next probe time.
type queue []*entry

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].next.Before(q[j].next) }
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

func (q *queue) Push(x any) {
	e := x.(*entry)
	e.index = len(*q)
	*q = append(*q, e)
}

func (q *queue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*q = old[:len(old)-1]
	return e
}
