package api

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/xdplb/xdplb/internal/conntrack"
)

// ConnFilter narrows a connection listing; zero fields match everything.
type ConnFilter struct {
	Service  netip.AddrPort // VIP:port
	Protocol string         // tcp or udp
	Backend  netip.AddrPort
}

// parseConnFilter reads ?service=VIP:port[/proto]&backend=IP:port.
func parseConnFilter(r *http.Request) (ConnFilter, error) {
	var f ConnFilter
	q := r.URL.Query()
	if v := q.Get("service"); v != "" {
		addr, proto, _ := strings.Cut(v, "/")
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return f, fmt.Errorf("service %q: want VIP:port or VIP:port/tcp|udp", v)
		}
		proto = strings.ToLower(proto)
		if proto != "" && proto != "tcp" && proto != "udp" {
			return f, fmt.Errorf("service %q: protocol %q is neither tcp nor udp", v, proto)
		}
		f.Service, f.Protocol = ap, proto
	}
	if v := q.Get("backend"); v != "" {
		ap, err := netip.ParseAddrPort(v)
		if err != nil {
			return f, fmt.Errorf("backend %q: want IP:port", v)
		}
		f.Backend = ap
	}
	return f, nil
}

func (f ConnFilter) match(c conntrack.Conn) bool {
	if f.Service.IsValid() && c.VIP != f.Service {
		return false
	}
	if f.Protocol != "" && !strings.EqualFold(c.Protocol, f.Protocol) {
		return false
	}
	return !f.Backend.IsValid() || c.Backend == f.Backend
}

func (s *Server) connections(w http.ResponseWriter, r *http.Request) {
	f, err := parseConnFilter(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	all, err := s.src.Connections()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	out := []conntrack.Conn{}
	for _, c := range all {
		if f.match(c) {
			out = append(out, c)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
