package api

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Cluster is the daemon's part in an HA pair or cluster.
type Cluster interface {
	// Cluster reports the role, the election's peers and the sync channel.
	Cluster() ClusterStatus
	// SetRole sets the role in external mode, where keepalived (through
	// its notify scripts) decides it: "master" or "backup". Other modes
	// refuse with ErrConflict (wrapped).
	SetRole(role string) error
}

// ClusterStatus is this node's part in an HA pair or cluster.
type ClusterStatus struct {
	// Mode is ha.mode: none, vrrp or external.
	Mode   string `json:"mode"`
	NodeID uint8  `json:"node_id,omitempty"`
	// Role is master, backup, init (not decided yet) or fault (its
	// interface is down). Without HA a node carries its traffic alone:
	// master.
	Role     string    `json:"role"`
	Reason   string    `json:"reason,omitempty"` // why the role is what it is
	Since    time.Time `json:"since,omitzero"`
	Priority uint8     `json:"priority,omitempty"`
	// Ready: the bulk pull from the peers is done (or timed out), so the
	// node has their connections and may take over.
	Ready bool `json:"ready"`
	// Waiting says what keeps a backup from becoming master.
	Waiting string      `json:"waiting,omitempty"`
	Peers   []HAPeer    `json:"peers,omitempty"`
	Sync    *SyncStatus `json:"sync,omitempty"` // nil: no sync configured
}

// HAPeer is a peer as the election last heard it.
type HAPeer struct {
	NodeID    uint8     `json:"node_id"`
	Priority  uint8     `json:"priority"`
	Role      string    `json:"role"`
	Ready     bool      `json:"ready"`
	LastHeard time.Time `json:"last_heard"`
}

// SyncStatus is the connection-sync channel's counters.
type SyncStatus struct {
	Listen string `json:"listen"`
	// Emitted: records the datapath produced for the peers; RingFull:
	// records lost because its ring was full (the refresh repairs them).
	Emitted  uint64 `json:"emitted"`
	RingFull uint64 `json:"ring_full"`
	// Refreshed: connections sent again by the periodic refresh;
	// Expired: connections that expired here, told to the peers.
	Refreshed uint64 `json:"refreshed"`
	Expired   uint64 `json:"expired"`
	// Repairs: bulk pulls made because datagrams from the peers were lost.
	Repairs uint64 `json:"repairs"`
	// What adoption did with the peers' records.
	Created        uint64 `json:"created"`
	Updated        uint64 `json:"updated"`
	Replaced       uint64 `json:"replaced"`
	Stale          uint64 `json:"stale"`
	Conflicts      uint64 `json:"conflicts"`
	Failed         uint64 `json:"failed"`
	UnknownService uint64 `json:"unknown_service"`
	Forgotten      uint64 `json:"forgotten"`
	// The channel's own counters (see connsync.Stats).
	DatagramsSent     uint64     `json:"datagrams_sent"`
	RecordsSent       uint64     `json:"records_sent"`
	DatagramsReceived uint64     `json:"datagrams_received"`
	RecordsReceived   uint64     `json:"records_received"`
	SendErrors        uint64     `json:"send_errors"`
	QueueDrops        uint64     `json:"queue_drops"`
	AuthFailures      uint64     `json:"auth_failures"`
	Replays           uint64     `json:"replays"`
	NotPeer           uint64     `json:"not_peer"`
	Malformed         uint64     `json:"malformed"`
	SameNodeID        uint64     `json:"same_node_id"`
	WrongCluster      uint64     `json:"wrong_cluster"`
	Gaps              uint64     `json:"gaps"`
	Late              uint64     `json:"late"`
	BulkServed        uint64     `json:"bulk_served"`
	Peers             []SyncPeer `json:"peers"`
}

// SyncPeer is one configured sync peer.
type SyncPeer struct {
	Address      string        `json:"address"`
	NodeID       uint8         `json:"node_id,omitempty"`
	LastHeard    time.Time     `json:"last_heard,omitzero"`
	Records      uint64        `json:"records"`
	Gaps         uint64        `json:"gaps"`
	Late         uint64        `json:"late"`
	Bulk         string        `json:"bulk"`
	BulkRecords  uint64        `json:"bulk_records"`
	BulkDuration time.Duration `json:"bulk_duration"`
	BulkError    string        `json:"bulk_error,omitempty"`
}

// RoleRequest is the body of POST /v1/cluster/role.
type RoleRequest struct {
	Role string `json:"role"`
}

func (s *Server) clusterStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.src.Cluster())
}

func (s *Server) setRole(w http.ResponseWriter, r *http.Request) {
	var req RoleRequest
	if !decodeBody(w, r, &req, nil) {
		return
	}
	if req.Role != "master" && req.Role != "backup" {
		writeProblems(w, http.StatusBadRequest, "invalid request",
			[]Problem{{Path: "role", Message: fmt.Sprintf("%q is not a role (accepted: master, backup)", req.Role)}})
		return
	}
	if err := s.src.SetRole(req.Role); err != nil {
		writeChangeError(w, err, "role not set", nil)
		return
	}
	writeJSON(w, http.StatusOK, s.src.Cluster())
}

// Cluster reads this node's role and sync state.
func (c *Client) Cluster(ctx context.Context) (ClusterStatus, error) {
	var st ClusterStatus
	return st, c.get(ctx, "/v1/cluster", &st)
}

// SetRole sets the role of a node in external HA mode.
func (c *Client) SetRole(ctx context.Context, role string) (ClusterStatus, error) {
	var st ClusterStatus
	return st, c.do(ctx, http.MethodPost, "/v1/cluster/role", RoleRequest{Role: role}, &st)
}
