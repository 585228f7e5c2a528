package conntrack

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ident"
	"github.com/xdplb/xdplb/internal/testbed"
)

func loadTable(t testing.TB, capacity uint32) *datapath.Datapath {
	t.Helper()
	testbed.RequirePrivileges(t)
	dp, err := datapath.Load(datapath.Options{ConntrackCapacity: capacity})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dp.Close() })
	return dp
}

var (
	vip     = netip.MustParseAddrPort("172.19.0.10:80")
	backend = netip.MustParseAddrPort("172.19.0.2:80")
	local   = netip.MustParseAddr("172.19.0.5")
)

// conn builds both halves of connection n, with each half's state and
// last-seen time.
func conn(n int, proto uint8, fwdState, revState datapath.State, fwdSeen, revSeen uint64) (datapath.Forward, datapath.Reverse) {
	client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(n >> 8), byte(n)}), 40000)
	f := datapath.Forward{
		Key:   datapath.FlowKey{Src: client, Dst: vip, Proto: proto},
		Local: netip.AddrPortFrom(local, uint16(10000+n)), Backend: backend,
		State: fwdState, LastSeen: fwdSeen,
	}
	r := datapath.Reverse{Key: f.ReverseKey(), Client: f.Key, State: revState, LastSeen: revSeen}
	return f, r
}

const sec = uint64(time.Second)

func TestCollect(t *testing.T) {
	t.Run("full", func(t *testing.T) { testCollect(t, true) })
	t.Run("quick", func(t *testing.T) { testCollect(t, false) })
}

// testCollect plants connections of every phase and age, and orphans, and
// checks what one collection leaves. Only a full collection sees reverse
// halves without a forward half.
func testCollect(t *testing.T, full bool) {
	dp := loadTable(t, 1024)
	now := 100000 * sec
	ago := func(s uint64) uint64 { return now - s*sec }
	E, F, C, S, U := datapath.StateEstablished, datapath.StateFinWait, datapath.StateClose, datapath.StateSynSent, datapath.StateUDP
	tcp, udp := datapath.TCP, datapath.UDP
	cases := []struct {
		name     string
		proto    uint8
		fwd, rev datapath.State
		fwdAgo   uint64
		revAgo   uint64
		expired  bool
	}{
		{"established, idle 100s", tcp, E, E, 100, 100, false},
		{"established, idle 901s", tcp, E, E, 901, 901, true},
		{"established, only the reply half is fresh", tcp, E, E, 5000, 10, false},
		{"FIN from the client, idle 119s", tcp, F, E, 119, 119, false},
		{"FIN from the backend, idle 121s", tcp, E, F, 121, 121, true},
		{"RST, idle 9s", tcp, C, E, 9, 9, false},
		{"RST, idle 11s", tcp, E, C, 11, 11, true},
		{"half-open SYN, idle 4s", tcp, S, S, 4, 4, false},
		{"half-open SYN, idle 6s", tcp, S, S, 6, 6, true},
		{"SYN-ACK never acknowledged, idle 6s", tcp, S, E, 6, 6, true},
		{"SYN-ACK retransmitted 1s ago, the client silent 6s", tcp, S, E, 6, 1, true},
		{"UDP idle 299s", udp, U, U, 299, 299, false},
		{"UDP idle 301s", udp, U, U, 301, 301, true},
	}
	var fs []datapath.Forward
	var rs []datapath.Reverse
	for i, c := range cases {
		f, r := conn(i, c.proto, c.fwd, c.rev, ago(c.fwdAgo), ago(c.revAgo))
		fs, rs = append(fs, f), append(rs, r)
	}
	// Orphans: a lone old forward half, a lone old reverse half, young
	// lone halves (connections being born) and a reverse half whose port
	// now belongs to another client.
	oldFwd, _ := conn(100, tcp, E, E, ago(60), 0)
	youngFwd, _ := conn(101, tcp, S, S, ago(1), 0)
	_, oldRev := conn(102, tcp, E, E, 0, ago(60))
	_, youngRev := conn(103, tcp, S, S, 0, ago(1))
	mismatched, _ := conn(104, tcp, E, E, ago(60), 0)
	_, other := conn(105, tcp, E, E, 0, ago(1))
	other.Key = mismatched.ReverseKey()
	if err := dp.PutConns(append(fs, oldFwd, youngFwd, mismatched), append(rs, oldRev, youngRev, other)); err != nil {
		t.Fatal(err)
	}

	c := NewCollector(dp, DefaultTimeouts(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.now = func() uint64 { return now }
	if !full {
		c.totals.Runs = 1
	}
	res, err := c.Collect()
	if err != nil {
		t.Fatal(err)
	}
	var wantFwd, wantRev []string
	expired := 0
	for i, cs := range cases {
		if !cs.expired {
			wantFwd = append(wantFwd, fs[i].Key.Src.String())
			wantRev = append(wantRev, rs[i].Client.Src.String())
		} else {
			expired++
		}
	}
	wantFwd = append(wantFwd, youngFwd.Key.Src.String())
	wantRev = append(wantRev, youngRev.Client.Src.String(), other.Client.Src.String())
	orphans := 3
	if !full {
		wantRev = append(wantRev, oldRev.Client.Src.String())
		orphans = 2
	}
	if got := forwardClients(t, dp); fmt.Sprint(got) != fmt.Sprint(sorted(wantFwd)) {
		t.Errorf("forward halves left:\n got %v\nwant %v", got, sorted(wantFwd))
	}
	if got := reverseClients(t, dp); fmt.Sprint(got) != fmt.Sprint(sorted(wantRev)) {
		t.Errorf("reverse halves left:\n got %v\nwant %v", got, sorted(wantRev))
	}
	want := Result{Entries: len(cases) + 3, Expired: expired, Orphans: orphans}
	if res.Entries != want.Entries || res.Expired != want.Expired || res.Orphans != want.Orphans {
		t.Errorf("result %+v, want %+v", res, want)
	}
	if tot := c.Totals(); tot.Expired != uint64(expired) || tot.Orphans != uint64(orphans) {
		t.Errorf("totals %+v", tot)
	}

	// A second collection at the same time finds nothing more to do.
	res, err = c.Collect()
	if err != nil {
		t.Fatal(err)
	}
	if res.Expired != 0 || res.Orphans != 0 {
		t.Errorf("second collection %+v, want nothing removed", res)
	}
}

func TestList(t *testing.T) {
	dp := loadTable(t, 1024)
	now := datapath.Now()
	f, r := conn(1, datapath.TCP, datapath.StateEstablished, datapath.StateEstablished, now-10*sec, now-10*sec)
	lone, _ := conn(2, datapath.TCP, datapath.StateEstablished, datapath.StateEstablished, now, 0)
	if err := dp.PutConns([]datapath.Forward{f}, []datapath.Reverse{r}); err != nil {
		t.Fatal(err)
	}
	// A forward half whose reverse key holds another client's connection.
	_, stranger := conn(3, datapath.TCP, datapath.StateEstablished, datapath.StateEstablished, 0, now)
	stranger.Key = lone.ReverseKey()
	if err := dp.PutConns([]datapath.Forward{lone}, []datapath.Reverse{stranger}); err != nil {
		t.Fatal(err)
	}
	conns, err := List(dp, DefaultTimeouts())
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 1 {
		t.Fatalf("listed %d connections, want 1: %+v", len(conns), conns)
	}
	c := conns[0]
	if c.Protocol != ident.TCP || c.State != "ESTABLISHED" || c.Client != f.Key.Src || c.VIP != vip ||
		c.Local != f.Local || c.Backend != backend {
		t.Errorf("listed %+v", c)
	}
	if c.ExpiresIn > 890*time.Second || c.ExpiresIn < 880*time.Second {
		t.Errorf("expires in %s, want about 890s", c.ExpiresIn)
	}
}

func forwardClients(t *testing.T, dp *datapath.Datapath) []string {
	var out []string
	if err := dp.WalkForward(func(b []datapath.Forward) error {
		for _, f := range b {
			out = append(out, f.Key.Src.String())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return sorted(out)
}

func reverseClients(t *testing.T, dp *datapath.Datapath) []string {
	var out []string
	if err := dp.WalkReverse(func(b []datapath.Reverse) error {
		for _, r := range b {
			out = append(out, r.Client.Src.String())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return sorted(out)
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
