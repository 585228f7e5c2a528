package api

import (
	"errors"
	"net/http"
	"testing"
)

// TestBGPDrain: a VIP is drained and undrained by address, all at once
// without one; a VIP no service has is a 404, an address that is none a
// 400 naming the field.
func TestBGPDrain(t *testing.T) {
	src := newFakeSource(t)
	c := serve(t, src)
	announced := func(st BGPStatus) (n int) {
		for _, p := range st.Prefixes {
			if p.Announced {
				n++
			}
		}
		return n
	}
	st, err := c.BGP(t.Context())
	if err != nil || !st.Enabled || len(st.Prefixes) == 0 || announced(st) != len(st.Prefixes) {
		t.Fatalf("bgp status %+v, %v", st, err)
	}
	vip := src.cfg.Services[0].VIP.String()
	st, err = c.Drain(t.Context(), vip, true)
	if err != nil || announced(st) == len(st.Prefixes) {
		t.Errorf("drain %s: %+v, %v", vip, st, err)
	}
	st, err = c.Drain(t.Context(), "", false)
	if err != nil || announced(st) != len(st.Prefixes) {
		t.Errorf("undrain all: %+v, %v", st, err)
	}
	var remote *RemoteError
	if _, err := c.Drain(t.Context(), "198.51.100.77", true); !errors.As(err, &remote) || remote.Status != http.StatusNotFound {
		t.Errorf("drain an unknown VIP: %v, want 404", err)
	}
	if _, err := c.Drain(t.Context(), "nope", true); !errors.As(err, &remote) || remote.Status != http.StatusBadRequest ||
		len(remote.Problems) != 1 || remote.Problems[0].Path != "vip" {
		t.Errorf("drain nope: %v (%+v), want 400 naming vip", err, remote)
	}
}
