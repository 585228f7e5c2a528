package bgp

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// routerASN is the test router's AS; speakers under test use 65001.
const routerASN = 65000

// testRouter is a GoBGP server on a loopback address playing the router: it
// accepts sessions from the speakers under test, is a graceful restart
// helper, and records every UPDATE it receives.
type testRouter struct {
	t    *testing.T
	srv  *server.BgpServer
	addr netip.Addr
	port uint16

	mu      sync.Mutex
	updates []update
}

// update is one received path or withdrawal.
type update struct {
	at       time.Time
	from     netip.Addr
	prefix   netip.Prefix
	withdraw bool
	attrs    seen
}

// routerPeer is a speaker the router accepts.
type routerPeer struct {
	addr     netip.Addr
	password string
}

// newTestRouter starts a router on addr (a loopback address) that
// accepts sessions from peers; it stops when the test ends.
func newTestRouter(t *testing.T, addr string, peers ...routerPeer) *testRouter {
	t.Helper()
	r := &testRouter{t: t, srv: server.NewBgpServer(), addr: netip.MustParseAddr(addr)}
	r.port = freePort(t, r.addr)
	go r.srv.Serve()
	t.Cleanup(r.srv.Stop)
	ctx := context.Background()
	err := r.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: routerASN, RouterId: "10.255.0.1", ListenPort: int32(r.port), ListenAddresses: []string{addr},
	}})
	if err != nil {
		t.Fatal(err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	t.Cleanup(stopWatch)
	if err := r.srv.WatchEvent(watchCtx, server.WatchEventMessageCallbacks{OnPathUpdate: r.record}, server.WatchUpdate(false, "", "")); err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		r.addPeer(p)
	}
	return r
}

// addPeer accepts a session from p, passively, as a graceful restart
// helper.
func (r *testRouter) addPeer(p routerPeer) {
	r.t.Helper()
	family := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if p.addr.Is6() {
		family.Afi = api.Family_AFI_IP6
	}
	err := r.srv.AddPeer(context.Background(), &api.AddPeerRequest{Peer: &api.Peer{
		Conf:            &api.PeerConf{NeighborAddress: p.addr.String(), PeerAsn: 65001, AuthPassword: p.password},
		Transport:       &api.Transport{PassiveMode: true},
		GracefulRestart: &api.GracefulRestart{Enabled: true},
		AfiSafis: []*api.AfiSafi{{
			Config:            &api.AfiSafiConfig{Family: family, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}},
		}},
	}})
	if err != nil {
		r.t.Fatal(err)
	}
}

// peer is how a speaker configures this router.
func (r *testRouter) peer(local string) Peer {
	return Peer{Address: r.addr, ASN: routerASN, Port: r.port, LocalAddress: netip.MustParseAddr(local)}
}

func (r *testRouter) record(paths []*apiutil.Path, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range paths {
		if p.Nlri == nil {
			continue // End-of-RIB
		}
		prefix, err := netip.ParsePrefix(p.Nlri.String())
		if err != nil {
			continue
		}
		r.updates = append(r.updates, update{at: at, from: p.PeerAddress, prefix: prefix, withdraw: p.Withdrawal, attrs: readPath(p)})
	}
}

// received returns the updates so far.
func (r *testRouter) received() []update {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]update(nil), r.updates...)
}

// routes is the router's Adj-RIB-In from one speaker, in the family of
// its address.
func (r *testRouter) routes(from netip.Addr) map[netip.Prefix]seen {
	r.t.Helper()
	out := map[netip.Prefix]seen{}
	family := bgp.RF_IPv4_UC
	if from.Is6() {
		family = bgp.RF_IPv6_UC
	}
	err := r.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_ADJ_IN, Name: from.String(), Family: family},
		func(prefix bgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				out[netip.MustParsePrefix(prefix.String())] = readPath(p)
			}
		})
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// established says whether the router's session with from is up.
func (r *testRouter) established(from netip.Addr) bool {
	return !r.upSince(from).IsZero()
}

// upSince is when the router's session with from came up, zero if it
// is not up: a session that was reset has a later time.
func (r *testRouter) upSince(from netip.Addr) time.Time {
	var since time.Time
	_ = r.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: from.String()}, func(p *api.Peer) {
		if p.GetState().GetSessionState() == api.PeerState_SESSION_STATE_ESTABLISHED {
			since = p.GetTimers().GetState().GetUptime().AsTime()
		}
	})
	return since
}

// originate makes the router announce prefix to its peers.
func (r *testRouter) originate(prefix netip.Prefix) {
	r.t.Helper()
	path, err := buildPath(prefix, Attrs{}, routerASN, nil, false)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{path}}); err != nil {
		r.t.Fatal(err)
	}
}

// freePort returns a TCP port on addr that was free a moment ago.
func freePort(t *testing.T, addr netip.Addr) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// eventually polls cond every 50ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
