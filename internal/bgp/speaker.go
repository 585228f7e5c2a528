package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Speaker announces this node's prefixes to its routers. It is safe for
// concurrent use. The zero value is not usable; call New.
type Speaker struct {
	log *slog.Logger
	// stopping quiets GoBGP's log while a server is being stopped (see
	// gobgpLog).
	stopping atomic.Bool
	sessions *sessions

	mu          sync.Mutex
	cfg         Config   // defaulted and valid
	communities []uint32 // cfg.Communities, parsed
	peers       peerSet
	state       lifecycle
	srv         *server.BgpServer // while running
	stopWatch   context.CancelFunc
	desired     map[netip.Prefix]Attrs
	routes      map[netip.Prefix]route // what srv holds
}

type lifecycle int

const (
	created lifecycle = iota
	running
	stopped
)

// New checks cfg (after filling its defaults) and reads the peers'
// password files. It starts nothing; log receives session changes at
// info and GoBGP's problems at warn.
func New(cfg Config, log *slog.Logger) (*Speaker, error) {
	cfg = cloneConfig(cfg)
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	communities, _ := parseCommunities(cfg.Communities) // checked by Validate
	peers, err := newPeerSet(cfg, cfg.GracefulRestart.Restarting)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Speaker{
		log:         log,
		sessions:    newSessions(log),
		cfg:         cfg,
		communities: communities,
		peers:       peers,
		desired:     map[netip.Prefix]Attrs{},
		routes:      map[netip.Prefix]route{},
	}, nil
}

// Start starts the BGP server, announces the prefixes already given to
// SetPrefixes and connects to the peers; ctx bounds the start only. The
// speaker runs until Stop. Setting the prefixes before Start makes the
// first UPDATE after a (re)start carry all of them, which matters after
// a hitless restart: a router drops the stale routes that this node's
// End-of-RIB does not refresh.
func (s *Speaker) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != created {
		return errors.New("bgp speaker already started")
	}
	srv, stopWatch, err := s.startServer(ctx, s.cfg)
	if err != nil {
		return err
	}
	s.srv, s.stopWatch, s.state = srv, stopWatch, running
	errAnnounce := s.reconcile()
	errPeers := addPeers(ctx, srv, s.peers)
	return errors.Join(errAnnounce, errPeers)
}

// SetPrefixes makes desired the set of announced prefixes: it announces
// what is new or has other Attrs and withdraws what is gone. Calling it
// again with the same set sends nothing. Before Start it only records
// the set; after Stop it fails. A prefix that fails is left out of
// Announced, and the next call tries it again.
func (s *Speaker) SetPrefixes(desired map[netip.Prefix]Attrs) error {
	var errs []error
	for p := range desired {
		if err := checkPrefix(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bgp: nothing changed: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == stopped {
		return errors.New("bgp speaker stopped")
	}
	s.desired = maps.Clone(desired)
	if s.state == created {
		return nil
	}
	return s.reconcile()
}

// reconcile brings srv from s.routes to s.desired.
func (s *Speaker) reconcile() error {
	p := diff(s.routes, s.desired)
	var errs []error
	for _, prefix := range p.withdraw {
		if err := s.withdraw(prefix); err != nil {
			errs = append(errs, err)
		}
	}
	for _, prefix := range p.announce {
		if err := s.announce(prefix, s.desired[prefix], false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// announce adds (or replaces) the path of prefix.
func (s *Speaker) announce(prefix netip.Prefix, attrs Attrs, gracefulShutdown bool) error {
	path, err := buildPath(prefix, attrs, s.cfg.ASN, s.communities, gracefulShutdown)
	if err != nil {
		return err
	}
	resp, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{path}})
	if err != nil {
		return fmt.Errorf("announce %s: %w", prefix, err)
	}
	s.routes[prefix] = route{attrs: attrs, id: resp[0].UUID}
	return nil
}

// withdraw deletes the path of prefix.
func (s *Speaker) withdraw(prefix netip.Prefix) error {
	r := s.routes[prefix]
	if err := s.srv.DeletePath(apiutil.DeletePathRequest{UUIDs: []uuid.UUID{r.id}}); err != nil {
		return fmt.Errorf("withdraw %s: %w", prefix, err)
	}
	delete(s.routes, prefix)
	return nil
}

// cloneConfig copies the slices and pointers of cfg, so that the
// speaker never shares them with its caller.
func cloneConfig(cfg Config) Config {
	cfg.Communities = slices.Clone(cfg.Communities)
	cfg.Peers = slices.Clone(cfg.Peers)
	for i, p := range cfg.Peers {
		if p.BFD != nil {
			b := *p.BFD
			cfg.Peers[i].BFD = &b
		}
	}
	return cfg
}
