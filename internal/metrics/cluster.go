package metrics

import "github.com/prometheus/client_golang/prometheus"

// ClusterStats is this node's part in an HA pair or cluster.
type ClusterStats struct {
	// On: ha or sync is configured; without, no cluster metrics.
	On bool
	// Role is master, backup, init or fault.
	Role  string
	Ready bool // the bulk pull from the peers is done
	// Sync is the sync channel's counters; nil without sync.
	Sync *SyncStats
}

// SyncStats are the connection-sync channel's counters.
type SyncStats struct {
	RecordsSent, RecordsReceived, DatagramsSent, DatagramsReceived uint64
	// What was sent: records from the datapath, refreshes, expiries.
	Emitted, Refreshed, Expired uint64
	// Records lost before they left: full ring, full queue, send error.
	RingFull, QueueDrops, SendErrors uint64
	// Datagrams refused.
	AuthFailures, Replays, NotPeer, Malformed, SameNodeID, WrongCluster uint64
	Gaps, Late                                                          uint64
	// Repairs: bulk pulls made because the peers' datagrams were lost.
	Repairs uint64
	// What adoption did.
	Created, Updated, Replaced, Stale, Conflicts, Failed, UnknownService, Forgotten uint64
	Peers                                                                           []SyncPeer
}

// SyncPeer is one configured peer.
type SyncPeer struct {
	Addr string
	// SecondsSinceHeard: since its last datagram; negative if never.
	SecondsSinceHeard float64
	BulkDone          bool
}

// haRoles are the values of the role label, all exported so that a
// dashboard sees a 0 for every role the node is not in.
var haRoles = []string{"init", "backup", "master", "fault"}

type clusterDescs struct {
	haRole, haReady                                  *prometheus.Desc
	syncRecords, syncDatagrams, syncSent             *prometheus.Desc
	syncLost, syncRefused, syncGaps                  *prometheus.Desc
	syncLate, syncAdopted, syncForgotten             *prometheus.Desc
	syncPeerLastHeard, syncPeerBulkDone, syncRepairs *prometheus.Desc
}

func (c *Collector) describeCluster(desc func(name, help string, labels ...string) *prometheus.Desc) {
	d := &c.cluster
	d.haRole = desc("ha_role", "1 for this node's HA role (master owns the VIPs), 0 for the others.", "role")
	d.haReady = desc("ha_ready", "Whether this node has pulled its peers' connections (bulk sync) and may take over.")
	d.syncRecords = desc("sync_records_total", "Connection records sent to each peer (summed) and received from the peers.", "direction")
	d.syncDatagrams = desc("sync_datagrams_total", "Sync datagrams sent (to each peer, summed) and accepted.", "direction")
	d.syncSent = desc("sync_sent_total",
		"Connections queued for the peers, by source: the datapath (new, closing, answered), the periodic refresh, the collector's expiries.", "source")
	d.syncLost = desc("sync_lost_total",
		"Records lost before they left this node, by cause: the datapath's ring was full, the send queue was full, the socket refused. The refresh repairs them.", "cause")
	d.syncRefused = desc("sync_refused_total",
		"Sync datagrams dropped, by reason: bad mac (tampered or another key), replayed, not from a peer, malformed, carrying this node's own id (two nodes share one ha.node_id), of another sync.cluster_id.", "reason")
	d.syncGaps = desc("sync_gaps_total", "Sequence numbers the peers' datagrams skipped (lost, unless they arrive late).")
	d.syncLate = desc("sync_late_total", "Skipped sequence numbers that arrived afterwards.")
	d.syncRepairs = desc("sync_repairs_total", "Bulk pulls of the peers' whole tables made because their datagrams were lost.")
	d.syncAdopted = desc("sync_adopted_total",
		"Peers' connection records by what adoption did: created, updated, replaced (this node's entry was older), stale (this node's entry was newer: kept), conflict (the local port is another connection's), failed (the table refused), unknown_service.", "result")
	d.syncForgotten = desc("sync_forgotten_total", "Connections removed because a peer reported them ended.")
	d.syncPeerLastHeard = desc("sync_peer_last_heard_seconds", "Seconds since a peer's last datagram; -1 if never heard.", "peer")
	d.syncPeerBulkDone = desc("sync_peer_bulk_done", "Whether the last bulk pull from a peer completed.", "peer")
}

func (c *Collector) collectCluster(ch chan<- prometheus.Metric, st ClusterStats) {
	if !st.On {
		return
	}
	d := &c.cluster
	for _, r := range haRoles {
		gauge(ch, d.haRole, boolValue(r == st.Role), r)
	}
	gauge(ch, d.haReady, boolValue(st.Ready))
	s := st.Sync
	if s == nil {
		return
	}
	counter(ch, d.syncRecords, s.RecordsSent, "sent")
	counter(ch, d.syncRecords, s.RecordsReceived, "received")
	counter(ch, d.syncDatagrams, s.DatagramsSent, "sent")
	counter(ch, d.syncDatagrams, s.DatagramsReceived, "received")
	counter(ch, d.syncSent, s.Emitted, "datapath")
	counter(ch, d.syncSent, s.Refreshed, "refresh")
	counter(ch, d.syncSent, s.Expired, "expiry")
	counter(ch, d.syncLost, s.RingFull, "ring_full")
	counter(ch, d.syncLost, s.QueueDrops, "queue_full")
	counter(ch, d.syncLost, s.SendErrors, "send_error")
	counter(ch, d.syncRefused, s.AuthFailures, "bad_mac")
	counter(ch, d.syncRefused, s.Replays, "replay")
	counter(ch, d.syncRefused, s.NotPeer, "not_peer")
	counter(ch, d.syncRefused, s.Malformed, "malformed")
	counter(ch, d.syncRefused, s.SameNodeID, "same_node_id")
	counter(ch, d.syncRefused, s.WrongCluster, "wrong_cluster")
	counter(ch, d.syncGaps, s.Gaps)
	counter(ch, d.syncLate, s.Late)
	counter(ch, d.syncRepairs, s.Repairs)
	counter(ch, d.syncAdopted, s.Created, "created")
	counter(ch, d.syncAdopted, s.Updated, "updated")
	counter(ch, d.syncAdopted, s.Replaced, "replaced")
	counter(ch, d.syncAdopted, s.Stale, "stale")
	counter(ch, d.syncAdopted, s.Failed, "failed")
	counter(ch, d.syncAdopted, s.Conflicts, "conflict")
	counter(ch, d.syncAdopted, s.UnknownService, "unknown_service")
	counter(ch, d.syncForgotten, s.Forgotten)
	for _, p := range s.Peers {
		ch <- prometheus.MustNewConstMetric(d.syncPeerLastHeard, prometheus.GaugeValue, p.SecondsSinceHeard, p.Addr)
		gauge(ch, d.syncPeerBulkDone, boolValue(p.BulkDone), p.Addr)
	}
}

func boolValue(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
