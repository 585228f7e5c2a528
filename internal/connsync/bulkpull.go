package connsync

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// PullAll fetches every peer's bulk dump over TCP, all peers at once, and
// passes the records to the Handler's Adopt, a chunk at a time, as they
// arrive. It returns when every peer is done, failed or skipped.
//
// A peer that cannot be reached within BulkTimeout is skipped with a
// warning, so that a node alone still becomes ready. A pull that breaks
// off (a wrong mac, nonce or order, a closed connection, BulkTimeout
// passing) fails; the records adopted until then stay, being authentic.
// PullAll returns an error naming each failed peer, or ctx's error if
// ctx ended; skipped peers are no error.
func (n *Node) PullAll(ctx context.Context) error {
	errs := make([]error, len(n.peerList))
	var pulls sync.WaitGroup
	for i, p := range n.peerList {
		pulls.Go(func() { errs[i] = n.pull(ctx, p) })
	}
	pulls.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// pull fetches one peer's dump and records how it went.
func (n *Node) pull(parent context.Context, p *peer) error {
	start := time.Now()
	p.setBulk(BulkPending, 0, 0, nil)
	ctx, cancel := context.WithTimeout(parent, n.cfg.BulkTimeout)
	defer cancel()

	var records uint64
	c, err := dial(ctx, n.addr.Addr(), p.addr)
	switch {
	case err == nil:
		records, err = n.fetch(ctx, c, p)
		c.Close()
	case parent.Err() == nil:
		n.ctr.bulkSkipped.Add(1)
		err = fmt.Errorf("not reachable within BulkTimeout %s: %w", n.cfg.BulkTimeout, err)
		n.cfg.Log.Warn("connsync: bulk sync skips a peer", "peer", p.addr, "err", err)
		p.setBulk(BulkSkipped, 0, time.Since(start), err)
		return nil
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
		}
		n.ctr.bulkFailed.Add(1)
		n.cfg.Log.Warn("connsync: bulk sync from a peer failed", "peer", p.addr, "records", records, "err", err)
		p.setBulk(BulkFailed, records, time.Since(start), err)
		return fmt.Errorf("bulk sync from %s: %w", p.addr, err)
	}
	p.setBulk(BulkDone, records, time.Since(start), nil)
	return nil
}

// dial connects from this node's address to a peer's bulk listener (which
// accepts only its peers' addresses: on a host with several, the route's
// choice of source could be another). While the peer refuses, it tries
// again until ctx ends: when a cluster starts, a peer may be moments away
// from listening.
func dial(ctx context.Context, from netip.Addr, addr netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0))}
	wait := 50 * time.Millisecond
	for {
		c, err := d.DialContext(ctx, "tcp", addr.String())
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// fetch requests a dump on c and adopts it, checking that every frame
// answers this request, in order, from one node. It returns the number
// of records adopted.
func (n *Node) fetch(ctx context.Context, c net.Conn, p *peer) (uint64, error) {
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var nonce [4]byte
	rand.Read(nonce[:])
	mac := newMACer(n.cfg.Key)
	req := header{
		typ:     typeBulkRequest,
		node:    n.cfg.NodeID,
		cluster: n.cfg.ClusterID,
		epoch:   binary.BigEndian.Uint32(nonce[:]),
	}
	if _, err := c.Write(finishFrame(newFrame(0), req, mac)); err != nil {
		return 0, fmt.Errorf("send request: %w", err)
	}

	fr := frameReader{r: c, mac: mac}
	var (
		recs    []Record
		from    uint8
		seq     uint32
		records uint64
	)
	for {
		msg, err := fr.next()
		if err != nil {
			n.countFrameError(err)
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = errors.New("connection closed before the dump ended")
			}
			return records, fmt.Errorf("frame %d: %w", seq, err)
		}
		m, err := parseMessage(msg, recs)
		if err != nil {
			n.ctr.malformed.Add(1)
			return records, fmt.Errorf("frame %d: %w", seq, err)
		}
		if err := n.checkFrame(m, req.epoch, seq, from); err != nil {
			return records, fmt.Errorf("frame %d: %w", seq, err)
		}
		from, seq = m.node, seq+1
		switch m.typ {
		case typeBulkChunk:
			recs = m.recs
			n.h.Adopt(from, m.recs)
			records += uint64(len(m.recs))
			p.noteBulkChunk(from, len(m.recs))
		case typeBulkEnd:
			if uint64(m.end.records) != records || m.end.chunks != seq-1 {
				n.ctr.malformed.Add(1)
				return records, fmt.Errorf("dump ends claiming %d records in %d chunks, got %d in %d",
					m.end.records, m.end.chunks, records, seq-1)
			}
			return records, nil
		default:
			n.ctr.malformed.Add(1)
			return records, fmt.Errorf("frame of type %d in a dump", m.typ)
		}
	}
}

// checkFrame checks that an authentic frame belongs to the dump being
// read: this cluster, this request's nonce, the next seq, the node that
// sent the frames before it (from, unless 0).
func (n *Node) checkFrame(m message, nonce, seq uint32, from uint8) error {
	switch {
	case m.cluster != n.cfg.ClusterID:
		n.ctr.wrongCluster.Add(1)
		return fmt.Errorf("of cluster %d", m.cluster)
	case m.epoch != nonce:
		n.ctr.replays.Add(1)
		return errors.New("answers another request (wrong nonce)")
	case m.seq != seq:
		n.ctr.replays.Add(1)
		return fmt.Errorf("has seq %d", m.seq)
	case m.node == n.cfg.NodeID:
		n.ctr.sameNodeID.Add(1)
		return fmt.Errorf("from node id %d, this node's own", m.node)
	case from != 0 && m.node != from:
		n.ctr.malformed.Add(1)
		return fmt.Errorf("from node %d, after frames from node %d", m.node, from)
	}
	return nil
}

func (p *peer) setBulk(s BulkState, records uint64, took time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st.Bulk, p.st.BulkRecords, p.st.BulkDuration, p.st.BulkError = s, records, took, ""
	if err != nil {
		p.st.BulkError = err.Error()
	}
}

func (p *peer) noteBulkChunk(from uint8, records int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st.NodeID = from
	p.st.BulkRecords += uint64(records)
}
