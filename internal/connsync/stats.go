package connsync

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a Node's counters. Every count only grows, so
// each maps to a Prometheus counter.
type Stats struct {
	// DatagramsSent and RecordsSent count what went out over UDP, once
	// per peer it went to.
	DatagramsSent, RecordsSent uint64
	// DatagramsReceived and RecordsReceived count UDP datagrams (and
	// their records) that passed every check below.
	DatagramsReceived, RecordsReceived uint64
	// SendErrors counts datagrams the socket refused to send to a peer.
	SendErrors uint64
	// QueueDrops counts records Send dropped because the send queue was
	// full; the daemon's periodic refresh sends them again.
	QueueDrops uint64
	// Invalid counts records Send or a bulk dump refused because they
	// cannot be encoded (unknown op, mixed address families, port 0).
	Invalid uint64
	// NotPeer counts datagrams and bulk connections from an address
	// that is not a configured peer.
	NotPeer uint64
	// Malformed counts authentic datagrams and frames that do not
	// decode, or are of a type that does not belong where they came.
	Malformed uint64
	// AuthFailures counts datagrams and frames whose mac is wrong:
	// tampered, or made with another key.
	AuthFailures uint64
	// WrongCluster counts authentic datagrams of another cluster id.
	WrongCluster uint64
	// SameNodeID counts authentic datagrams that carry this node's own
	// id: two nodes are configured with one NodeID.
	SameNodeID uint64
	// Replays counts datagrams seen before, too old for the replay
	// window, or from a sender's earlier epoch; and bulk frames that
	// answer another request (nonce) or come out of order.
	Replays uint64
	// Gaps counts sequence numbers that datagrams skipped past, when
	// they were skipped; Late counts those that arrived afterwards
	// anyway. Gaps - Late were lost.
	Gaps, Late uint64
	// BulkFailed and BulkSkipped count PullAll's peers whose pull broke
	// off, and those that could not be reached in time.
	BulkFailed, BulkSkipped uint64
	// BulkServed counts dumps this node sent to pulling peers.
	BulkServed uint64

	Peers []PeerStats
}

// BulkState is where a peer's bulk pull stands.
type BulkState string

const (
	BulkPending BulkState = "pending" // PullAll did not finish with the peer yet
	BulkDone    BulkState = "done"    // the peer's whole dump was adopted
	BulkFailed  BulkState = "failed"  // the pull broke off; records adopted so far stay
	BulkSkipped BulkState = "skipped" // the peer could not be reached within BulkTimeout
)

// PeerStats is what a Node knows of one peer.
type PeerStats struct {
	Addr netip.AddrPort // the peer's Listen address, as configured
	// NodeID is the id the peer's datagrams carry; 0 until it is heard.
	NodeID uint8
	// LastHeard is when the peer's last accepted datagram arrived; zero
	// if it was never heard.
	LastHeard time.Time
	// Datagrams and Records count what was accepted from the peer.
	Datagrams, Records uint64
	// Gaps and Late are the peer's share of Stats.Gaps and Stats.Late.
	Gaps, Late uint64
	// Epoch is the peer's current epoch: its start time, in eighths of a
	// second since 2025.
	Epoch uint32
	// Bulk is where the last PullAll stands with the peer; BulkRecords
	// counts the records it adopted, in BulkDuration.
	Bulk         BulkState
	BulkRecords  uint64
	BulkDuration time.Duration
	// BulkError says why the pull failed or was skipped.
	BulkError string
}

// counters are the totals of Stats, updated by several goroutines.
type counters struct {
	datagramsSent, recordsSent          atomic.Uint64
	datagramsReceived, recordsReceived  atomic.Uint64
	sendErrors, queueDrops, invalid     atomic.Uint64
	notPeer, malformed, authFailures    atomic.Uint64
	wrongCluster, sameNodeID, replays   atomic.Uint64
	gaps, late                          atomic.Uint64
	bulkFailed, bulkSkipped, bulkServed atomic.Uint64
}

// peer is one configured peer and what is known of it.
type peer struct {
	addr netip.AddrPort

	mu sync.Mutex
	st PeerStats
}

func (p *peer) stats() PeerStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// accepted notes a datagram of records from the peer, as node id node in
// the given epoch, that the replay window accepted with verdict v.
func (p *peer) accepted(node uint8, epoch uint32, records int, v verdict) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st.NodeID = node
	p.st.Epoch = epoch
	p.st.LastHeard = time.Now()
	p.st.Datagrams++
	p.st.Records += uint64(records)
	p.st.Gaps += uint64(v.gaps)
	if v.late {
		p.st.Late++
	}
}

// Stats returns a snapshot of the counters; it is safe to call at any
// time from any goroutine.
func (n *Node) Stats() Stats {
	c := &n.ctr
	s := Stats{
		DatagramsSent:     c.datagramsSent.Load(),
		RecordsSent:       c.recordsSent.Load(),
		DatagramsReceived: c.datagramsReceived.Load(),
		RecordsReceived:   c.recordsReceived.Load(),
		SendErrors:        c.sendErrors.Load(),
		QueueDrops:        c.queueDrops.Load(),
		Invalid:           c.invalid.Load(),
		NotPeer:           c.notPeer.Load(),
		Malformed:         c.malformed.Load(),
		AuthFailures:      c.authFailures.Load(),
		WrongCluster:      c.wrongCluster.Load(),
		SameNodeID:        c.sameNodeID.Load(),
		Replays:           c.replays.Load(),
		Gaps:              c.gaps.Load(),
		Late:              c.late.Load(),
		BulkFailed:        c.bulkFailed.Load(),
		BulkSkipped:       c.bulkSkipped.Load(),
		BulkServed:        c.bulkServed.Load(),
		Peers:             make([]PeerStats, len(n.peerList)),
	}
	for i, p := range n.peerList {
		s.Peers[i] = p.stats()
	}
	return s
}
