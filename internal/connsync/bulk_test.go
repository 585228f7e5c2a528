package connsync

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBulkPull(t *testing.T) {
	var dump []Record
	for i := range 100_000 {
		if i%1000 == 999 { // family changes cut chunks short
			dump = append(dump, rec6(i))
		} else {
			dump = append(dump, rec4(i))
		}
	}
	ra := &recorder{}
	a, b := pair(t, ra, &recorder{dump: dump})
	if err := a.PullAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := ra.adopted(); !slices.Equal(got, dump) {
		t.Errorf("adopted %d records, not the %d dumped in order", len(got), len(dump))
	}
	ra.mu.Lock()
	if slices.ContainsFunc(ra.froms, func(from uint8) bool { return from != 2 }) {
		t.Errorf("records came from nodes %v, want only node 2", ra.froms)
	}
	ra.mu.Unlock()
	ps := a.Stats().Peers[0]
	if ps.Bulk != BulkDone || ps.BulkRecords != 100_000 || ps.NodeID != 2 || ps.BulkDuration <= 0 || ps.BulkError != "" {
		t.Errorf("peer stats %+v", ps)
	}
	if st := b.Stats(); st.BulkServed != 1 {
		t.Errorf("b served %d dumps, want 1", st.BulkServed)
	}
}

func TestBulkAlone(t *testing.T) {
	a := start(t, testConfig(1), &recorder{})
	if err := a.PullAll(t.Context()); err != nil {
		t.Errorf("PullAll without peers: %v", err)
	}
}

func TestBulkSkipsUnreachable(t *testing.T) {
	cfg := testConfig(1, freeAddr(t)) // nothing listens there
	cfg.BulkTimeout = 300 * time.Millisecond
	a := start(t, cfg, &recorder{})
	began := time.Now()
	if err := a.PullAll(t.Context()); err != nil {
		t.Errorf("PullAll: %v, want a skipped peer to be no error", err)
	}
	if took := time.Since(began); took < cfg.BulkTimeout || took > cfg.BulkTimeout+time.Second {
		t.Errorf("PullAll took %s; want it to try for BulkTimeout %s, and not much longer", took, cfg.BulkTimeout)
	}
	st := a.Stats()
	if ps := st.Peers[0]; ps.Bulk != BulkSkipped || !strings.Contains(ps.BulkError, "not reachable") || st.BulkSkipped != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestBulkTimeoutFails(t *testing.T) {
	// b's dump sends a chunk, then never ends; Run's shutdown at the end
	// of the test must still end it.
	perChunk := maxChunkPayload / recordLen4
	dump := make([]Record, perChunk+1)
	for i := range dump {
		dump[i] = rec4(i)
	}
	ra := &recorder{}
	cfgA := testConfig(1)
	cfgA.Listen = freeAddr(t)
	cfgA.BulkTimeout = 200 * time.Millisecond
	b := start(t, testConfig(2, cfgA.Listen), &recorder{dump: dump, hang: true})
	cfgA.Peers = []netip.AddrPort{b.Addr()}
	a := start(t, cfgA, ra)
	err := a.PullAll(t.Context())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("PullAll: %v, want deadline exceeded", err)
	}
	if ps := a.Stats().Peers[0]; ps.Bulk != BulkFailed || ps.BulkRecords != uint64(perChunk) || ra.count() != perChunk {
		t.Errorf("peer stats %+v; want failed after %d records", ps, perChunk)
	}
}

func TestBulkDumpError(t *testing.T) {
	ra := &recorder{}
	a, _ := pair(t, ra, &recorder{dump: []Record{rec4(1)}, dumpErr: errors.New("map iteration aborted")})
	err := a.PullAll(t.Context())
	if err == nil || !strings.Contains(err.Error(), "closed before the dump ended") {
		t.Errorf("PullAll: %v", err)
	}
	if ps := a.Stats().Peers[0]; ps.Bulk != BulkFailed {
		t.Errorf("peer stats %+v", ps)
	}
}

func TestBulkServerRefusesWrongKey(t *testing.T) {
	cfgA := testConfig(1)
	cfgA.Listen = freeAddr(t)
	cfgA.Key = []byte("not the cluster's key")
	b := start(t, testConfig(2, cfgA.Listen), &recorder{dump: []Record{rec4(1)}})
	cfgA.Peers = []netip.AddrPort{b.Addr()}
	a := start(t, cfgA, &recorder{})
	if err := a.PullAll(t.Context()); err == nil {
		t.Error("PullAll with the wrong key succeeded")
	}
	waitFor(t, time.Second, "b counted the request", func() bool { return b.Stats().AuthFailures == 1 })
}

func TestBulkServerRefusesNonPeer(t *testing.T) {
	b := start(t, testConfig(2, netip.MustParseAddrPort("127.0.0.1:7")), &recorder{dump: []Record{rec4(1)}})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c, err := d.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("b answered a connection from a non-peer")
	}
	if n := b.Stats().NotPeer; n != 1 {
		t.Errorf("NotPeer = %d, want 1", n)
	}
}

// fakeServer answers one bulk request, as a peer at its address would,
// with the frames answer makes for the request's nonce.
func fakeServer(t *testing.T, answer func(nonce uint32) [][]byte) netip.AddrPort {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fr := frameReader{r: c, mac: newMACer(testKey)}
		msg, err := fr.next()
		if err != nil {
			t.Error(err)
			return
		}
		req, err := parseMessage(msg, nil)
		if err != nil {
			t.Error(err)
			return
		}
		for _, f := range answer(req.epoch) {
			if _, err := c.Write(f); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return netip.MustParseAddrPort(ln.Addr().String())
}

func chunkFrame(node uint8, nonce, seq uint32, recs ...Record) []byte {
	f := newFrame(len(recs) * recordLen6)
	for i := range recs {
		f = appendRecord(f, &recs[i])
	}
	h := header{typ: typeBulkChunk, node: node, cluster: testCluster, count: uint16(len(recs)), epoch: nonce, seq: seq}
	return finishFrame(f, h, newMACer(testKey))
}

func endFrame(nonce, seq, records, chunks uint32) []byte {
	f := appendBulkEnd(newFrame(bulkEndLen), bulkEnd{records: records, chunks: chunks})
	h := header{typ: typeBulkEnd, node: 2, cluster: testCluster, epoch: nonce, seq: seq}
	return finishFrame(f, h, newMACer(testKey))
}

func TestBulkPullChecksFrames(t *testing.T) {
	r1, r2 := rec4(1), rec4(2)
	for _, tc := range []struct {
		name    string
		answer  func(nonce uint32) [][]byte
		want    string // in PullAll's error; "" for success
		adopted int
		counter func(Stats) uint64 // must be 1
	}{
		{"good", func(n uint32) [][]byte {
			return [][]byte{chunkFrame(2, n, 0, r1), chunkFrame(2, n, 1, r2), endFrame(n, 2, 2, 2)}
		}, "", 2, nil},
		{"empty dump", func(n uint32) [][]byte { return [][]byte{endFrame(n, 0, 0, 0)} }, "", 0, nil},
		{"tampered chunk", func(n uint32) [][]byte {
			f := chunkFrame(2, n, 0, r1)
			f[len(f)-macLen-3] ^= 1 // the backend port
			return [][]byte{f, endFrame(n, 1, 1, 1)}
		}, "wrong mac", 0, func(s Stats) uint64 { return s.AuthFailures }},
		{"wrong nonce", func(n uint32) [][]byte {
			return [][]byte{chunkFrame(2, n+1, 0, r1), endFrame(n+1, 1, 1, 1)}
		}, "wrong nonce", 0, func(s Stats) uint64 { return s.Replays }},
		{"chunk out of order", func(n uint32) [][]byte {
			return [][]byte{chunkFrame(2, n, 0, r1), chunkFrame(2, n, 2, r2), endFrame(n, 3, 2, 2)}
		}, "has seq 2", 1, func(s Stats) uint64 { return s.Replays }},
		{"end miscounts", func(n uint32) [][]byte {
			return [][]byte{chunkFrame(2, n, 0, r1), endFrame(n, 1, 5, 1)}
		}, "claiming 5 records", 1, func(s Stats) uint64 { return s.Malformed }},
		{"node changes", func(n uint32) [][]byte {
			return [][]byte{chunkFrame(2, n, 0, r1), chunkFrame(3, n, 1, r2), endFrame(n, 2, 2, 2)}
		}, "after frames from node 2", 1, func(s Stats) uint64 { return s.Malformed }},
		{"closed early", func(n uint32) [][]byte {
			return [][]byte{chunkFrame(2, n, 0, r1)}
		}, "closed before the dump ended", 1, nil},
		{"oversized frame", func(n uint32) [][]byte {
			return [][]byte{{0xff, 0xff, 0xff, 0xff}}
		}, "frame size", 0, func(s Stats) uint64 { return s.Malformed }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ra := &recorder{}
			a := start(t, testConfig(1, fakeServer(t, tc.answer)), ra)
			err := a.PullAll(t.Context())
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("PullAll: %v, want an error mentioning %q", err, tc.want)
			}
			if got := ra.count(); got != tc.adopted {
				t.Errorf("adopted %d records, want %d", got, tc.adopted)
			}
			st := a.Stats()
			wantState := BulkFailed
			if tc.want == "" {
				wantState = BulkDone
			}
			if st.Peers[0].Bulk != wantState {
				t.Errorf("bulk state %q, want %q", st.Peers[0].Bulk, wantState)
			}
			if tc.counter != nil && tc.counter(st) != 1 {
				t.Errorf("not counted: %+v", st)
			}
		})
	}
}
