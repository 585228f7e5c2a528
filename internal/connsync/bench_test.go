package connsync

import (
	"context"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkEncodeSeal measures a record's cost on the send path: checked,
// encoded, and its share of a datagram's header and mac.
func BenchmarkEncodeSeal(b *testing.B) {
	recs := make([]Record, 1024)
	for i := range recs {
		recs[i] = rec4(i)
	}
	mac := newMACer(testKey)
	per := (maxDatagram - headerLen - macLen) / recordLen4
	buf := make([]byte, headerLen, maxDatagram)
	count := 0
	var seq uint32
	for i := 0; b.Loop(); i++ {
		r := &recs[i%len(recs)]
		if err := r.validate(); err != nil {
			b.Fatal(err)
		}
		buf = appendRecord(buf, r)
		count++
		if count == per {
			seq++
			header{typ: typeDelta, node: 1, count: uint16(count), epoch: 1, seq: seq, length: uint16(len(buf) - headerLen)}.put(buf)
			buf = mac.appendMAC(buf, buf)
			buf, count = buf[:headerLen], 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// counter is a Handler that only counts what it adopts.
type counter struct{ n atomic.Uint64 }

func (c *counter) Adopt(_ uint8, recs []Record)                        { c.n.Add(uint64(len(recs))) }
func (c *counter) Heard(uint8, netip.AddrPort, Heartbeat)              {}
func (c *counter) Dump(context.Context, func(Record) bool) (err error) { return nil }

// BenchmarkLoopback measures records per second from one node to another
// on loopback, send queue, sockets and receive checks included. UDP has
// no flow control, so the sender keeps at most inFlight records ahead of
// the receiver, as a daemon's steady stream of connections would.
func BenchmarkLoopback(b *testing.B) {
	const inFlight = 8192
	rb := &counter{}
	a, _ := pair(b, &counter{}, rb)
	recs := make([]Record, 1024)
	for i := range recs {
		recs[i] = rec4(i)
	}
	b.ResetTimer()
	for i := range b.N {
		a.Send(recs[i%len(recs)])
		for stall := time.Now(); uint64(i+1) > rb.n.Load()+inFlight; {
			if time.Since(stall) > time.Second {
				b.Fatalf("receiver stalled at %d records of %d sent: %+v", rb.n.Load(), i+1, a.Stats())
			}
			runtime.Gosched()
		}
	}
	a.Flush()
	deadline := time.Now().Add(time.Second)
	for rb.n.Load() < uint64(b.N) && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	got := rb.n.Load()
	b.StopTimer()
	b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(uint64(b.N)-got), "lost")
}
