package api

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"

	"github.com/xdplb/xdplb/internal/ident"
)

// ConnFilter narrows a connection listing; zero fields match everything.
type ConnFilter struct {
	// Services are the keys of the services asked for (one reference
	// without a protocol may name two); nil matches every service.
	Services []ident.Service
	// Backend matches a backend's address, and its port unless it is 0.
	Backend netip.AddrPort
}

// parseConnFilter reads ?service=VIP:PORT[/proto]|NAME&backend=IP[:PORT].
// A service that does not exist is an error, not an empty listing.
func parseConnFilter(r *http.Request, services []ServiceView) (ConnFilter, error) {
	var f ConnFilter
	q := r.URL.Query()
	if v := q.Get("service"); v != "" {
		ref, err := parseServiceRef(v)
		if err != nil {
			return f, err
		}
		for _, s := range services {
			if k := s.Key(); ref.Matches(k, s.Name) {
				f.Services = append(f.Services, k)
			}
		}
		if f.Services == nil {
			return f, notFound("service %s not found", ref)
		}
	}
	if v := q.Get("backend"); v != "" {
		ap, err := parseBackendRef(v)
		if err != nil {
			return f, err
		}
		f.Backend = netip.AddrPortFrom(ap.addr, ap.port)
	}
	return f, nil
}

// hasBackend tells whether a service the filter selects has the backend
// it names (or as its fallback).
func (f ConnFilter) hasBackend(services []ServiceView) bool {
	for _, s := range services {
		if f.Services != nil && !slices.Contains(f.Services, s.Key()) {
			continue
		}
		all := s.Backends
		if s.Fallback != nil {
			all = append(slices.Clone(all), *s.Fallback)
		}
		for _, b := range all {
			if a, err := netip.ParseAddr(b.Address); err == nil && a == f.Backend.Addr() && (f.Backend.Port() == 0 || b.Port == f.Backend.Port()) {
				return true
			}
		}
	}
	return false
}

func (f ConnFilter) match(c Connection) bool {
	if f.Services != nil && !slices.Contains(f.Services, ident.Service{VIP: c.VIP.Addr(), Port: c.VIP.Port(), Proto: c.Protocol}) {
		return false
	}
	if !f.Backend.IsValid() {
		return true
	}
	return c.Backend.Addr() == f.Backend.Addr() && (f.Backend.Port() == 0 || c.Backend.Port() == f.Backend.Port())
}

func (s *Server) connections(w http.ResponseWriter, r *http.Request) {
	services := s.src.Services()
	f, err := parseConnFilter(r, services)
	if err != nil {
		writeRefError(w, err)
		return
	}
	all, err := s.src.Connections()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	out := []Connection{}
	for _, c := range all {
		if f.match(c) {
			out = append(out, c)
		}
	}
	// A backend no service has and no connection goes to is a mistake,
	// not an empty listing; a removed one's remaining connections list.
	if len(out) == 0 && f.Backend.IsValid() && !f.hasBackend(services) {
		writeError(w, http.StatusNotFound, fmt.Errorf("backend %s not found", r.URL.Query().Get("backend")))
		return
	}
	writeJSON(w, http.StatusOK, out)
}
