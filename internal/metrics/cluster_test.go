package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCollectCluster: a backup's role and readiness, and its sync
// counters; without ha or sync there are none.
func TestCollectCluster(t *testing.T) {
	f := newFake()
	names := []string{"xdplb_ha_role", "xdplb_ha_ready", "xdplb_sync_adopted_total", "xdplb_sync_lost_total",
		"xdplb_sync_peer_last_heard_seconds", "xdplb_sync_peer_bulk_done", "xdplb_sync_gaps_total"}
	if n := testutil.CollectAndCount(NewCollector(f), names...); n != 0 {
		t.Fatalf("without a cluster: %d cluster metrics, want none", n)
	}
	f.cluster = testCluster()
	want := `
# HELP xdplb_ha_role 1 for this node's HA role (master owns the VIPs), 0 for the others.
# TYPE xdplb_ha_role gauge
xdplb_ha_role{role="backup"} 1
xdplb_ha_role{role="fault"} 0
xdplb_ha_role{role="init"} 0
xdplb_ha_role{role="master"} 0
# HELP xdplb_ha_ready Whether this node has pulled its peers' connections (bulk sync) and may take over.
# TYPE xdplb_ha_ready gauge
xdplb_ha_ready 1
# HELP xdplb_sync_adopted_total Peers' connection records by what adoption did: created, updated, replaced (this node's entry was older), stale (this node's entry was newer: kept), conflict (the local port is another connection's), failed (the table refused), unknown_service.
# TYPE xdplb_sync_adopted_total counter
xdplb_sync_adopted_total{result="conflict"} 1
xdplb_sync_adopted_total{result="created"} 10
xdplb_sync_adopted_total{result="failed"} 0
xdplb_sync_adopted_total{result="replaced"} 0
xdplb_sync_adopted_total{result="stale"} 0
xdplb_sync_adopted_total{result="unknown_service"} 0
xdplb_sync_adopted_total{result="updated"} 4
# HELP xdplb_sync_gaps_total Sequence numbers the peers' datagrams skipped (lost, unless they arrive late).
# TYPE xdplb_sync_gaps_total counter
xdplb_sync_gaps_total 3
# HELP xdplb_sync_lost_total Records lost before they left this node, by cause: the datapath's ring was full, the send queue was full, the socket refused. The refresh repairs them.
# TYPE xdplb_sync_lost_total counter
xdplb_sync_lost_total{cause="queue_full"} 0
xdplb_sync_lost_total{cause="ring_full"} 2
xdplb_sync_lost_total{cause="send_error"} 0
# HELP xdplb_sync_peer_bulk_done Whether the last bulk pull from a peer completed.
# TYPE xdplb_sync_peer_bulk_done gauge
xdplb_sync_peer_bulk_done{peer="192.0.2.5:8849"} 1
xdplb_sync_peer_bulk_done{peer="192.0.2.7:8849"} 0
# HELP xdplb_sync_peer_last_heard_seconds Seconds since a peer's last datagram; -1 if never heard.
# TYPE xdplb_sync_peer_last_heard_seconds gauge
xdplb_sync_peer_last_heard_seconds{peer="192.0.2.5:8849"} 0.25
xdplb_sync_peer_last_heard_seconds{peer="192.0.2.7:8849"} -1
`
	if err := testutil.CollectAndCompare(NewCollector(f), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(NewCollector(f)); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// testCluster is a backup with sync and two peers, one never heard.
func testCluster() ClusterStats {
	return ClusterStats{On: true, Role: "backup", Ready: true, Sync: &SyncStats{
		Created: 10, Updated: 4, Conflicts: 1, RingFull: 2, Gaps: 3,
		Peers: []SyncPeer{{Addr: "192.0.2.5:8849", SecondsSinceHeard: 0.25, BulkDone: true}, {Addr: "192.0.2.7:8849", SecondsSinceHeard: -1}},
	}}
}
