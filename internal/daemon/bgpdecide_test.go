package daemon

import (
	"net/netip"
	"strings"
	"testing"
)

func TestDecideAnnouncements(t *testing.T) {
	vip1, vip2 := netip.MustParseAddr("10.99.0.10"), netip.MustParseAddr("10.99.0.11")
	own, theirs := netip.MustParseAddr("10.0.0.101"), netip.MustParseAddr("10.0.0.102")
	healthy := func() announceInput {
		return announceInput{
			MinUp: 1,
			Services: []serviceUp{
				{Name: "web", VIP: vip1, Up: 2, All: 2},
				{Name: "dns", VIP: vip1, Up: 1, All: 2},
				{Name: "api", VIP: vip2, Up: 1, All: 1},
			},
			Local: []netip.Addr{own},
		}
	}
	type want struct {
		announce bool
		why      string // a part of the reason; "" when announced
	}
	cases := []struct {
		name   string
		change func(*announceInput)
		vip1   want
		vip2   want
		local  want
	}{
		{"healthy", func(*announceInput) {}, want{true, ""}, want{true, ""}, want{true, ""}},
		{"not forwarding: nothing", func(in *announceInput) { in.NotServing = "XDP is not attached to eth0" },
			want{false, "not attached"}, want{false, "not attached"}, want{false, "not attached"}},
		{"sync copy pending: VIPs wait, local addresses do not", func(in *announceInput) { in.SyncPending = "waiting for the peers' connections" },
			want{false, "waiting"}, want{false, "waiting"}, want{true, ""}},
		{"one VIP drained", func(in *announceInput) { in.Drained = map[netip.Addr]bool{vip2: true} },
			want{true, ""}, want{false, "drained"}, want{true, ""}},
		{"all drained: local addresses stay", func(in *announceInput) { in.DrainAll = true },
			want{false, "drained"}, want{false, "drained"}, want{true, ""}},
		{"one service of a VIP below min_up_backends", func(in *announceInput) { in.Services[1].Up = 0 },
			want{false, "service dns has 0 of 2 backends up, and needs 1"}, want{true, ""}, want{true, ""}},
		{"min_up_backends 2", func(in *announceInput) { in.MinUp = 2 },
			want{false, "service dns has 1 of 2"}, want{false, "service api has 1 of 1"}, want{true, ""}},
		{"min_up_backends 0 announces a VIP with no backend up", func(in *announceInput) { in.MinUp = 0; in.Services[2].Up = 0 },
			want{true, ""}, want{true, ""}, want{true, ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := healthy()
			c.change(&in)
			got := map[netip.Addr]prefixDecision{}
			for _, d := range decideAnnouncements(in) {
				got[d.Prefix.Addr()] = d
				if d.Prefix.Bits() != 32 {
					t.Errorf("%s: want a /32", d.Prefix)
				}
			}
			for addr, w := range map[netip.Addr]want{vip1: c.vip1, vip2: c.vip2, own: c.local} {
				d, ok := got[addr]
				if !ok {
					t.Errorf("%s: no decision", addr)
					continue
				}
				if d.Announce != w.announce || !strings.Contains(d.Why, w.why) || (w.announce && d.Why != "") {
					t.Errorf("%s: announce %v why %q; want %v with %q", addr, d.Announce, d.Why, w.announce, w.why)
				}
				if d.Backup {
					t.Errorf("%s: announced as backup", addr)
				}
			}
		})
	}
	t.Run("taken-over local addresses are announced as backup", func(t *testing.T) {
		in := healthy()
		in.TakenOver = []netip.Addr{theirs}
		in.DrainAll = true
		for _, d := range decideAnnouncements(in) {
			if d.Prefix.Addr() == theirs && (!d.Announce || !d.Backup || d.Kind != kindTakeover) {
				t.Errorf("taken over %s: %+v", theirs, d)
			}
		}
	})
}
