package connsync

import (
	"net"
	"slices"
	"testing"
	"time"
)

// rawPeer is a test's stand-in for a peer: a UDP socket that node b (id
// 2) lists as its peer, sending datagrams crafted with the cluster's key
// as node 9.
type rawPeer struct {
	t       *testing.T
	conn    *net.UDPConn
	b       *Node
	rec     *recorder
	epoch   uint32
	seq     uint32
	markers int // sent by settle
}

func newRawPeer(t *testing.T) *rawPeer {
	conn := udpSocket(t)
	rec := &recorder{}
	b := start(t, testConfig(2, addrOf(conn)), rec)
	return &rawPeer{t: t, conn: conn, b: b, rec: rec, epoch: 1000}
}

// delta is a valid DELTA datagram of one record with the next seq.
func (p *rawPeer) delta(i int) []byte {
	p.seq++
	r := rec4(i)
	return datagram(testKey, header{typ: typeDelta, node: 9, cluster: testCluster, count: 1, epoch: p.epoch, seq: p.seq},
		appendRecord(nil, &r))
}

func (p *rawPeer) send(b []byte) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDPAddrPort(b, p.b.Addr()); err != nil {
		p.t.Fatal(err)
	}
}

// settle sends a valid datagram and waits until b adopted its record: b
// has then handled everything sent before it.
func (p *rawPeer) settle() {
	p.t.Helper()
	p.markers++
	i := 1<<20 + p.markers
	p.send(p.delta(i))
	marker := rec4(i)
	waitFor(p.t, time.Second, "marker datagram adopted", func() bool { return slices.Contains(p.rec.adopted(), marker) })
}

func TestTamperedDatagramsRejected(t *testing.T) {
	p := newRawPeer(t)
	good := p.delta(1)
	for i := range good {
		bad := append([]byte(nil), good...)
		bad[i] ^= 0x20
		p.send(bad)
	}
	p.settle()
	st := p.b.Stats()
	if st.AuthFailures != uint64(len(good)) {
		t.Errorf("AuthFailures = %d after %d tampered datagrams", st.AuthFailures, len(good))
	}
	if n := p.rec.count(); n != 1 {
		t.Errorf("adopted %d records, want only the marker's", n)
	}
}

func TestDatagramChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		// send sends datagrams to p.b; the one that must be refused
		// comes last.
		send func(p *rawPeer)
		want func(Stats) uint64
	}{
		{"wrong key", func(p *rawPeer) {
			r := rec4(1)
			p.send(datagram([]byte("another key of 16+ bytes"),
				header{typ: typeDelta, node: 9, cluster: testCluster, count: 1, epoch: p.epoch, seq: 99}, appendRecord(nil, &r)))
		}, func(s Stats) uint64 { return s.AuthFailures }},
		{"replay", func(p *rawPeer) {
			d := p.delta(1)
			p.send(d)
			p.send(d)
		}, func(s Stats) uint64 { return s.Replays }},
		{"older epoch", func(p *rawPeer) {
			p.send(p.delta(1))
			p.epoch--
			p.send(p.delta(2))
			p.epoch++
		}, func(s Stats) uint64 { return s.Replays }},
		{"wrong cluster", func(p *rawPeer) {
			p.send(datagram(testKey, header{typ: typeHeartbeat, node: 9, cluster: testCluster + 1, epoch: p.epoch, seq: 99},
				appendHeartbeat(nil, Heartbeat{})))
		}, func(s Stats) uint64 { return s.WrongCluster }},
		{"this node's own id", func(p *rawPeer) {
			p.send(datagram(testKey, header{typ: typeHeartbeat, node: 2, cluster: testCluster, epoch: p.epoch, seq: 99},
				appendHeartbeat(nil, Heartbeat{})))
		}, func(s Stats) uint64 { return s.SameNodeID }},
		{"bulk frame over UDP", func(p *rawPeer) {
			p.send(datagram(testKey, header{typ: typeBulkRequest, node: 9, cluster: testCluster, epoch: p.epoch, seq: 99}, nil))
		}, func(s Stats) uint64 { return s.Malformed }},
		{"oversized", func(p *rawPeer) {
			p.send(datagram(testKey, header{typ: typeBulkChunk, node: 9, cluster: testCluster, epoch: p.epoch, seq: 99},
				make([]byte, maxDatagram)))
		}, func(s Stats) uint64 { return s.Malformed }},
		{"not a peer", func(p *rawPeer) {
			if _, err := udpSocket(p.t).WriteToUDPAddrPort(p.delta(1), p.b.Addr()); err != nil {
				p.t.Fatal(err)
			}
		}, func(s Stats) uint64 { return s.NotPeer }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newRawPeer(t)
			p.settle()
			before := p.rec.count()
			tc.send(p)
			p.settle()
			if got := tc.want(p.b.Stats()); got != 1 {
				t.Errorf("counted %d, want 1; stats %+v", got, p.b.Stats())
			}
			if got := p.rec.count() - before; got > 2 {
				t.Errorf("adopted %d records, want at most the first datagram's and the marker's", got)
			}
			if h := p.rec.heartbeats(); len(h) != 0 {
				t.Errorf("heard %+v", h)
			}
		})
	}
}

func TestNewEpochAccepted(t *testing.T) {
	p := newRawPeer(t)
	p.settle()
	p.settle()
	p.epoch, p.seq = p.epoch+1, 0 // the peer restarted
	p.settle()
	st := p.b.Stats()
	if st.Replays != 0 || st.DatagramsReceived != 3 {
		t.Errorf("after a restart: %d replays, %d datagrams received, want 0 and 3", st.Replays, st.DatagramsReceived)
	}
	if got := st.Peers[0]; got.Epoch != p.epoch || got.NodeID != 9 || got.Addr != addrOf(p.conn) {
		t.Errorf("peer stats %+v, want epoch %d of node 9 at %s", got, p.epoch, addrOf(p.conn))
	}
}
