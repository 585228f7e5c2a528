package connsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// acceptLoop serves bulk pulls until the listener is closed, then waits
// for the dumps under way, which end with ctx.
func (n *Node) acceptLoop(ctx context.Context) error {
	var dumps sync.WaitGroup
	defer dumps.Wait()
	for {
		c, err := n.tcp.AcceptTCP()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			// Such as running out of file descriptors: wait for
			// some to be closed rather than spin or give up.
			n.cfg.Log.Warn("connsync: accept bulk connection", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		from := c.RemoteAddr().(*net.TCPAddr).AddrPort()
		// A puller connects from any port, so only its address counts.
		if !n.peerIPs[from.Addr().Unmap()] {
			n.ctr.notPeer.Add(1)
			c.Close()
			continue
		}
		select {
		case n.bulkSlots <- struct{}{}:
		default:
			n.cfg.Log.Warn("connsync: too many bulk pulls at once; refusing one", "from", from)
			c.Close()
			continue
		}
		dumps.Go(func() {
			defer func() { <-n.bulkSlots }()
			defer c.Close()
			if err := n.serveDump(ctx, c); err != nil {
				n.cfg.Log.Warn("connsync: bulk dump not served", "to", from, "err", err)
			}
		})
	}
}

// serveDump answers one bulk request on c with the Handler's Dump.
func (n *Node) serveDump(ctx context.Context, c net.Conn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The puller gives up after its BulkTimeout; so does the dump.
	c.SetDeadline(time.Now().Add(n.cfg.BulkTimeout))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	mac := newMACer(n.cfg.Key)
	fr := frameReader{r: c, mac: mac}
	msg, err := fr.next()
	if err != nil {
		n.countFrameError(err)
		return fmt.Errorf("read request: %w", err)
	}
	req, err := parseMessage(msg, nil)
	switch {
	case err != nil:
		n.ctr.malformed.Add(1)
		return fmt.Errorf("read request: %w", err)
	case req.typ != typeBulkRequest:
		n.ctr.malformed.Add(1)
		return fmt.Errorf("read request: frame of type %d", req.typ)
	case req.cluster != n.cfg.ClusterID:
		n.ctr.wrongCluster.Add(1)
		return fmt.Errorf("request of cluster %d", req.cluster)
	case req.node == n.cfg.NodeID:
		n.ctr.sameNodeID.Add(1)
		return fmt.Errorf("request from node id %d, this node's own", req.node)
	}

	d := dumpWriter{
		n:     n,
		w:     c,
		mac:   mac,
		hdr:   header{node: n.cfg.NodeID, cluster: n.cfg.ClusterID, epoch: req.epoch},
		frame: newFrame(maxChunkPayload),
	}
	if err := n.h.Dump(ctx, d.add); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	if err := d.end(); err != nil {
		return err
	}
	n.ctr.bulkServed.Add(1)
	return nil
}

// dumpWriter packs records into BULK_CHUNK frames and writes them.
type dumpWriter struct {
	n     *Node
	w     io.Writer
	mac   *macer
	hdr   header // node, cluster and the request's nonce
	frame []byte
	count int  // records in frame
	v6    bool // their family
	// records and chunks count what was written.
	records, chunks uint32
	err             error
}

// add is Dump's yield.
func (d *dumpWriter) add(r Record) bool {
	if d.err != nil {
		return false
	}
	if err := r.validate(); err != nil {
		d.n.ctr.invalid.Add(1)
		return true
	}
	v6, size := r.is6(), r.size()
	payload := len(d.frame) - framePrefix - headerLen
	if d.count > 0 && (d.v6 != v6 || payload+size > maxChunkPayload) && !d.flush() {
		return false
	}
	d.v6 = v6
	d.frame = appendRecord(d.frame, &r)
	d.count++
	return true
}

// flush writes the frame's records as a chunk.
func (d *dumpWriter) flush() bool {
	h := d.hdr
	h.typ, h.count, h.seq = typeBulkChunk, uint16(d.count), d.chunks
	if _, err := d.w.Write(finishFrame(d.frame, h, d.mac)); err != nil {
		d.err = fmt.Errorf("write chunk %d: %w", d.chunks, err)
		return false
	}
	d.records += uint32(d.count)
	d.chunks++
	d.frame, d.count = d.frame[:framePrefix+headerLen], 0
	return true
}

// end writes the last chunk and BULK_END, whose seq follows the chunks'.
func (d *dumpWriter) end() error {
	if d.count > 0 {
		d.flush()
	}
	if d.err != nil {
		return d.err
	}
	h := d.hdr
	h.typ, h.seq = typeBulkEnd, d.chunks
	f := appendBulkEnd(d.frame[:framePrefix+headerLen], bulkEnd{records: d.records, chunks: d.chunks})
	if _, err := d.w.Write(finishFrame(f, h, d.mac)); err != nil {
		return fmt.Errorf("write end: %w", err)
	}
	return nil
}
