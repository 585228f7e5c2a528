package bgp

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Sessions on loopback: the speakers connect from 127.0.0.2 and
// 127.0.0.3 to a GoBGP router on 127.0.0.1 (see testRouter). No root is
// needed.

var (
	vipA = netip.MustParsePrefix("10.99.0.10/32")
	vipB = netip.MustParsePrefix("10.99.0.11/32")

	node1 = netip.MustParseAddr("127.0.0.2")
	node2 = netip.MustParseAddr("127.0.0.3")
)

const community65001x100 = 65001<<16 | 100

// speakerConfig is a node announcing to the given routers.
func speakerConfig(peers ...Peer) Config {
	return Config{
		ASN:             65001,
		RouterID:        netip.MustParseAddr("10.0.0.2"),
		Peers:           peers,
		Communities:     []string{"65001:100"},
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 30 * time.Second},
		ShutdownWait:    400 * time.Millisecond,
	}
}

// startSpeaker starts a speaker announcing prefixes; the test stops it
// (not gracefully) if it has not.
func startSpeaker(t *testing.T, cfg Config, prefixes map[netip.Prefix]Attrs) *Speaker {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetPrefixes(prefixes); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background(), false) })
	return s
}

func TestSessionAnnounceWithdrawAndGracefulStop(t *testing.T) {
	t.Parallel()
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte("md5-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newTestRouter(t, "127.0.0.1", routerPeer{addr: node1, password: "md5-s3cret"})
	peer := r.peer(node1.String())
	peer.PasswordFile = pwFile
	s := startSpeaker(t, speakerConfig(peer), map[netip.Prefix]Attrs{vipA: {}, vipB: {Backup: true}})

	// Both arrive, next hop self, the configured community, the backup
	// with this AS three times (once by eBGP, twice prepended).
	eventually(t, 10*time.Second, "both prefixes at the router", func() bool { return len(r.routes(node1)) == 2 })
	got := r.routes(node1)
	if a := got[vipA]; a.nextHop != node1 || !slices.Equal(a.asPath, []uint32{65001}) || !slices.Equal(a.communities, []uint32{community65001x100}) {
		t.Errorf("primary arrived as %+v, want next hop %s, as path [65001], community 65001:100", a, node1)
	}
	if b := got[vipB]; b.nextHop != node1 || !slices.Equal(b.asPath, []uint32{65001, 65001, 65001}) {
		t.Errorf("backup arrived as %+v, want as path [65001 65001 65001]", b)
	}
	st := s.Status()
	if len(st) != 1 || !st[0].Up || st[0].State != "established" || st[0].Sent != 2 || st[0].Address != netip.MustParseAddr("127.0.0.1") || st[0].ASN != routerASN {
		t.Errorf("Status = %+v, want one established peer with 2 prefixes sent", st)
	}

	// B goes, A becomes a backup: one withdrawal, one replacement.
	if err := s.SetPrefixes(map[netip.Prefix]Attrs{vipA: {Backup: true}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "B withdrawn and A a backup", func() bool {
		got := r.routes(node1)
		return len(got) == 1 && len(got[vipA].asPath) == 3
	})
	// The same set again sends nothing.
	before := len(r.received())
	if err := s.SetPrefixes(map[netip.Prefix]Attrs{vipA: {Backup: true}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(r.received()); n != before {
		t.Errorf("the same prefixes again sent %d updates", n-before)
	}

	// Graceful stop: GRACEFUL_SHUTDOWN first, the withdrawal a
	// ShutdownWait later, then the session ends.
	start := time.Now()
	if err := s.Stop(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "session down", func() bool { return !r.established(node1) })
	var marked, withdrawn time.Time
	for _, u := range r.received() {
		switch {
		case u.at.Before(start) || u.prefix != vipA:
		case !u.withdraw && u.attrs.hasCommunity(communityGracefulShutdown) && u.attrs.hasCommunity(community65001x100):
			marked = u.at
		case u.withdraw && !marked.IsZero():
			withdrawn = u.at
		}
	}
	if marked.IsZero() || withdrawn.IsZero() {
		t.Fatalf("updates after Stop: %+v; want A with 65535:0 and 65001:100, then its withdrawal", r.received())
	}
	if gap := withdrawn.Sub(marked); gap < 300*time.Millisecond {
		t.Errorf("withdrawn %s after marking, want about ShutdownWait (400ms)", gap)
	}
	if len(r.routes(node1)) != 0 {
		t.Errorf("router still holds %v", r.routes(node1))
	}
}

// A stop for a restart keeps the routes at a graceful restart helper,
// stale, until the next speaker's End-of-RIB; without graceful restart
// the router drops them at once.
func TestRestartStop(t *testing.T) {
	t.Parallel()
	for _, gr := range []bool{true, false} {
		name := map[bool]string{true: "graceful restart", false: "no graceful restart"}[gr]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newTestRouter(t, "127.0.0.1", routerPeer{addr: node1})
			cfg := speakerConfig(r.peer(node1.String()))
			cfg.GracefulRestart.Enabled = gr
			old := startSpeaker(t, cfg, map[netip.Prefix]Attrs{vipA: {}, vipB: {}})
			eventually(t, 10*time.Second, "both prefixes at the router", func() bool { return len(r.routes(node1)) == 2 })

			stopped := time.Now()
			if err := old.Stop(context.Background(), false); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "session down", func() bool { return !r.established(node1) })
			time.Sleep(200 * time.Millisecond) // time for a (wrong) withdrawal to land
			for _, u := range r.received() {
				if u.withdraw && u.at.After(stopped) {
					t.Errorf("the restart stop withdrew %s", u.prefix)
				}
			}
			got := r.routes(node1)
			if !gr {
				if len(got) != 0 {
					t.Errorf("without graceful restart the router kept %v", got)
				}
				return
			}
			if len(got) != 2 || !got[vipA].stale || !got[vipB].stale {
				t.Fatalf("router holds %+v, want A and B, stale", got)
			}

			// The next daemon announces only A: A is fresh again, B is
			// dropped at its End-of-RIB.
			cfg.GracefulRestart.Restarting = true
			next := startSpeaker(t, cfg, map[netip.Prefix]Attrs{vipA: {}})
			eventually(t, 10*time.Second, "A refreshed, B gone", func() bool {
				got := r.routes(node1)
				return len(got) == 1 && !got[vipA].stale
			})
			if err := next.Stop(context.Background(), true); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A router that refuses the session shows in Status: not up, and why.
func TestStatusLastError(t *testing.T) {
	t.Parallel()
	r := newTestRouter(t, "127.0.0.1", routerPeer{addr: node1}) // expects AS 65001
	cfg := speakerConfig(r.peer(node1.String()))
	cfg.ASN = 65002
	s := startSpeaker(t, cfg, nil)
	eventually(t, 10*time.Second, "the refusal in Status", func() bool {
		return s.Status()[0].LastError != "" // GoBGP says "invalid-msg"
	})
	if st := s.Status()[0]; st.Up || st.State == "established" {
		t.Errorf("Status = %+v, want not up", st)
	}
}

// An IPv6 session carries the IPv6 prefixes, next hop self, and not the
// IPv4 ones. Router and speaker share ::1, the one IPv6 loopback address.
func TestIPv6(t *testing.T) {
	t.Parallel()
	loopback6 := netip.IPv6Loopback()
	r := newTestRouter(t, "::1", routerPeer{addr: loopback6})
	vip6 := netip.MustParsePrefix("2001:db8::10/128")
	s := startSpeaker(t, speakerConfig(r.peer("::1")), map[netip.Prefix]Attrs{vipA: {}, vip6: {}})
	eventually(t, 10*time.Second, "the IPv6 prefix at the router", func() bool { return len(r.routes(loopback6)) == 1 })
	if got := r.routes(loopback6)[vip6]; got.nextHop != loopback6 || !slices.Equal(got.asPath, []uint32{65001}) {
		t.Errorf("router got %+v, want next hop ::1, as path [65001]", got)
	}
	if st := s.Status(); st[0].Sent != 1 {
		t.Errorf("Status = %+v, want 1 prefix sent (the IPv4 one is not for this peer)", st)
	}
}
