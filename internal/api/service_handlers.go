package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/xdplb/xdplb/internal/config"
)

// ServiceSpec is the body of POST /v1/services. Absent fields get the
// defaults a configuration file gives them: protocol tcp, scheduler rr,
// no persistence, name VIP:PORT/PROTO.
type ServiceSpec struct {
	Name        string        `json:"name,omitempty"`
	VIP         string        `json:"vip"`
	Port        uint16        `json:"port"`
	Protocol    string        `json:"protocol,omitempty"`
	Scheduler   string        `json:"scheduler,omitempty"`
	Persistence Duration      `json:"persistence,omitempty"`
	Backends    []BackendSpec `json:"backends,omitempty"`
}

// BackendSpec is a backend in a ServiceSpec or ServiceEdit, and the body
// of POST /v1/services/{service}/backends. Port defaults to the service
// port; an absent weight is 1, an explicit 0 means drained.
type BackendSpec struct {
	Address string  `json:"address"`
	Port    uint16  `json:"port,omitempty"`
	Weight  *uint32 `json:"weight,omitempty"`
}

// ServiceEdit is the body of PUT /v1/services/{service}: what is given
// changes, what is absent stays. Backends, if given, replaces the whole
// list (an empty list drains the service). The address and protocol of a
// service cannot change: remove it and add a new one.
type ServiceEdit struct {
	// Name, if empty, goes back to the default VIP:PORT/PROTO.
	Name        *string        `json:"name,omitempty"`
	Scheduler   *string        `json:"scheduler,omitempty"`
	Persistence *Duration      `json:"persistence,omitempty"`
	Backends    *[]BackendSpec `json:"backends,omitempty"`
}

// BackendEdit is the body of PUT /v1/services/{service}/backends/{backend}.
type BackendEdit struct {
	Weight *uint32 `json:"weight"`
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("300s", "5m"); it also reads a plain number as seconds, as
// ipvsadm's persistence timeout is given.
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return &durationError{value: strconv.Quote(s)}
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(data, &secs); err != nil {
		return &durationError{value: string(data)}
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// durationError is a value that is no duration; Duration is only used for
// persistence, so the handler reports it there.
type durationError struct{ value string }

func (e *durationError) Error() string {
	return fmt.Sprintf("%s is not a duration (for example \"300s\", or 300 for seconds)", e.value)
}

// refError is a service or backend in the path that cannot be parsed.
type refError struct{ msg string }

func (e *refError) Error() string { return e.msg }

// editError is what an edit returns for a service or backend that does
// not, or does already, exist: its message is the whole message, and it
// still matches ErrNotFound or ErrConflict.
type editError struct {
	msg  string
	kind error
}

func (e *editError) Error() string { return e.msg }
func (e *editError) Unwrap() error { return e.kind }

func notFound(format string, args ...any) error {
	return &editError{msg: fmt.Sprintf(format, args...), kind: ErrNotFound}
}

func conflict(format string, args ...any) error {
	return &editError{msg: fmt.Sprintf(format, args...), kind: ErrConflict}
}

// serviceRef names a service in a path: VIP:PORT, VIP:PORT/PROTO or its
// name.
type serviceRef struct {
	raw   string
	addr  netip.AddrPort // valid when raw is an address
	proto config.Protocol
}

const serviceRefForms = "want VIP:PORT, VIP:PORT/tcp|udp or a service name"

func parseServiceRef(s string) (serviceRef, error) {
	ref := serviceRef{raw: s}
	if s == "" {
		return ref, &refError{"service is empty: " + serviceRefForms}
	}
	addr, proto, hasProto := strings.Cut(s, "/")
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		// Something that starts like an address is a mistyped one, not
		// a name: say what is wrong with it.
		if why := addressProblem(addr); why != "" {
			return ref, &refError{fmt.Sprintf("service %q: %s; %s", s, why, serviceRefForms)}
		}
		return ref, nil // a name
	}
	if ap.Port() == 0 {
		return ref, &refError{fmt.Sprintf("service %q: 0 is not a port (1-65535); %s", s, serviceRefForms)}
	}
	switch p := config.Protocol(strings.ToLower(proto)); {
	case !hasProto:
		ref.proto = config.TCP
	case p == config.TCP || p == config.UDP:
		ref.proto = p
	default:
		return ref, &refError{fmt.Sprintf("service %q: protocol %q is neither tcp nor udp", s, proto)}
	}
	ref.addr = ap
	return ref, nil
}

// addressProblem says why s, which failed to parse as IP:PORT, is a
// broken address, or returns "" if it does not look like one at all.
func addressProblem(s string) string {
	if _, err := netip.ParseAddr(s); err == nil {
		return s + " is missing the port"
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return ""
	}
	host, port := s[:i], s[i+1:]
	if _, err := netip.ParseAddr(host); err != nil {
		return ""
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Sprintf("%q is not a port (1-65535)", port)
	}
	return ""
}

func (r serviceRef) String() string {
	if r.addr.IsValid() {
		return fmt.Sprintf("%s/%s", r.addr, r.proto)
	}
	return r.raw
}

// find returns the index of the service r names in c.
func (r serviceRef) find(c *config.Config) (int, error) {
	if r.addr.IsValid() {
		for i, s := range c.Services {
			if s.VIP == r.addr.Addr() && s.Port == r.addr.Port() && s.Protocol == r.proto {
				return i, nil
			}
		}
	}
	for i, s := range c.Services {
		if s.Name == r.raw {
			return i, nil
		}
	}
	return -1, notFound("service %s not found", r)
}

// backendRef names a backend in a path: IP:PORT, or IP for the service
// port.
type backendRef struct {
	addr netip.Addr
	port uint16 // 0: the service port
}

func parseBackendRef(s string) (backendRef, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return backendRef{addr: a}, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return backendRef{}, &refError{fmt.Sprintf("backend %q: want IP:PORT, or IP meaning the service port", s)}
	}
	return backendRef{addr: ap.Addr(), port: ap.Port()}, nil
}

func (r backendRef) in(s config.Service) netip.AddrPort {
	port := r.port
	if port == 0 {
		port = s.Port
	}
	return netip.AddrPortFrom(r.addr, port)
}

// find returns the index of the backend r names in s.
func (r backendRef) find(s config.Service) (int, error) {
	ap := r.in(s)
	for i, b := range s.Backends {
		if b.Address == ap.Addr() && b.Port == ap.Port() {
			return i, nil
		}
	}
	return -1, notFound("backend %s not in service %s", ap, s.Name)
}

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
		writeChangeError(w, err, "invalid service "+svc.Key(), servicePaths(&index, nil))
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
		writeError(w, http.StatusBadRequest, errors.New("nothing to change: give name, scheduler, persistence or backends"))
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
		i, err := ref.find(c)
		if err != nil {
			return err
		}
		index = i
		svc := &c.Services[i]
		if req.Name != nil {
			name := *req.Name
			if name == "" {
				name = svc.Key()
			}
			for j, o := range c.Services {
				if j != i && o.Name == name {
					return conflict("service name %q is already taken by %s", name, o.Key())
				}
			}
			svc.Name = name
		}
		if req.Scheduler != nil {
			svc.Scheduler = *req.Scheduler
		}
		if req.Persistence != nil {
			svc.Persistence = time.Duration(*req.Persistence)
		}
		if req.Backends != nil {
			next := make([]config.Backend, len(backends))
			for j, b := range backends {
				if b.Port == 0 {
					b.Port = svc.Port
				}
				// A backend that stays keeps its own health check.
				for _, old := range svc.Backends {
					if old.Address == b.Address && old.Port == b.Port {
						b.HealthCheck = old.HealthCheck
					}
				}
				next[j] = b
			}
			svc.Backends = next
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
		i, err := ref.find(c)
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
		i, err := ref.find(c)
		if err != nil {
			return err
		}
		index = i
		svc := &c.Services[i]
		if b.Port == 0 {
			b.Port = svc.Port
		}
		for _, o := range svc.Backends {
			if o.Address == b.Address && o.Port == b.Port {
				return conflict("backend %s already in service %s", netip.AddrPortFrom(b.Address, b.Port), svc.Name)
			}
		}
		bindex = len(svc.Backends)
		svc.Backends = append(svc.Backends, b)
		edited = *svc
		return nil
	})
	if err != nil {
		summary := fmt.Sprintf("invalid backend %s for service %s", netip.AddrPortFrom(b.Address, b.Port), ref)
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
		i, err := ref.find(c)
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
		i, err := ref.find(c)
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
	res, err := s.src.Reload()
	if err != nil {
		writeChangeError(w, err, "the configuration file is invalid; nothing changed", nil)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// service turns the request into a configuration service with the
// defaults a configuration file would give it, or the problems that keep
// it from being one. What Validate checks is left to it.
func (req ServiceSpec) service() (config.Service, []Problem) {
	var ps []Problem
	svc := config.Service{
		Name:          req.Name,
		Port:          req.Port,
		Protocol:      config.Protocol(strings.ToLower(req.Protocol)),
		Scheduler:     req.Scheduler,
		Persistence:   time.Duration(req.Persistence),
		OnBackendDown: config.KeepConnections,
	}
	if req.VIP == "" {
		ps = append(ps, Problem{Path: "vip", Message: "missing (an IPv4 address is required)"})
	} else if a, err := netip.ParseAddr(req.VIP); err != nil {
		ps = append(ps, Problem{Path: "vip", Message: fmt.Sprintf("%q is not an IP address", req.VIP)})
	} else {
		svc.VIP = a
	}
	if svc.Protocol == "" {
		svc.Protocol = config.TCP
	}
	if svc.Scheduler == "" {
		svc.Scheduler = "rr"
	}
	if svc.Name == "" && svc.VIP.IsValid() {
		svc.Name = svc.Key()
	}
	bs, bps := backendSpecs("backends", req.Backends)
	ps = append(ps, bps...)
	for i := range bs {
		if bs[i].Port == 0 {
			bs[i].Port = svc.Port
		}
	}
	svc.Backends = bs
	return svc, ps
}

// backendSpecs turns request backends into configuration ones; a port of
// 0 is left for the caller to default to the service port.
func backendSpecs(path string, specs []BackendSpec) ([]config.Backend, []Problem) {
	var ps []Problem
	out := make([]config.Backend, 0, len(specs))
	for i, spec := range specs {
		p := "address"
		if path != "" {
			p = fmt.Sprintf("%s[%d].address", path, i)
		}
		b := config.Backend{Port: spec.Port, Weight: 1}
		if spec.Weight != nil {
			b.Weight = *spec.Weight
		}
		if spec.Address == "" {
			ps = append(ps, Problem{Path: p, Message: "missing (an IPv4 address is required)"})
		} else if a, err := netip.ParseAddr(spec.Address); err != nil {
			ps = append(ps, Problem{Path: p, Message: fmt.Sprintf("%q is not an IP address", spec.Address)})
		} else {
			b.Address = a
		}
		out = append(out, b)
	}
	return out, ps
}

// view is the service as the source shows it after a change, with its
// runtime state; if the source does not list it (yet), it is made from
// the configuration.
func (s *Server) view(svc config.Service) ServiceView {
	for _, v := range s.src.Services() {
		if v.VIP == svc.VIP.String() && v.Port == svc.Port && v.Protocol == string(svc.Protocol) {
			return v
		}
	}
	v := ServiceView{
		Name: svc.Name, VIP: svc.VIP.String(), Port: svc.Port, Protocol: string(svc.Protocol),
		Scheduler: svc.Scheduler, Persistence: svc.Persistence, Backends: []BackendView{},
	}
	for _, b := range svc.Backends {
		v.Backends = append(v.Backends, BackendView{Address: b.Address.String(), Port: b.Port, Weight: b.Weight, Up: true})
	}
	return v
}

func serviceParam(w http.ResponseWriter, r *http.Request) (serviceRef, bool) {
	ref, err := parseServiceRef(r.PathValue("service"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return ref, false
	}
	return ref, true
}

func backendParams(w http.ResponseWriter, r *http.Request) (serviceRef, backendRef, bool) {
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

// immutableServiceFields explains the fields of a new service that an
// edit cannot change.
var immutableServiceFields = map[string]string{
	"vip":      "the address of a service cannot change; remove the service and add a new one",
	"port":     "the port of a service cannot change; remove the service and add a new one",
	"protocol": "the protocol of a service cannot change; remove the service and add a new one",
}

const maxBody = 1 << 20

// decodeBody reads the request's JSON object into v, strictly, and
// answers 400 naming what is wrong if it cannot. hints explain unknown
// fields that are known to be tried.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, hints map[string]string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("data after the JSON object")
		}
	}
	if err == nil {
		return true
	}
	var (
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		duration *durationError
		tooBig   *http.MaxBytesError
	)
	switch {
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, errors.New("empty request body: want a JSON object"))
	case errors.Is(err, io.ErrUnexpectedEOF):
		writeError(w, http.StatusBadRequest, errors.New("malformed JSON: the body ends in the middle of a value"))
	case errors.As(err, &syntax):
		writeError(w, http.StatusBadRequest, fmt.Errorf("malformed JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: ")))
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", tooBig.Limit))
	case errors.As(err, &duration):
		writeProblems(w, http.StatusBadRequest, "invalid request", []Problem{{Path: "persistence", Message: duration.Error()}})
	case errors.As(err, &typ):
		if typ.Field == "" {
			writeError(w, http.StatusBadRequest, fmt.Errorf("the body is a JSON %s, not an object", typ.Value))
			return false
		}
		writeProblems(w, http.StatusBadRequest, "invalid request", []Problem{{Path: typ.Field, Message: typeProblem(typ)}})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		msg := "unknown field"
		if h, ok := hints[name]; ok {
			msg += ": " + h
		}
		writeProblems(w, http.StatusBadRequest, fmt.Sprintf("unknown field %q", name), []Problem{{Path: name, Message: msg}})
	default:
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %s", strings.TrimPrefix(err.Error(), "json: ")))
	}
	return false
}

// typeProblem explains a JSON value of the wrong type or out of range.
func typeProblem(e *json.UnmarshalTypeError) string {
	field := e.Field
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		field = field[i+1:]
	}
	bounds := map[string]string{"port": "a port (1-65535)", "weight": "a weight (0-65535)"}[field]
	if n, ok := strings.CutPrefix(e.Value, "number "); ok && bounds != "" {
		return fmt.Sprintf("%s is not %s", n, bounds)
	}
	if bounds != "" {
		return fmt.Sprintf("a %s where %s is expected", e.Value, bounds)
	}
	want := e.Type.Kind().String()
	switch want {
	case "slice":
		want = "array"
	case "struct", "map":
		want = "object"
	}
	return fmt.Sprintf("%s where a %s is expected", e.Value, want)
}

// servicePaths makes the problems Validate reports about the service at
// *index (and its backend at *bindex) relative to it, as the request
// names them: "services[3].backends[1].weight" becomes
// "backends[1].weight", or "weight" for a single backend.
func servicePaths(index, bindex *int) func(string) string {
	return func(path string) string {
		if index == nil || *index < 0 {
			return path
		}
		prefix := fmt.Sprintf("services[%d]", *index)
		if bindex != nil && *bindex >= 0 {
			prefix += fmt.Sprintf(".backends[%d]", *bindex)
		}
		if path == prefix {
			return ""
		}
		if rest, ok := strings.CutPrefix(path, prefix+"."); ok {
			return rest
		}
		return path
	}
}

// writeChangeError answers for an edit or reload that failed: 400 with
// the problems of an invalid configuration (summary says what was
// invalid), 404 or 409 for requests naming what is not, or is already,
// there, 500 for the rest.
func writeChangeError(w http.ResponseWriter, err error, summary string, rel func(string) string) {
	var cerr *config.Error
	switch {
	case errors.As(err, &cerr):
		ps := make([]Problem, len(cerr.Problems))
		for i, p := range cerr.Problems {
			path := p.Path
			if rel != nil {
				path = rel(path)
			}
			ps[i] = Problem{Path: path, Message: p.Msg}
		}
		writeProblems(w, http.StatusBadRequest, summary, ps)
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, err)
	default:
		writeError(w, http.StatusInternalServerError, err)
	}
}

func writeProblems(w http.ResponseWriter, code int, msg string, ps []Problem) {
	writeJSON(w, code, Error{Message: msg, Problems: ps})
}
