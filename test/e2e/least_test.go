package e2e

import (
	"math"
	"testing"
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
