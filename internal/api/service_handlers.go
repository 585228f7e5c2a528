package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/ident"
)

func (s *Server) listServices(w http.ResponseWriter, r *http.Request) {
	out := s.src.Services()
	if out == nil {
		out = []ServiceView{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) addService(w http.ResponseWriter, r *http.Request) {
	var req ServiceSpec
	if !decodeBody(w, r, &req, nil) {
		return
	}
	svc, ps := req.service()
	if len(ps) > 0 {
		writeProblems(w, http.StatusBadRequest, "invalid service", ps)
		return
	}
	var index int
	err := s.src.Change(func(c *config.Config) error {
		for _, o := range c.Services {
			if o.Key() == svc.Key() {
				return conflict("service %s already exists (%s)", svc.Key(), o.Name)
			}
			if o.Name == svc.Name {
				return conflict("service name %q is already taken by %s", svc.Name, o.Key())
			}
		}
		index = len(c.Services)
		c.Services = append(c.Services, svc)
		return nil
	})
	if err != nil {
		writeChangeError(w, err, "invalid service "+svc.Key().String(), servicePaths(&index, nil))
		return
	}
	writeJSON(w, http.StatusCreated, s.view(svc))
}

func (s *Server) editService(w http.ResponseWriter, r *http.Request) {
	ref, ok := serviceParam(w, r)
	if !ok {
		return
	}
	var req ServiceEdit
	if !decodeBody(w, r, &req, immutableServiceFields) {
		return
	}
	if req == (ServiceEdit{}) {
		writeError(w, http.StatusBadRequest, errors.New("nothing to change: give name, scheduler, persistence, forwarding, client_address or backends"))
		return
	}
	var backends []config.Backend
	if req.Backends != nil {
		var ps []Problem
		backends, ps = backendSpecs("backends", *req.Backends)
		if len(ps) > 0 {
			writeProblems(w, http.StatusBadRequest, "invalid backends", ps)
			return
		}
	}
	index := -1
	var edited config.Service
	err := s.src.Change(func(c *config.Config) error {
		i, err := findService(c, ref)
		if err != nil {
			return err
		}
		index = i
		svc := &c.Services[i]
		prev := svc.Backends
		if req.Name != nil {
			svc.Name = *req.Name // empty: back to the default
		}
		if req.Scheduler != nil {
			svc.Scheduler = *req.Scheduler
		}
		if req.Persistence != nil {
			svc.Persistence = time.Duration(*req.Persistence)
		}
		if req.PersistenceNetmask != nil {
			svc.PersistenceNetmask = *req.PersistenceNetmask
		}
		if req.Forwarding != nil {
			svc.Forwarding = *req.Forwarding // empty: fullnat, by FillDerived
		}
		if req.ClientAddress != nil {
			svc.ClientAddress = *req.ClientAddress // empty: none, by FillDerived
		}
		if req.Backends != nil {
			svc.Backends = slices.Clone(backends)
		}
		svc.FillDerived()
		for j, o := range c.Services {
			if j != i && o.Name == svc.Name {
				return conflict("service name %q is already taken by %s", svc.Name, o.Key())
			}
		}
		// A backend that stays keeps its own health check.
		for j, b := range svc.Backends {
			for _, old := range prev {
				if old.AddrPort() == b.AddrPort() {
					svc.Backends[j].HealthCheck = old.HealthCheck
				}
			}
		}
		edited = *svc
		return nil
	})
	if err != nil {
		writeChangeError(w, err, "invalid service "+ref.String(), servicePaths(&index, nil))
		return
	}
	writeJSON(w, http.StatusOK, s.view(edited))
}

func (s *Server) removeService(w http.ResponseWriter, r *http.Request) {
	ref, ok := serviceParam(w, r)
	if !ok {
		return
	}
	err := s.src.Change(func(c *config.Config) error {
		i, err := findService(c, ref)
		if err != nil {
			return err
		}
		c.Services = append(c.Services[:i:i], c.Services[i+1:]...)
		return nil
	})
	if err != nil {
		writeChangeError(w, err, "removing service "+ref.String()+" leaves an invalid configuration", nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) addBackend(w http.ResponseWriter, r *http.Request) {
	ref, ok := serviceParam(w, r)
	if !ok {
		return
	}
	var req BackendSpec
	if !decodeBody(w, r, &req, nil) {
		return
	}
	bs, ps := backendSpecs("", []BackendSpec{req})
	if len(ps) > 0 {
		writeProblems(w, http.StatusBadRequest, "invalid backend", ps)
		return
	}
	b := bs[0]
	index, bindex := -1, -1
	var edited config.Service
	err := s.src.Change(func(c *config.Config) error {
		i, err := findService(c, ref)
		if err != nil {
			return err
		}
		index = i
		svc := &c.Services[i]
		bindex = len(svc.Backends)
		svc.Backends = append(svc.Backends, b)
		svc.FillDerived()
		b = svc.Backends[bindex]
		for _, o := range svc.Backends[:bindex] {
			if o.AddrPort() == b.AddrPort() {
				return conflict("backend %s already in service %s", b.AddrPort(), svc.Name)
			}
		}
		edited = *svc
		return nil
	})
	if err != nil {
		summary := fmt.Sprintf("invalid backend %s for service %s", b.AddrPort(), ref)
		writeChangeError(w, err, summary, servicePaths(&index, &bindex))
		return
	}
	writeJSON(w, http.StatusCreated, s.view(edited))
}

func (s *Server) editBackend(w http.ResponseWriter, r *http.Request) {
	ref, bref, ok := backendParams(w, r)
	if !ok {
		return
	}
	var req BackendEdit
	if !decodeBody(w, r, &req, nil) {
		return
	}
	if req.Weight == nil {
		writeProblems(w, http.StatusBadRequest, "nothing to change", []Problem{{Path: "weight", Message: "missing (a weight 0-65535 is required)"}})
		return
	}
	index, bindex := -1, -1
	var edited config.Service
	err := s.src.Change(func(c *config.Config) error {
		i, err := findService(c, ref)
		if err != nil {
			return err
		}
		j, err := bref.find(c.Services[i])
		if err != nil {
			return err
		}
		index, bindex = i, j
		c.Services[i].Backends[j].Weight = *req.Weight
		edited = c.Services[i]
		return nil
	})
	if err != nil {
		summary := fmt.Sprintf("invalid weight for backend %s of service %s", bref.addr, ref)
		writeChangeError(w, err, summary, servicePaths(&index, &bindex))
		return
	}
	writeJSON(w, http.StatusOK, s.view(edited))
}

func (s *Server) removeBackend(w http.ResponseWriter, r *http.Request) {
	ref, bref, ok := backendParams(w, r)
	if !ok {
		return
	}
	err := s.src.Change(func(c *config.Config) error {
		i, err := findService(c, ref)
		if err != nil {
			return err
		}
		j, err := bref.find(c.Services[i])
		if err != nil {
			return err
		}
		svc := &c.Services[i]
		svc.Backends = append(svc.Backends[:j:j], svc.Backends[j+1:]...)
		return nil
	})
	if err != nil {
		writeChangeError(w, err, "removing the backend leaves an invalid configuration", nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	dryRun, err := queryBool(r, "dry_run")
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	res, err := s.src.Reload(dryRun)
	if err != nil {
		writeChangeError(w, err, "the configuration file is invalid; nothing changed", nil)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// zero restarts the counters Stats shows, of ?service=SERVICE or of all.
func (s *Server) zero(w http.ResponseWriter, r *http.Request) {
	var ref *ident.Ref
	if v := r.URL.Query().Get("service"); v != "" {
		parsed, err := parseServiceRef(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		ref = &parsed
	}
	if err := s.src.Zero(ref); err != nil {
		writeChangeError(w, err, "counters not zeroed", nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// queryBool reads a boolean query parameter; absent is false.
func queryBool(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want true or false", name, v)
	}
	return b, nil
}

// view is the service as the source shows it after a change, with its
// runtime state; if the source does not list it (yet), it is made from
// the configuration.
func (s *Server) view(svc config.Service) ServiceView {
	for _, v := range s.src.Services() {
		if v.VIP == svc.VIP.String() && v.Port == svc.Port && v.Protocol == svc.Protocol.String() {
			return v
		}
	}
	v := ServiceView{
		Name: svc.Name, VIP: svc.VIP.String(), Port: svc.Port, Protocol: svc.Protocol.String(),
		Scheduler: svc.Scheduler, Persistence: svc.Persistence, PersistenceNetmask: svc.PersistenceNetmask,
		Forwarding: svc.Forwarding, ClientAddress: svc.ClientAddress, Backends: []BackendView{},
	}
	for _, b := range svc.Backends {
		v.Backends = append(v.Backends, BackendView{Address: b.Address.String(), Port: b.Port, Weight: b.Weight, Up: true})
	}
	return v
}

func serviceParam(w http.ResponseWriter, r *http.Request) (ident.Ref, bool) {
	ref, err := parseServiceRef(r.PathValue("service"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return ref, false
	}
	return ref, true
}

func backendParams(w http.ResponseWriter, r *http.Request) (ident.Ref, backendRef, bool) {
	ref, ok := serviceParam(w, r)
	if !ok {
		return ref, backendRef{}, false
	}
	bref, err := parseBackendRef(r.PathValue("backend"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return ref, bref, false
	}
	return ref, bref, true
}
