package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdplb/xdplb/internal/connsync"
	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ident"
)

// syncer joins the datapath to the connection-sync channel: what the
// datapath emits goes to the peers, what the peers send is adopted, a
// peer's bulk pull gets every connection, and a periodic refresh repairs
// whatever a lost datagram or a full ring kept from the peers.
type syncer struct {
	log  *slog.Logger
	dp   *datapath.Datapath
	node *connsync.Node
	self uint8
	// view is the owner's published state: the services and backends
	// records are mapped to.
	view func() *snapshot
	// heard passes a peer's heartbeat to the election (nil: none runs).
	heard func(from uint8, hb connsync.Heartbeat)
	// active says whether this node carries the traffic, and so refreshes
	// its connections to the peers; a backup has nothing new to tell.
	active func() bool

	index  atomic.Pointer[syncIndex]
	counts syncCounts
	// pulling is held by a bulk pull; a repair does not start another
	// beside it.
	pulling sync.Mutex
}

// syncCounts are what adoption did, for `xdplb sync status` and metrics.
type syncCounts struct {
	created, updated, replaced, conflicts atomic.Uint64
	stale, failed                         atomic.Uint64
	unknownService, forgotten, refreshed  atomic.Uint64
	emitted, deleted, repairs             atomic.Uint64
}

// syncIndex maps a record's addresses to this daemon's ids, for one
// published snapshot.
type syncIndex struct {
	from     *snapshot
	services map[ident.Service]uint32
	backends map[backendAt]uint32
}

type backendAt struct {
	service uint32
	addr    netip.AddrPort
}

func (s *syncer) indexFor(v *snapshot) *syncIndex {
	if idx := s.index.Load(); idx != nil && idx.from == v {
		return idx
	}
	idx := &syncIndex{from: v, services: map[ident.Service]uint32{}, backends: map[backendAt]uint32{}}
	for _, svc := range v.services {
		idx.services[svc.Key] = svc.ID
		for _, b := range svc.Backends {
			idx.backends[backendAt{svc.ID, b.Addr}] = b.ID
		}
	}
	s.index.Store(idx)
	return idx
}

// Adopt implements connsync.Handler: a peer's connections enter the
// datapath under this daemon's ids. A connection to a service this node
// does not have is skipped (counted); one to a backend it does not have
// is kept, with no backend id, so its packets still flow.
func (s *syncer) Adopt(from uint8, recs []connsync.Record) {
	idx := s.indexFor(s.view())
	now := datapath.Now()
	adopt := make([]datapath.Adopted, 0, len(recs))
	for _, r := range recs {
		rec := datapathRecord(r)
		if r.Op == connsync.OpDelete {
			if gone, err := s.dp.Forget(rec, now-min(uint64(r.Age), now)); err != nil {
				s.log.Warn("sync: connection not forgotten", "peer", from, "client", r.Client, "err", err)
			} else if gone {
				s.counts.forgotten.Add(1)
			}
			continue
		}
		svc, ok := idx.services[ident.Service{VIP: r.VIP.Addr(), Port: r.VIP.Port(), Proto: ident.Protocol(r.Proto)}]
		if !ok {
			s.counts.unknownService.Add(1)
			continue
		}
		backend, ok := idx.backends[backendAt{svc, r.Backend}]
		if !ok {
			backend = datapath.NoBackendID
		}
		age := uint64(r.Age)
		adopt = append(adopt, datapath.Adopted{SyncRecord: rec, ServiceID: svc, BackendID: backend,
			Origin: r.Origin, LastSeen: now - min(age, now)})
	}
	res, err := s.dp.Adopt(adopt)
	s.counts.created.Add(uint64(res.Created))
	s.counts.updated.Add(uint64(res.Updated))
	s.counts.replaced.Add(uint64(res.Replaced))
	s.counts.stale.Add(uint64(res.Stale))
	s.counts.conflicts.Add(uint64(res.Conflicts))
	s.counts.failed.Add(uint64(res.Failed))
	if err != nil {
		s.log.Warn("sync: connections not adopted", "peer", from, "count", res.Failed, "first", err)
	}
}

// Heard implements connsync.Handler.
func (s *syncer) Heard(from uint8, _ netip.AddrPort, hb connsync.Heartbeat) {
	if s.heard != nil {
		s.heard(from, hb)
	}
}

// Dump implements connsync.Handler: every connection worth keeping, for a
// peer's bulk pull. Half-open TCP connections are left out, as the
// datapath leaves them out of its records: a SYN the peer never saw
// answered is cheap to lose.
func (s *syncer) Dump(ctx context.Context, yield func(connsync.Record) bool) error {
	origins, err := s.origins()
	if err != nil {
		return err
	}
	now := datapath.Now()
	err = s.dp.WalkForward(func(batch []datapath.Forward) error {
		for _, f := range batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			if worthSyncing(f) && !yield(s.record(f, now, origins)) {
				return errDumpStopped
			}
		}
		return nil
	})
	if errors.Is(err, errDumpStopped) {
		return nil
	}
	return err
}

// errDumpStopped ends a walk whose reader went away.
var errDumpStopped = errors.New("dump stopped")

// origins are the connections another node opened, by client key: what a
// record says of its origin. Walking the reverse halves costs a table
// walk; only the foreign ones are kept.
func (s *syncer) origins() (map[datapath.FlowKey]uint8, error) {
	out := map[datapath.FlowKey]uint8{}
	err := s.dp.WalkReverse(func(batch []datapath.Reverse) error {
		for _, r := range batch {
			if r.Origin != 0 && r.Origin != s.self {
				out[r.Client] = r.Origin
			}
		}
		return nil
	})
	return out, err
}

// worthSyncing tells the connections a peer should know of: established
// (or ending) ones, and not DSR ones, whose backend a peer's hash
// scheduler finds again from any packet of theirs.
func worthSyncing(f datapath.Forward) bool {
	st := f.State
	// Records carry IPv4 addresses; IPv6 connections are not synced.
	return !f.Forwarding.DSR() && f.Key.Src.Addr().Is4() &&
		(st == datapath.StateEstablished || st == datapath.StateFinWait || st == datapath.StateClose || st == datapath.StateUDP)
}

// record is forward half f as a record: its own state, the backend half's
// left to the receiver ("unchanged", or the same for a new entry).
func (s *syncer) record(f datapath.Forward, now uint64, origins map[datapath.FlowKey]uint8) connsync.Record {
	origin, ok := origins[f.Key]
	if !ok {
		origin = s.self
	}
	return connsync.Record{
		Op: connsync.OpUpsert, Proto: f.Key.Proto, FwdState: uint8(f.State), Origin: origin,
		Age:    time.Duration(now - min(f.LastSeen, now)),
		Client: f.Key.Src, VIP: f.Key.Dst, Local: f.Local, Backend: f.Backend,
	}
}

// emit sends what the datapath reports to the peers.
func (s *syncer) emit(ctx context.Context) error {
	return s.dp.ReadSync(ctx, func(r datapath.SyncRecord) {
		s.counts.emitted.Add(1)
		s.node.Send(connsync.Record{
			Op: connsync.OpUpsert, Proto: r.Client.Proto, FwdState: uint8(r.FwdState), RevState: uint8(r.RevState),
			Origin: s.self, Client: r.Client.Src, VIP: r.Client.Dst, Local: r.Local, Backend: r.Backend,
		})
	})
}

// ended tells the peers about the connections the collector expired, so
// they free the local ports at once rather than at their own expiry. Only
// an active node does: a backup's copies expire on the same clock as the
// master's, and telling the master would be news it already has.
func (s *syncer) ended(recs []datapath.Ended) {
	if len(recs) == 0 || !s.active() {
		return
	}
	now := datapath.Now()
	for _, r := range recs {
		// The age tells the peer when the last packet was, so it keeps
		// a copy that has seen one since.
		s.node.Send(connsync.Record{Op: connsync.OpDelete, Proto: r.Client.Proto, Origin: s.self,
			Age:    time.Duration(now - min(r.LastSeen, now)),
			Client: r.Client.Src, VIP: r.Client.Dst, Local: r.Local, Backend: r.Backend})
	}
	s.counts.deleted.Add(uint64(len(recs)))
}

// refresh sends, every interval while this node is active, each
// connection that saw a packet since the last pass. Every connection is so
// sent at least once after its last packet: a record the peers missed is
// repaired within one interval, and a busy connection's copy never ages
// out on a peer.
func (s *syncer) refresh(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	since := datapath.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := datapath.Now()
		if !s.active() {
			since = now
			continue
		}
		origins, err := s.origins()
		if err != nil {
			s.log.Warn("sync: refresh pass failed", "err", err)
			continue
		}
		err = s.dp.WalkForward(func(batch []datapath.Forward) error {
			for _, f := range batch {
				if f.LastSeen >= since && worthSyncing(f) {
					s.node.Send(s.record(f, now, origins))
					s.counts.refreshed.Add(1)
				}
			}
			return ctx.Err()
		})
		if err != nil && ctx.Err() == nil {
			s.log.Warn("sync: refresh pass failed", "err", err)
		}
		since = now
	}
}

// repair pulls the peers' whole tables again when their datagrams went
// missing (sequence numbers skipped and not filled in late): the lost
// record may be an idle connection's only one, which no refresh resends,
// as after a partition. At most once per interval: a pull walks the
// peer's whole table.
func (s *syncer) repair(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var repaired uint64
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := s.node.Stats()
		lost := st.Gaps - min(st.Late, st.Gaps)
		if lost <= repaired || time.Since(last) < interval || !s.pulling.TryLock() {
			continue
		}
		s.log.Info("sync: datagrams from the peers were lost; pulling their connections again", "lost", lost-repaired)
		repaired, last = lost, time.Now()
		if err := s.node.PullAll(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("sync: repair pull incomplete", "err", err)
		}
		s.pulling.Unlock()
		s.counts.repairs.Add(1)
	}
}

// pull fetches every peer's connections (bulk sync), then says this node
// is ready: it may take over now without losing what the peers carry.
func (s *syncer) pull(ctx context.Context, ready func()) {
	s.pulling.Lock()
	defer s.pulling.Unlock()
	start := time.Now()
	if err := s.node.PullAll(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("sync: bulk pull incomplete", "err", err)
	}
	if ctx.Err() != nil {
		return
	}
	s.log.Info("sync: bulk pull done; ready", "took", time.Since(start).Round(time.Millisecond),
		"adopted", s.counts.created.Load()+s.counts.updated.Load()+s.counts.replaced.Load())
	ready()
}

func datapathRecord(r connsync.Record) datapath.SyncRecord {
	return datapath.SyncRecord{
		Client: datapath.FlowKey{Src: r.Client, Dst: r.VIP, Proto: r.Proto},
		Local:  r.Local, Backend: r.Backend,
		FwdState: datapath.State(r.FwdState), RevState: datapath.State(r.RevState),
	}
}
