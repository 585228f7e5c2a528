package ha

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Status is a snapshot of the election for logs and the API, as of the
// latest call into the Election.
type Status struct {
	NodeID   uint8
	Role     Role
	Reason   string    // why the node took its role
	Since    time.Time // when it took it
	Priority uint8     // configured
	Ready    bool
	// Waiting says what keeps a backup from becoming master, e.g. "not
	// ready: waiting for bulk sync"; empty unless the node is backup.
	Waiting string
	Peers   []PeerStatus // the live peers, by node id
}

// PeerStatus is what this node knows of one peer.
type PeerStatus struct {
	NodeID    uint8
	Priority  uint8 // configured, as advertised
	Role      Role
	Ready     bool
	LastHeard time.Time
}

// Status returns a snapshot of the election.
func (e *Election) Status() Status {
	s := Status{
		NodeID:   e.cfg.NodeID,
		Role:     e.role,
		Reason:   e.reason,
		Since:    e.since,
		Priority: e.cfg.Priority,
		Ready:    e.ready,
		Waiting:  e.waiting(),
	}
	for _, p := range e.peers {
		s.Peers = append(s.Peers, PeerStatus{NodeID: p.NodeID, Priority: p.Priority, Role: p.Role, Ready: p.Ready, LastHeard: p.heard})
	}
	slices.SortFunc(s.Peers, func(a, b PeerStatus) int { return cmp.Compare(a.NodeID, b.NodeID) })
	return s
}

// waiting explains why a backup is not master, in the order the rules in
// evaluate and considerPreempt apply.
func (e *Election) waiting() string {
	if e.role != RoleBackup {
		return ""
	}
	m := e.bestMaster()
	if m == nil {
		if e.now.Before(e.downAt) {
			return "waiting for a master advert"
		}
		return "not ready: waiting for bulk sync; a ready peer takes over"
	}
	theirs := effective(m.Priority, m.Ready)
	switch {
	case theirs >= e.cfg.Priority:
		return fmt.Sprintf("node %d is master with priority %s >= %d", m.NodeID, priority(m.Priority, m.Ready), e.cfg.Priority)
	case !e.ready:
		return "not ready: waiting for bulk sync"
	case !e.cfg.Preempt:
		return fmt.Sprintf("nopreempt: node %d stays master", m.NodeID)
	}
	return fmt.Sprintf("preempting node %d (priority %s < %d) at %s",
		m.NodeID, priority(m.Priority, m.Ready), e.cfg.Priority, e.preemptAt.Format(time.RFC3339Nano))
}
