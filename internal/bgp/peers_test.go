package bgp

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
)

func TestAPIPeer(t *testing.T) {
	p := Peer{
		Address:      netip.MustParseAddr("2001:db8::1"),
		ASN:          65000,
		Port:         179,
		LocalAddress: netip.MustParseAddr("2001:db8::2"),
		HoldTime:     9 * time.Second,
		Keepalive:    3 * time.Second,
		BFD:          &BFD{Interval: 300 * time.Millisecond, Multiplier: 3},
	}
	gr := GracefulRestart{Enabled: true, RestartTime: 120 * time.Second}
	a := apiPeer(p, "pw", gr, true)
	if a.Conf.NeighborAddress != "2001:db8::1" || a.Conf.PeerAsn != 65000 || a.Conf.AuthPassword != "pw" {
		t.Errorf("conf %v", a.Conf)
	}
	if a.Timers.Config.HoldTime != 9 || a.Timers.Config.KeepaliveInterval != 3 || a.Transport.LocalAddress != "2001:db8::2" {
		t.Errorf("timers %v transport %v", a.Timers.Config, a.Transport)
	}
	if f := a.AfiSafis[0].Config.Family; f.Afi != api.Family_AFI_IP6 || len(a.AfiSafis) != 1 {
		t.Errorf("families %v, want only ipv6 unicast for an IPv6 peer", a.AfiSafis)
	}
	if b := a.Bfd; !b.Enabled || b.DesiredMinimumTxInterval != 300000 || b.RequiredMinimumReceive != 300000 || b.DetectionMultiplier != 3 {
		t.Errorf("bfd %v, want 300000us x3", b)
	}
	if g := a.GracefulRestart; !g.Enabled || g.RestartTime != 120 || !g.LocalRestarting || g.NotificationEnabled ||
		!a.AfiSafis[0].MpGracefulRestart.Config.Enabled {
		t.Errorf("graceful restart %v %v", g, a.AfiSafis[0].MpGracefulRestart)
	}
	if a.EbgpMultihop != nil {
		t.Error("multihop set without Multihop")
	}
}

func TestDiffPeers(t *testing.T) {
	r1 := Peer{Address: netip.MustParseAddr("10.0.1.1"), ASN: 65000, Port: 179, HoldTime: 9 * time.Second, Keepalive: 3 * time.Second}
	r2 := r1
	r2.Address = netip.MustParseAddr("10.0.2.1")
	r2slow := r2
	r2slow.HoldTime = 90 * time.Second
	r3 := r1
	r3.Address = netip.MustParseAddr("10.0.3.1")
	gr := GracefulRestart{Enabled: true, RestartTime: time.Minute}
	set := func(restarting bool, gr GracefulRestart, peers ...Peer) peerSet {
		s := peerSet{}
		for _, p := range peers {
			s[p.Address] = apiPeer(p, "", gr, restarting)
		}
		return s
	}
	tests := []struct {
		name        string
		old, cur    peerSet
		remove, add []string
	}{
		{"unchanged", set(false, gr, r1, r2), set(false, gr, r1, r2), nil, nil},
		{"restart bits of the first start are no change", set(true, gr, r1), set(false, gr, r1), nil, nil},
		{"one changed, one removed, one added", set(false, gr, r1, r2), set(false, gr, r2slow, r3), []string{"10.0.1.1", "10.0.2.1"}, []string{"10.0.2.1", "10.0.3.1"}},
		{"graceful restart change touches all", set(false, gr, r1, r2), set(false, GracefulRestart{}, r1, r2), []string{"10.0.1.1", "10.0.2.1"}, []string{"10.0.1.1", "10.0.2.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := diffPeers(tt.old, tt.cur)
			var remove, add []string
			for _, a := range c.remove {
				remove = append(remove, a.String())
			}
			for _, p := range c.add {
				add = append(add, p.Conf.NeighborAddress)
			}
			slices.Sort(remove)
			slices.Sort(add)
			if !slices.Equal(remove, tt.remove) || !slices.Equal(add, tt.add) {
				t.Errorf("remove %v add %v, want remove %v add %v", remove, add, tt.remove, tt.add)
			}
		})
	}
}
