package connsync

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// receiver is the receive loop's state, owned by its goroutine.
type receiver struct {
	n       *Node
	mac     *macer
	windows map[uint8]*window // by sender node id
	recs    []Record          // reused for every datagram
}

// readLoop receives datagrams until the socket is closed.
func (n *Node) readLoop() error {
	rx := receiver{n: n, mac: newMACer(n.cfg.Key), windows: map[uint8]*window{}}
	// One byte more than a datagram may have, to tell an oversized one
	// from one that just fits.
	buf := make([]byte, maxDatagram+1)
	for {
		size, from, err := n.udp.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("connsync: receive: %w", err)
		}
		rx.receive(buf[:size], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
	}
}

// receive checks one datagram, in order of what can be believed: who sent
// it, whether it is authentic, what it says, whether it is fresh; then it
// hands it to the Handler.
func (rx *receiver) receive(b []byte, from netip.AddrPort) {
	n := rx.n
	p := n.peers[from]
	if p == nil {
		n.ctr.notPeer.Add(1)
		return
	}
	if len(b) < headerLen+macLen || len(b) > maxDatagram {
		n.ctr.malformed.Add(1)
		return
	}
	msg, ok := rx.mac.open(b)
	if !ok {
		n.ctr.authFailures.Add(1)
		return
	}
	m, err := parseMessage(msg, rx.recs)
	if m.recs != nil {
		rx.recs = m.recs
	}
	switch {
	case err != nil:
		n.ctr.malformed.Add(1)
		n.cfg.Log.Debug("connsync: malformed datagram", "peer", from, "err", err)
		return
	case m.typ != typeDelta && m.typ != typeHeartbeat:
		n.ctr.malformed.Add(1) // bulk frames belong on TCP
		return
	case m.cluster != n.cfg.ClusterID:
		n.ctr.wrongCluster.Add(1)
		return
	case m.node == n.cfg.NodeID:
		n.ctr.sameNodeID.Add(1)
		return
	}
	w := rx.windows[m.node]
	if w == nil {
		w = &window{}
		rx.windows[m.node] = w
	}
	v := w.admit(m.epoch, m.seq)
	if !v.ok {
		n.ctr.replays.Add(1)
		return
	}
	n.ctr.datagramsReceived.Add(1)
	n.ctr.recordsReceived.Add(uint64(len(m.recs)))
	n.ctr.gaps.Add(uint64(v.gaps))
	if v.late {
		n.ctr.late.Add(1)
	}
	p.accepted(m.node, w.epoch, len(m.recs), v)

	if m.typ == typeHeartbeat {
		n.h.Heard(m.node, from, m.hb)
	} else {
		n.h.Adopt(m.node, m.recs)
	}
}
