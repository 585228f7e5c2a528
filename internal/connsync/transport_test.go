package connsync

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/ha"
)

func TestDeltasDelivered(t *testing.T) {
	// A third peer, a raw socket, sees the datagrams as they travel.
	watch := udpSocket(t)
	ra, rb := &recorder{}, &recorder{}
	a, b := pair(t, ra, rb, addrOf(watch))

	var want []Record
	for i := range 1000 {
		want = append(want, rec4(i))
		a.Send(want[i])
	}
	waitFor(t, time.Second, "1000 records adopted", func() bool { return rb.count() >= 1000 })

	if got := rb.adopted(); !slices.Equal(got, want) {
		t.Errorf("b adopted %d records, not the 1000 sent in order", len(got))
	}
	perDatagram := (maxDatagram - headerLen - macLen) / recordLen4
	rb.mu.Lock()
	for _, n := range rb.batches {
		if n > perDatagram {
			t.Errorf("a datagram carried %d records, more than fit in %d bytes", n, maxDatagram)
		}
	}
	if slices.ContainsFunc(rb.froms, func(from uint8) bool { return from != 1 }) {
		t.Errorf("records came from nodes %v, want only node 1", rb.froms)
	}
	rb.mu.Unlock()

	datagrams := (1000 + perDatagram - 1) / perDatagram
	buf := make([]byte, 65536)
	for range datagrams {
		watch.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := watch.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n > maxDatagram {
			t.Errorf("datagram of %d bytes, more than %d", n, maxDatagram)
		}
	}

	sa, sb := a.Stats(), b.Stats()
	if sa.RecordsSent != 2000 || sa.DatagramsSent != 2*uint64(datagrams) {
		t.Errorf("a sent %d records in %d datagrams, want 2000 in %d (two peers)", sa.RecordsSent, sa.DatagramsSent, 2*datagrams)
	}
	if sb.RecordsReceived != 1000 || sb.Gaps != 0 || sb.Peers[0].NodeID != 1 || sb.Peers[0].Records != 1000 {
		t.Errorf("b's stats: %+v", sb)
	}
}

func TestFamiliesKeepOrder(t *testing.T) {
	rb := &recorder{}
	a, _ := pair(t, &recorder{}, rb)
	want := []Record{rec4(1), rec6(2), rec6(3), rec4(4)}
	for _, r := range want {
		a.Send(r)
	}
	a.Flush()
	waitFor(t, time.Second, "4 records adopted", func() bool { return rb.count() >= 4 })
	if got := rb.adopted(); !slices.Equal(got, want) {
		t.Errorf("adopted %+v\nwant %+v", got, want)
	}
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if !slices.Equal(rb.batches, []int{1, 2, 1}) {
		t.Errorf("datagrams of %v records, want one per run of a family: [1 2 1]", rb.batches)
	}
}

func TestGapsCounted(t *testing.T) {
	p := newRawPeer(t)
	for _, seq := range []uint32{1, 2, 5, 6, 4, 4} {
		p.seq = seq - 1
		p.send(p.delta(int(seq)))
	}
	p.seq = 6
	p.settle()
	st := p.b.Stats()
	if st.Gaps != 2 || st.Late != 1 || st.Replays != 1 {
		t.Errorf("gaps %d, late %d, replays %d; want 2, 1, 1", st.Gaps, st.Late, st.Replays)
	}
	if ps := st.Peers[0]; ps.Gaps != 2 || ps.Late != 1 || ps.Datagrams != 6 {
		t.Errorf("peer stats %+v", ps)
	}
}

func TestHeartbeatDelivered(t *testing.T) {
	rb := &recorder{}
	a, _ := pair(t, &recorder{}, rb)
	hb := Heartbeat{Priority: 150, Role: ha.RoleMaster, Ready: true, AdvertInterval: time.Second}
	a.SendHeartbeat(hb)
	waitFor(t, time.Second, "heartbeat heard", func() bool { return len(rb.heartbeats()) > 0 })
	want := heard{from: 1, addr: a.Addr(), hb: hb}
	if got := rb.heartbeats(); got[0] != want {
		t.Errorf("heard %+v, want %+v", got[0], want)
	}
}

func TestShutdownSendsQueue(t *testing.T) {
	rb := &recorder{}
	cfg := testConfig(1)
	cfg.Listen = freeAddr(t)
	cfg.BatchInterval = time.Hour
	b := start(t, testConfig(2, cfg.Listen), rb)
	cfg.Peers = []netip.AddrPort{b.Addr()}
	a, err := New(cfg, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	// With an hour's BatchInterval, only shutdown sends this record.
	a.Send(rec4(1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "queued record adopted", func() bool { return rb.count() == 1 })
}

func TestSendNeverBlocks(t *testing.T) {
	cfg := testConfig(1, netip.MustParseAddrPort("127.0.0.1:9"))
	a, err := New(cfg, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	// Nobody drains the queue before Run.
	const n = 50000
	for i := range n {
		a.Send(rec4(i))
	}
	bad := rec4(0)
	bad.Op = 0
	a.Send(bad)
	// The queue takes queueDatagrams full datagrams; the datagrams
	// after them are dropped, the last one still being filled.
	per := (maxDatagram - headerLen - macLen) / recordLen4
	want := uint64((n/per - queueDatagrams) * per)
	if st := a.Stats(); st.QueueDrops != want || st.Invalid != 1 {
		t.Errorf("queue drops %d, invalid %d; want %d and 1", st.QueueDrops, st.Invalid, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Run(ctx); err == nil {
		t.Error("second Run did not fail")
	}
}
