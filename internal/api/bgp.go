package api

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"time"
)

// BGP is the daemon's BGP speaker: what it announces and why.
type BGP interface {
	// BGP reports the sessions and every candidate prefix. Without a bgp
	// section Enabled is false.
	BGP() BGPStatus
	// Drain withdraws vip (every VIP if it is not valid) until Undrain;
	// drain false undrains. A daemon without BGP refuses with
	// ErrConflict (wrapped), a VIP no service has with ErrNotFound.
	Drain(vip netip.Addr, drain bool) error
}

// BGPStatus is the speaker's state.
type BGPStatus struct {
	Enabled  bool        `json:"enabled"`
	ASN      uint32      `json:"asn,omitempty"`
	RouterID string      `json:"router_id,omitempty"`
	Peers    []BGPPeer   `json:"peers"`
	Prefixes []BGPPrefix `json:"prefixes"`
}

// BGPPeer is one router's session.
type BGPPeer struct {
	Address   string        `json:"address"`
	ASN       uint32        `json:"asn"`
	State     string        `json:"state"`
	Up        bool          `json:"up"`
	Uptime    time.Duration `json:"uptime_ns"`
	Sent      uint64        `json:"sent"`
	BFD       string        `json:"bfd,omitempty"`
	LastError string        `json:"last_error,omitempty"`
}

// BGPPrefix is one prefix this node may announce.
type BGPPrefix struct {
	Prefix string `json:"prefix"`
	// Kind is vip, local (this node's local address) or takeover.
	Kind      string `json:"kind"`
	Announced bool   `json:"announced"`
	Backup    bool   `json:"backup,omitempty"`
	// Why says why a prefix is withdrawn.
	Why string `json:"why,omitempty"`
}

// DrainRequest is the body of POST /v1/bgp/drain and /v1/bgp/undrain.
// An empty VIP means every VIP.
type DrainRequest struct {
	VIP string `json:"vip,omitempty"`
}

func (s *Server) bgpStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.src.BGP())
}

// bgpDrain serves drain and undrain.
func (s *Server) bgpDrain(drain bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req DrainRequest
		if !decodeBody(w, r, &req, nil) {
			return
		}
		var vip netip.Addr
		if req.VIP != "" {
			var err error
			if vip, err = netip.ParseAddr(req.VIP); err != nil {
				writeProblems(w, http.StatusBadRequest, "invalid request",
					[]Problem{{Path: "vip", Message: fmt.Sprintf("%q is not an IP address", req.VIP)}})
				return
			}
		}
		if err := s.src.Drain(vip, drain); err != nil {
			writeChangeError(w, err, "not drained", nil)
			return
		}
		writeJSON(w, http.StatusOK, s.src.BGP())
	}
}

// BGP reads the speaker's state.
func (c *Client) BGP(ctx context.Context) (BGPStatus, error) {
	var st BGPStatus
	return st, c.get(ctx, "/v1/bgp", &st)
}

// Drain withdraws vip (every VIP if empty); drain false undrains.
func (c *Client) Drain(ctx context.Context, vip string, drain bool) (BGPStatus, error) {
	path := "/v1/bgp/drain"
	if !drain {
		path = "/v1/bgp/undrain"
	}
	var st BGPStatus
	return st, c.do(ctx, http.MethodPost, path, DrainRequest{VIP: vip}, &st)
}
