package daemon

import (
	"time"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/connsync"
	"github.com/xdplb/xdplb/internal/ha"
	"github.com/xdplb/xdplb/internal/metrics"
)

// Cluster implements api.Cluster.
func (d *Daemon) Cluster() api.ClusterStatus {
	c := d.cluster
	if c == nil {
		return api.ClusterStatus{Mode: string(config.HAModeNone), Role: ha.RoleMaster.String(), Ready: true}
	}
	st := api.ClusterStatus{Mode: string(c.cfg.Mode), NodeID: c.cfg.NodeID, Role: c.Role().String(), Ready: c.isReady()}
	if es := c.status.Load(); es != nil {
		st.Reason, st.Since, st.Priority, st.Waiting = es.Reason, es.Since, es.Priority, es.Waiting
		for _, p := range es.Peers {
			st.Peers = append(st.Peers, api.HAPeer{NodeID: p.NodeID, Priority: p.Priority, Role: p.Role.String(),
				Ready: p.Ready, LastHeard: p.LastHeard})
		}
	}
	if c.node != nil {
		st.Sync = d.syncStatus(c)
	}
	return st
}

func (d *Daemon) syncStatus(c *cluster) *api.SyncStatus {
	ns := c.node.Stats()
	k := &c.sync.counts
	full, _ := d.dp.SyncRingFull()
	s := &api.SyncStatus{
		Listen: c.node.Addr().String(), Emitted: k.emitted.Load(), RingFull: full, Refreshed: k.refreshed.Load(), Expired: k.deleted.Load(), Repairs: k.repairs.Load(),
		Created: k.created.Load(), Updated: k.updated.Load(), Replaced: k.replaced.Load(), Stale: k.stale.Load(), Conflicts: k.conflicts.Load(), Failed: k.failed.Load(),
		UnknownService: k.unknownService.Load(), Forgotten: k.forgotten.Load(),
		DatagramsSent: ns.DatagramsSent, RecordsSent: ns.RecordsSent, DatagramsReceived: ns.DatagramsReceived,
		RecordsReceived: ns.RecordsReceived, SendErrors: ns.SendErrors, QueueDrops: ns.QueueDrops,
		AuthFailures: ns.AuthFailures, Replays: ns.Replays, NotPeer: ns.NotPeer, Malformed: ns.Malformed, SameNodeID: ns.SameNodeID, WrongCluster: ns.WrongCluster,
		Gaps: ns.Gaps, Late: ns.Late, BulkServed: ns.BulkServed,
	}
	for _, p := range ns.Peers {
		s.Peers = append(s.Peers, api.SyncPeer{Address: p.Addr.String(), NodeID: p.NodeID, LastHeard: p.LastHeard,
			Records: p.Records, Gaps: p.Gaps, Late: p.Late, Bulk: string(p.Bulk), BulkRecords: p.BulkRecords,
			BulkDuration: p.BulkDuration, BulkError: p.BulkError})
	}
	return s
}

// ClusterMetrics implements metrics.Source.
func (d *Daemon) ClusterMetrics() metrics.ClusterStats {
	if d.cluster == nil {
		return metrics.ClusterStats{}
	}
	st := d.Cluster()
	out := metrics.ClusterStats{On: true, Role: st.Role, Ready: st.Ready}
	if s := st.Sync; s != nil {
		out.Sync = &metrics.SyncStats{
			RecordsSent: s.RecordsSent, RecordsReceived: s.RecordsReceived, DatagramsSent: s.DatagramsSent,
			DatagramsReceived: s.DatagramsReceived, Emitted: s.Emitted, Refreshed: s.Refreshed, Expired: s.Expired,
			RingFull: s.RingFull, QueueDrops: s.QueueDrops, SendErrors: s.SendErrors, AuthFailures: s.AuthFailures,
			Replays: s.Replays, NotPeer: s.NotPeer, Malformed: s.Malformed, SameNodeID: s.SameNodeID, WrongCluster: s.WrongCluster, Gaps: s.Gaps, Late: s.Late, Repairs: s.Repairs,
			Created: s.Created, Updated: s.Updated, Replaced: s.Replaced, Stale: s.Stale, Conflicts: s.Conflicts, Failed: s.Failed,
			UnknownService: s.UnknownService, Forgotten: s.Forgotten,
		}
		now := time.Now()
		for _, p := range s.Peers {
			heard := -1.0
			if !p.LastHeard.IsZero() {
				heard = now.Sub(p.LastHeard).Seconds()
			}
			out.Sync.Peers = append(out.Sync.Peers, metrics.SyncPeer{Addr: p.Address, SecondsSinceHeard: heard,
				BulkDone: p.Bulk == string(connsync.BulkDone)})
		}
	}
	return out
}
