package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// connectRetry is how often the speaker retries a router that does not
// answer. A balancer wants its routes back soon after a router returns;
// GoBGP's default is 120s.
const connectRetry = 5 * time.Second

// idleHold is how long a session that went down (hold timer, BFD, a
// link that failed and came back) waits before it tries again. GoBGP's
// default, 30s, would keep a recovered node out of the routers' ECMP set
// for half a minute.
const idleHold = 2 * time.Second

// restartDeferral bounds how long a restarting speaker (Restarting set)
// holds its routes back while waiting for every router's End-of-RIB
// (RFC 4724 4.1). Routers normally send it at once; one that is down
// would otherwise hold the others' updates for GoBGP's default 360s,
// longer than they keep the stale routes.
const restartDeferral = 10 * time.Second

// bfdPort is RFC 5881's single-hop BFD port.
const bfdPort = 3784

// apiPeer is p as GoBGP's peer configuration. password is the content
// of p.PasswordFile; restarting sets the restart bits (only for the
// peers of a speaker's first start, see GracefulRestart.Restarting).
func apiPeer(p Peer, password string, gr GracefulRestart, restarting bool) *api.Peer {
	family := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if p.Address.Unmap().Is6() {
		family.Afi = api.Family_AFI_IP6
	}
	afiSafi := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: family, Enabled: true}}
	out := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.Unmap().String(),
			PeerAsn:         p.ASN,
			AuthPassword:    password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:               uint64(p.HoldTime / time.Second),
			KeepaliveInterval:      uint64(p.Keepalive / time.Second),
			ConnectRetry:           uint64(connectRetry / time.Second),
			IdleHoldTimeAfterReset: uint64(idleHold / time.Second),
		}},
		Transport: &api.Transport{RemotePort: uint32(p.Port)},
		AfiSafis:  []*api.AfiSafi{afiSafi},
	}
	if p.LocalAddress.IsValid() {
		out.Transport.LocalAddress = p.LocalAddress.Unmap().String()
	}
	if p.Multihop {
		out.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: 255}
	}
	if b := p.BFD; b != nil {
		us := uint32(b.Interval / time.Microsecond)
		out.Bfd = &api.BfdPeerConfig{
			Enabled:                  true,
			Port:                     bfdPort,
			DesiredMinimumTxInterval: us,
			RequiredMinimumReceive:   us,
			DetectionMultiplier:      uint32(b.Multiplier),
		}
	}
	if gr.Enabled {
		// NotificationEnabled (RFC 8538) stays off: with it, a router
		// that times out this node's session keeps the routes as stale
		// (restart_time) instead of dropping them, which would turn
		// every silent failure into a long blackhole.
		out.GracefulRestart = &api.GracefulRestart{
			Enabled:         true,
			RestartTime:     uint32(gr.RestartTime / time.Second),
			DeferralTime:    uint32(restartDeferral / time.Second),
			LocalRestarting: restarting,
		}
		afiSafi.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
	}
	return out
}

// peerSet is the configured peers as GoBGP sees them, by address.
type peerSet map[netip.Addr]*api.Peer

// newPeerSet reads the peers' passwords and builds their GoBGP
// configuration.
func newPeerSet(cfg Config, restarting bool) (peerSet, error) {
	set := peerSet{}
	for i, p := range cfg.Peers {
		var pw string
		if p.PasswordFile != "" {
			var err error
			if pw, err = readPassword(p.PasswordFile); err != nil {
				return nil, fmt.Errorf("bgp.peers[%d].password_file: %w", i, err)
			}
		}
		set[p.Address.Unmap()] = apiPeer(p, pw, cfg.GracefulRestart, restarting)
	}
	return set, nil
}

// addPeers adds the peers to s: their sessions start.
func addPeers(ctx context.Context, s *server.BgpServer, peers peerSet) error {
	var errs []error
	for _, p := range peers {
		if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
			errs = append(errs, fmt.Errorf("add bgp peer %s: %w", p.Conf.NeighborAddress, err))
		}
	}
	return errors.Join(errs...)
}
