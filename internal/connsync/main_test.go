package connsync

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Every test must leave no goroutine behind: Run waits for its loops and
// dumps, PullAll for its pulls.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testKey = []byte("a test key, long enough")

const testCluster = 7

// recorder is a Handler that keeps what it is given. Its Dump yields
// dump's records, then waits for ctx to end if hang is set, then returns
// dumpErr.
type recorder struct {
	dump    []Record
	hang    bool
	dumpErr error

	mu      sync.Mutex
	recs    []Record
	batches []int // record counts of Adopt calls
	froms   []uint8
	heard   []heard
}

type heard struct {
	from uint8
	addr netip.AddrPort
	hb   Heartbeat
}

func (r *recorder) Adopt(from uint8, recs []Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, recs...)
	r.batches = append(r.batches, len(recs))
	r.froms = append(r.froms, from)
}

func (r *recorder) Heard(from uint8, addr netip.AddrPort, hb Heartbeat) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heard = append(r.heard, heard{from, addr, hb})
}

func (r *recorder) Dump(ctx context.Context, yield func(Record) bool) error {
	for _, rec := range r.dump {
		if !yield(rec) {
			return ctx.Err()
		}
	}
	if r.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return r.dumpErr
}

func (r *recorder) adopted() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.recs)
}

func (r *recorder) heartbeats() []heard {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.heard)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.recs)
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// testConfig is a node's config on loopback, port chosen by the OS.
func testConfig(id uint8, peers ...netip.AddrPort) Config {
	return Config{
		NodeID:    id,
		ClusterID: testCluster,
		Key:       testKey,
		Listen:    netip.MustParseAddrPort("127.0.0.1:0"),
		Peers:     peers,
	}
}

// start creates a Node and runs it until the test ends.
func start(t testing.TB, cfg Config, h Handler) *Node {
	t.Helper()
	n, err := New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	run(t, n)
	return n
}

func run(t testing.TB, n *Node) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// freeAddr returns a loopback address whose port was free for both UDP
// and TCP a moment ago, for a node whose address its peer must know
// before it starts.
func freeAddr(t testing.TB) netip.AddrPort {
	t.Helper()
	udp, tcp, err := listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	defer tcp.Close()
	return udp.LocalAddr().(*net.UDPAddr).AddrPort()
}

// pair starts nodes 1 (a) and 2 (b), each the other's peer; a may have
// more peers.
func pair(t testing.TB, ha, hb Handler, morePeers ...netip.AddrPort) (a, b *Node) {
	t.Helper()
	cfgA := testConfig(1)
	cfgA.Listen = freeAddr(t)
	b = start(t, testConfig(2, cfgA.Listen), hb)
	cfgA.Peers = append([]netip.AddrPort{b.Addr()}, morePeers...)
	a = start(t, cfgA, ha)
	return a, b
}

// udpSocket is a raw UDP socket on loopback, closed when the test ends.
func udpSocket(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c net.Conn) netip.AddrPort {
	return netip.MustParseAddrPort(c.LocalAddr().String())
}

// rec4 is the i-th of many distinct IPv4 records.
func rec4(i int) Record {
	return Record{
		Op:       OpUpsert,
		Proto:    6,
		FwdState: 3,
		RevState: 4,
		Origin:   1,
		Age:      time.Duration(i%5000) * time.Millisecond,
		Client:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(1024+i%60000)),
		VIP:      netip.MustParseAddrPort("192.0.2.10:80"),
		Local:    netip.AddrPortFrom(netip.MustParseAddr("198.51.100.1"), uint16(i)),
		Backend:  netip.MustParseAddrPort("203.0.113.5:8080"),
	}
}

// rec6 is the i-th of many distinct IPv6 records.
func rec6(i int) Record {
	return Record{
		Op:      OpUpsert,
		Proto:   17,
		Origin:  2,
		Age:     time.Second,
		Client:  netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8::%x:%x", i>>16, i&0xffff)), 5353),
		VIP:     netip.MustParseAddrPort("[2001:db8:1::10]:53"),
		Local:   netip.MustParseAddrPort("[2001:db8:2::1]:40000"),
		Backend: netip.MustParseAddrPort("[2001:db8:3::5]:53"),
	}
}

// datagram seals a datagram as a peer would send it.
func datagram(key []byte, h header, payload []byte) []byte {
	b := make([]byte, headerLen, headerLen+len(payload)+macLen)
	b = append(b, payload...)
	h.length = uint16(len(payload))
	h.put(b)
	return newMACer(key).appendMAC(b, b)
}
