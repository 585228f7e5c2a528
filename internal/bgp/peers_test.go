package bgp

import (
	"net/netip"
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
