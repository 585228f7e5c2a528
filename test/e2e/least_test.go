package e2e

import (
	"math"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/demo"
)

// TestWeightedLeastConnection: wlc with weights 3:1 and long-lived
// connections ends with the backends holding them 3:1, within 5 %.
func TestWeightedLeastConnection(t *testing.T) {
	e := newEnv(t, "native")
	serveEcho(t, e.ref.RS1, ":7000", "rs-1")
	serveEcho(t, e.ref.RS2, ":7000", "rs-2")
	e.startServices(t, `  - name: echo
    vip: 172.19.0.10
    port: 7000
    scheduler: wlc
    backends:
      - {address: 172.19.0.2, weight: 3}
      - {address: 172.19.0.3, weight: 1}
`)
	const n = 40
	held := map[string]int{}
	for range n {
		c := dialBackend(t, e, schedEcho, 1)
		held[c.first]++
	}
	ratio := float64(held["rs-1"]) / float64(held["rs-2"])
	if held["rs-1"]+held["rs-2"] != n || math.Abs(ratio-3)/3 > 0.05 {
		t.Errorf("%d long-lived connections held %v: ratio %.2f, want 3 within 5%%", n, held, ratio)
	}
	// The datapath's own view agrees: connections per backend.
	conns, err := e.bal.API.Connections(t.Context(), "echo", "")
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, c := range conns {
		per[c.Backend.String()]++
	}
	if per["172.19.0.2:7000"] != held["rs-1"] || per["172.19.0.3:7000"] != held["rs-2"] {
		t.Errorf("conntrack holds %v, the clients %v", per, held)
	}
}

// TestLeastConnectionFollowsCloses: after the connections of one backend
// close and a sweep counts again, lc sends the new ones there until the
// loads are even.
func TestLeastConnectionFollowsCloses(t *testing.T) {
	e := newEnv(t, "native")
	serveEcho(t, e.ref.RS1, ":7000", "rs-1")
	serveEcho(t, e.ref.RS2, ":7000", "rs-2")
	e.start(t, func(d string) string {
		return demo.Setup{Mode: e.mode, Dir: d, Extra: "conntrack:\n  gc_interval: 1s\n", Services: `  - name: echo
    vip: 172.19.0.10
    port: 7000
    scheduler: lc
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
`}.YAML()
	})
	var rs1 []*echoConn
	held := map[string]int{}
	for range 10 {
		c := dialBackend(t, e, schedEcho, 1)
		held[c.first]++
		if c.first == "rs-1" {
			rs1 = append(rs1, c)
		}
	}
	if held["rs-1"] != 5 || held["rs-2"] != 5 {
		t.Fatalf("lc over two idle backends: %v, want 5 and 5", held)
	}
	for _, c := range rs1 {
		c.c.Close()
	}
	// The collector runs every second here; two runs make sure one began
	// after the closes (the FIN phase still counts as inactive: 1, not 256).
	time.Sleep(2500 * time.Millisecond)
	again := map[string]int{}
	for range 4 {
		c := dialBackend(t, e, schedEcho, 1)
		again[c.first]++
	}
	if again["rs-1"] != 4 {
		t.Errorf("after rs-1's connections closed, 4 new ones went %v, want all to rs-1", again)
	}
}
