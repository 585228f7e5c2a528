package connsync

import (
	"context"
	"time"
)

// outgoing is a DELTA datagram waiting for the writer: room for the
// header, then count records.
type outgoing struct {
	buf   []byte
	count int
}

// Send queues r for every peer. It never blocks: r joins the datagram
// being filled, which is queued when the next record could not fit, or
// after BatchInterval. When the queue is full the datagram is dropped
// and counted (Stats.QueueDrops); so is a record that cannot be encoded
// (Stats.Invalid).
func (n *Node) Send(r Record) {
	if len(n.peerList) == 0 {
		return
	}
	if err := r.validate(); err != nil {
		n.ctr.invalid.Add(1)
		n.cfg.Log.Debug("connsync: record not sent", "err", err)
		return
	}
	v6, size := r.is6(), r.size()
	n.batchMu.Lock()
	defer n.batchMu.Unlock()
	if n.batchCount > 0 && n.batchV6 != v6 {
		n.queueLocked() // a datagram holds one address family
	}
	if n.batchCount == 0 {
		n.batch = make([]byte, headerLen, maxDatagram)
		n.batchV6 = v6
		select {
		case n.kick <- struct{}{}:
		default: // the writer has a kick pending already
		}
	}
	n.batch = appendRecord(n.batch, &r)
	n.batchCount++
	if len(n.batch)+size+macLen > maxDatagram {
		n.queueLocked()
	}
}

// Flush queues the partly filled datagram, if any, for sending now. Run
// sends the queue, and flushes once more when its context ends.
func (n *Node) Flush() {
	n.batchMu.Lock()
	defer n.batchMu.Unlock()
	if n.batchCount > 0 {
		n.queueLocked()
	}
}

func (n *Node) queueLocked() {
	select {
	case n.out <- outgoing{buf: n.batch, count: n.batchCount}:
	default:
		n.ctr.queueDrops.Add(uint64(n.batchCount))
	}
	n.batch, n.batchCount = nil, 0
}

// writeLoop sends queued datagrams, and flushes a partly filled one
// BatchInterval after its first record. When ctx ends it sends what is
// queued and returns.
func (n *Node) writeLoop(ctx context.Context) {
	timer := time.NewTimer(n.cfg.BatchInterval)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case o := <-n.out:
			n.transmit(typeDelta, o.count, o.buf)
		case <-n.kick:
			timer.Reset(n.cfg.BatchInterval)
		case <-timer.C:
			n.Flush()
		case <-ctx.Done():
			n.Flush()
			for {
				select {
				case o := <-n.out:
					n.transmit(typeDelta, o.count, o.buf)
				default:
					return
				}
			}
		}
	}
}

// SendHeartbeat sends hb to every peer at once, ahead of queued records.
func (n *Node) SendHeartbeat(hb Heartbeat) {
	b := appendHeartbeat(make([]byte, headerLen, headerLen+heartbeatLen+macLen), hb)
	n.transmit(typeHeartbeat, 0, b)
}

// transmit numbers, seals and sends the datagram in b (room for the
// header, then the payload; cap for the mac) to every peer.
func (n *Node) transmit(typ msgType, count int, b []byte) {
	n.sendMu.Lock()
	defer n.sendMu.Unlock()
	n.seq++
	if n.seq == 0 {
		// Wrapped: a new epoch makes receivers reset their windows
		// rather than take seq 1 for a replay.
		n.epoch = max(n.epoch+1, epochAt(time.Now()))
		n.seq = 1
	}
	header{
		typ:     typ,
		node:    n.cfg.NodeID,
		cluster: n.cfg.ClusterID,
		count:   uint16(count),
		epoch:   n.epoch,
		seq:     n.seq,
		length:  uint16(len(b) - headerLen),
	}.put(b)
	b = n.sendMAC.appendMAC(b, b)
	for _, p := range n.peerList {
		if _, err := n.udp.WriteToUDPAddrPort(b, p.addr); err != nil {
			n.ctr.sendErrors.Add(1)
			n.cfg.Log.Debug("connsync: send failed", "peer", p.addr, "err", err)
			continue
		}
		n.ctr.datagramsSent.Add(1)
		n.ctr.recordsSent.Add(uint64(count))
	}
}
