package bgp

import (
	"context"
	"errors"
	"maps"
	"slices"
)

// Update applies a new configuration to a running (or not yet started)
// speaker, touching as little as it can:
//
//   - peers added, removed or changed: only their sessions start, end
//     or reset (a removed peer is told with a NOTIFICATION and drops
//     this node's routes at once);
//   - graceful restart settings: every session resets, since they are
//     part of each session's OPEN;
//   - communities: every prefix is announced again, sessions stay up;
//   - shutdown wait: taken as is;
//   - ASN, router id or listen port: the whole speaker restarts, so
//     every session resets and the routers drop and relearn the routes.
//
// On a validation error nothing changes. cfg.GracefulRestart.Restarting
// is ignored: it only matters for the first start.
func (s *Speaker) Update(ctx context.Context, cfg Config) error {
	cfg = cloneConfig(cfg)
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	communities, _ := parseCommunities(cfg.Communities)
	peers, err := newPeerSet(cfg, false)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == stopped {
		return errors.New("bgp speaker stopped")
	}
	old := s.cfg
	cfg.GracefulRestart.Restarting = old.GracefulRestart.Restarting
	oldPeers := s.peers
	s.cfg, s.communities, s.peers = cfg, communities, peers
	if s.state == created {
		return nil
	}
	if cfg.ASN != old.ASN || cfg.RouterID != old.RouterID || cfg.ListenPort != old.ListenPort {
		return s.restart(ctx)
	}
	var errs []error
	if !slices.Equal(cfg.Communities, old.Communities) {
		for prefix, r := range s.routes {
			errs = append(errs, s.announce(prefix, r.attrs, false))
		}
	}
	errs = append(errs, applyPeers(ctx, s.srv, diffPeers(oldPeers, peers)))
	return errors.Join(errs...)
}

// restart replaces the running server with one for s.cfg and announces
// s.desired from it.
func (s *Speaker) restart(ctx context.Context) error {
	s.log.Info("bgp: asn, router id or listen port changed, restarting the speaker")
	errStop := s.stopServer(ctx, false)
	srv, stopWatch, err := s.startServer(ctx, s.cfg)
	if err != nil {
		s.state = stopped
		return errors.Join(errStop, err)
	}
	s.srv, s.stopWatch = srv, stopWatch
	return errors.Join(errStop, s.reconcile(),
		applyPeers(ctx, srv, peerChanges{add: slices.Collect(maps.Values(s.peers))}))
}
