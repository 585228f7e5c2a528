package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/server"
	"github.com/xdplb/xdplb/internal/waitctx"
)

// localOnly is the import policy that keeps routers' routes out of the
// RIB: the speaker only announces, and a route learnt from one router
// must never be passed on to another (this node is no transit). Local
// paths pass through the import policy too, hence the statement.
var localOnly = &api.Policy{
	Name: "xdplb-local-only",
	Statements: []*api.Statement{{
		Name:       "xdplb-accept-local",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
	}},
}

// sendWait bounds how long a graceful Stop waits for the withdrawals to
// leave before it closes the sessions.
const sendWait = time.Second

// startServer starts a GoBGP server for cfg, without peers or paths,
// and the watch that logs session changes; stopWatch ends the watch.
func (s *Speaker) startServer(ctx context.Context, cfg Config) (srv *server.BgpServer, stopWatch context.CancelFunc, err error) {
	s.stopping.Store(false)
	srv = server.NewBgpServer(server.LoggerOption(newGobgpLog(s.log, &s.stopping), nil))
	go srv.Serve()
	defer func() {
		if err != nil {
			s.stopping.Store(true)
			srv.Stop()
		}
	}()
	err = srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        cfg.ASN,
		RouterId:   cfg.RouterID.Unmap().String(),
		ListenPort: cfg.ListenPort,
	}})
	if err != nil {
		return nil, nil, fmt.Errorf("start bgp: %w", err)
	}
	if err = srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: localOnly}); err != nil {
		return nil, nil, fmt.Errorf("bgp import policy: %w", err)
	}
	err = srv.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name:          "global",
		Direction:     api.PolicyDirection_POLICY_DIRECTION_IMPORT,
		Policies:      []*api.Policy{{Name: localOnly.Name}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}})
	if err != nil {
		return nil, nil, fmt.Errorf("bgp import policy: %w", err)
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	err = srv.WatchEvent(watchCtx, server.WatchEventMessageCallbacks{OnPeerUpdate: s.sessions.update}, server.WatchPeer())
	if err != nil {
		stopWatch()
		return nil, nil, fmt.Errorf("watch bgp sessions: %w", err)
	}
	return srv, stopWatch, nil
}

// Stop ends the speaker; it cannot be started again.
//
// graceful (SIGTERM, drain): every prefix is announced again with the
// GRACEFUL_SHUTDOWN community (RFC 8326), Config.ShutdownWait passes
// (or ctx ends) so routers move traffic to the other nodes, then every
// prefix is withdrawn and the sessions close with a NOTIFICATION.
//
// Not graceful (SIGUSR2, a hitless restart): nothing is withdrawn and
// the sessions close without a NOTIFICATION where graceful restart was
// negotiated, which routers treat as a restart: they keep the routes,
// marked stale, for Config.GracefulRestart.RestartTime, while the next
// daemon (GracefulRestart.Restarting set) comes up and refreshes them.
// Peers without graceful restart get a NOTIFICATION and drop the routes.
func (s *Speaker) Stop(ctx context.Context, graceful bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != running {
		s.state = stopped
		return nil
	}
	var errs []error
	if graceful {
		errs = append(errs, s.shutdownGracefully(ctx))
	}
	errs = append(errs, s.stopServer(ctx, !graceful))
	s.state = stopped
	s.log.Info("bgp speaker stopped", "graceful", graceful)
	return errors.Join(errs...)
}

// shutdownGracefully marks, waits, withdraws and waits for the
// withdrawals to leave.
func (s *Speaker) shutdownGracefully(ctx context.Context) error {
	var errs []error
	if len(s.routes) > 0 && s.cfg.ShutdownWait > 0 {
		for prefix, r := range s.routes {
			if err := s.announce(prefix, r.attrs, true); err != nil {
				errs = append(errs, err)
			}
		}
		s.log.Info("bgp graceful shutdown: routes marked, withdrawing after the wait", "wait", s.cfg.ShutdownWait)
		waitctx.Sleep(ctx, s.cfg.ShutdownWait)
	}
	before := map[string]uint64{}
	for addr, u := range s.updatesSent(ctx) {
		if u.carries {
			before[addr] = u.sent
		}
	}
	for prefix := range s.routes {
		if err := s.withdraw(prefix); err != nil {
			errs = append(errs, err)
		}
	}
	s.waitSent(ctx, before)
	return errors.Join(errs...)
}

// sessionUpdates is what updatesSent reads of one session.
type sessionUpdates struct {
	sent    uint64 // UPDATE messages sent so far
	carries bool   // some prefix of this node is announced on it
}

// updatesSent reads every established session, by peer address.
func (s *Speaker) updatesSent(ctx context.Context) map[string]sessionUpdates {
	out := map[string]sessionUpdates{}
	_ = s.srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		if p.GetState().GetSessionState() != api.PeerState_SESSION_STATE_ESTABLISHED {
			return
		}
		u := sessionUpdates{sent: p.GetState().GetMessages().GetSent().GetUpdate()}
		for _, af := range p.GetAfiSafis() {
			u.carries = u.carries || af.GetState().GetAdvertised() > 0
		}
		out[p.GetConf().GetNeighborAddress()] = u
	})
	return out
}

// waitSent waits, at most sendWait, until every session in before (UPDATE
// counts by peer) has sent another UPDATE, the withdrawal, or is down.
// Closing the sessions at once would drop withdrawals still queued: the
// router would drop the routes only when it sees the session end.
func (s *Speaker) waitSent(ctx context.Context, before map[string]uint64) {
	ctx, cancel := context.WithTimeout(ctx, sendWait)
	defer cancel()
	for len(before) > 0 {
		now := s.updatesSent(ctx)
		for addr, n := range before {
			if u, up := now[addr]; !up || u.sent > n {
				delete(before, addr)
			}
		}
		if len(before) == 0 || !waitctx.Sleep(ctx, 10*time.Millisecond) {
			return
		}
	}
}

// stopServer stops s.srv and the session watch. keepRoutes closes the
// sessions of graceful-restart peers without a NOTIFICATION.
func (s *Speaker) stopServer(ctx context.Context, keepRoutes bool) error {
	s.stopping.Store(true)
	err := s.srv.StopBgp(ctx, &api.StopBgpRequest{AllowGracefulRestart: keepRoutes})
	// Stop also ends what StopBgp leaves running (the BFD server); its
	// own StopBgp finds the server stopped, which gobgpLog keeps quiet.
	s.srv.Stop()
	s.stopWatch()
	s.srv, s.stopWatch = nil, nil
	s.routes = map[netip.Prefix]route{}
	s.sessions.reset()
	if err != nil {
		return fmt.Errorf("stop bgp: %w", err)
	}
	return nil
}
