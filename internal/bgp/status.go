package bgp

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// PeerStatus is one session as Status reports it.
type PeerStatus struct {
	Address netip.Addr
	ASN     uint32
	// State is the BGP FSM state: "idle", "connect", "active",
	// "opensent", "openconfirm" or "established".
	State string
	// Up says the session is established: xdplb_bgp_peer_up.
	Up bool
	// Uptime is how long the session has been established (whole
	// seconds), 0 when it is not.
	Uptime time.Duration
	// Sent is the number of prefixes announced to the peer.
	Sent uint64
	// Received is the number of prefixes the peer sent. None is
	// accepted: the speaker only announces.
	Received uint64
	// BFD is the BFD session state ("up", "down", "init",
	// "admin_down"), "" when BFD is off.
	BFD string
	// LastError says why the session last went down or failed to come
	// up, in GoBGP's words (e.g. "hold-timer-expired",
	// "notification-received cease/peer-deconfigured", or "invalid-msg"
	// for an OPEN the router refused), "" if neither.
	LastError string
}

// Status reports every configured peer, sorted by address. A speaker
// that is not running reports its peers idle.
func (s *Speaker) Status() []PeerStatus {
	s.mu.Lock()
	srv := s.srv
	configured := make([]PeerStatus, 0, len(s.peers))
	for addr, p := range s.peers {
		configured = append(configured, PeerStatus{Address: addr, ASN: p.Conf.PeerAsn, State: "idle"})
	}
	s.mu.Unlock()

	live := map[netip.Addr]PeerStatus{}
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
			if st, ok := peerStatus(p); ok {
				live[st.Address] = st
			}
		})
	}
	out := make([]PeerStatus, 0, len(configured))
	for _, c := range configured {
		st, ok := live[c.Address]
		if !ok {
			st = c
		}
		st.LastError = s.sessions.lastError(c.Address)
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return a.Address.Compare(b.Address) })
	return out
}

// peerStatus reads GoBGP's view of one peer.
func peerStatus(p *api.Peer) (PeerStatus, bool) {
	addr, err := netip.ParseAddr(p.GetConf().GetNeighborAddress())
	if err != nil {
		return PeerStatus{}, false
	}
	st := PeerStatus{
		Address: addr,
		ASN:     p.GetConf().GetPeerAsn(),
		State:   sessionState(p.GetState().GetSessionState()),
	}
	st.Up = st.State == "established"
	if up := p.GetTimers().GetState().GetUptime(); st.Up && up != nil {
		st.Uptime = time.Since(up.AsTime()).Truncate(time.Second)
	}
	for _, af := range p.GetAfiSafis() {
		st.Sent += af.GetState().GetAdvertised()
		st.Received += af.GetState().GetReceived()
	}
	if p.GetBfd().GetEnabled() {
		st.BFD = bfdState(p.GetState().GetBfdState().GetSessionState())
	}
	return st, true
}

// sessionState turns SESSION_STATE_OPENSENT into "opensent".
func sessionState(s api.PeerState_SessionState) string {
	if s == api.PeerState_SESSION_STATE_UNSPECIFIED {
		return "idle"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "SESSION_STATE_"))
}

// bfdState turns BFD_SESSION_STATE_ADMIN_DOWN into "admin_down".
func bfdState(s api.BfdSessionState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "BFD_SESSION_STATE_"))
}

// sessions follows GoBGP's session events: it logs sessions coming up
// and going down, and keeps why each last went down.
type sessions struct {
	log *slog.Logger

	mu   sync.Mutex
	up   map[netip.Addr]bool
	errs map[netip.Addr]string
}

func newSessions(log *slog.Logger) *sessions {
	return &sessions{log: log, up: map[netip.Addr]bool{}, errs: map[netip.Addr]string{}}
}

// update is GoBGP's OnPeerUpdate callback.
func (t *sessions) update(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	st := ev.Peer.State
	addr := st.NeighborAddress.Unmap()
	up := st.SessionState == bgp.BGP_FSM_ESTABLISHED
	t.mu.Lock()
	was := t.up[addr]
	t.up[addr] = up
	if !up && st.DisconnectMessage != "" && (was || failed(st.DisconnectReason)) {
		t.errs[addr] = st.DisconnectMessage
	}
	t.mu.Unlock()
	switch {
	case up && !was:
		t.log.Info("bgp session established", "peer", addr, "asn", st.PeerASN)
	case !up && was:
		t.log.Info("bgp session down", "peer", addr, "asn", st.PeerASN, "reason", st.DisconnectMessage)
	}
}

// failed says whether a session that was not up ended for a reason
// worth showing: not the FSM's own steps (a new connection, the idle
// hold timer) but what keeps a session from coming up, such as a
// NOTIFICATION for a wrong AS or password.
func failed(r api.PeerState_DisconnectReason) bool {
	switch r {
	case api.PeerState_DISCONNECT_REASON_NOTIFICATION_SENT,
		api.PeerState_DISCONNECT_REASON_NOTIFICATION_RECEIVED,
		api.PeerState_DISCONNECT_REASON_BAD_PEER_AS,
		api.PeerState_DISCONNECT_REASON_INVALID_MSG,
		api.PeerState_DISCONNECT_REASON_HOLD_TIMER_EXPIRED,
		api.PeerState_DISCONNECT_REASON_READ_FAILED,
		api.PeerState_DISCONNECT_REASON_WRITE_FAILED:
		return true
	}
	return false
}

func (t *sessions) lastError(addr netip.Addr) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.errs[addr]
}

// reset forgets the sessions of a stopped server; their errors stay.
func (t *sessions) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.up)
}
