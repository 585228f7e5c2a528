package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/config"
)

// call sends method path with body (raw JSON, or "" for none) to a server
// over src and returns the status and body.
func call(t *testing.T, src Source, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	NewServer(src, slog.New(slog.DiscardHandler)).Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

func decode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

// wantError checks a failed request's status and that its message
// contains msg and, if path is not "-", that a problem has that path.
func wantError(t *testing.T, code int, body []byte, wantCode int, msg, path string) Error {
	t.Helper()
	if code != wantCode {
		t.Fatalf("status %d, want %d; body %s", code, wantCode, body)
	}
	e := decode[Error](t, body)
	text := e.Message
	for _, p := range e.Problems {
		text += "\n" + p.Path + ": " + p.Message
	}
	if !strings.Contains(text, msg) {
		t.Errorf("error %q does not contain %q", text, msg)
	}
	if path != "-" {
		found := false
		for _, p := range e.Problems {
			found = found || p.Path == path
		}
		if !found {
			t.Errorf("no problem with path %q in %+v", path, e.Problems)
		}
	}
	return e
}

func TestListServices(t *testing.T) {
	src := newFakeSource(t)
	code, body := call(t, src, "GET", "/v1/services", "")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	got := decode[[]ServiceView](t, body)
	if len(got) != 1 || got[0].Name != "web" || len(got[0].Backends) != 2 || got[0].Backends[1].Weight != 2 {
		t.Errorf("services = %+v", got)
	}

	src.cfg.Services = nil
	if _, body := call(t, src, "GET", "/v1/services", ""); strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("no services: body %s, want []", body)
	}
}

func TestAddServiceDefaults(t *testing.T) {
	src := newFakeSource(t)
	code, body := call(t, src, "POST", "/v1/services", `{
		"vip": "172.19.0.20", "port": 443, "persistence": "300s",
		"backends": [{"address": "10.0.0.1"}, {"address": "10.0.0.2", "port": 8443, "weight": 0}]
	}`)
	if code != http.StatusCreated {
		t.Fatalf("status %d: %s", code, body)
	}
	v := decode[ServiceView](t, body)
	if v.Name != "172.19.0.20:443/tcp" || v.Protocol != "tcp" || v.Scheduler != "rr" || v.Persistence != 300*time.Second ||
		v.Forwarding != config.ForwardingFullNAT || v.ClientAddress != config.ClientAddressNone {
		t.Errorf("view = %+v", v)
	}
	s := src.service(t, "172.19.0.20:443/tcp")
	if s.Name != "172.19.0.20:443/tcp" || s.Scheduler != "rr" || s.Persistence != 300*time.Second ||
		s.OnBackendDown != config.KeepConnections || s.Forwarding != config.ForwardingFullNAT ||
		s.ClientAddress != config.ClientAddressNone {
		t.Errorf("service = %+v", s)
	}
	if len(s.Backends) != 2 || s.Backends[0].Port != 443 || s.Backends[0].Weight != 1 ||
		s.Backends[1].Port != 8443 || s.Backends[1].Weight != 0 {
		t.Errorf("backends = %+v", s.Backends)
	}
}

func TestAddServiceExplicit(t *testing.T) {
	src := newFakeSource(t)
	code, body := call(t, src, "POST", "/v1/services",
		`{"name": "dns", "vip": "172.19.0.10", "port": 53, "protocol": "UDP", "scheduler": "maglev", "persistence": 60}`)
	if code != http.StatusCreated {
		t.Fatalf("status %d: %s", code, body)
	}
	s := src.service(t, "172.19.0.10:53/udp")
	if s.Name != "dns" || s.Scheduler != "maglev" || s.Persistence != time.Minute || len(s.Backends) != 0 {
		t.Errorf("service = %+v", s)
	}
}

// TestServiceClientAddress: client_address is set on add, changed and
// cleared back to none on edit, and shown in the view.
func TestServiceClientAddress(t *testing.T) {
	src := newFakeSource(t)
	code, body := call(t, src, "POST", "/v1/services", `{"vip": "172.19.0.20", "port": 443, "client_address": "toa"}`)
	if code != http.StatusCreated {
		t.Fatalf("status %d: %s", code, body)
	}
	if v := decode[ServiceView](t, body); v.ClientAddress != config.ClientAddressTOA {
		t.Errorf("view client_address %q, want toa", v.ClientAddress)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"client_address": "none"}`, config.ClientAddressNone},
		{`{"client_address": "toa"}`, config.ClientAddressTOA},
		{`{"client_address": ""}`, config.ClientAddressNone},
	} {
		code, body := call(t, src, "PUT", "/v1/services/172.19.0.20:443", tc.body)
		if code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", tc.body, code, body)
		}
		if v := decode[ServiceView](t, body); v.ClientAddress != tc.want {
			t.Errorf("%s: view client_address %q, want %q", tc.body, v.ClientAddress, tc.want)
		}
		if s := src.service(t, "172.19.0.20:443/tcp"); s.ClientAddress != tc.want {
			t.Errorf("%s: service client_address %q, want %q", tc.body, s.ClientAddress, tc.want)
		}
	}
}

// TestServiceForwarding: forwarding is set on add, changed and cleared
// back to fullnat on edit, and shown in the view; a DSR service's backends
// without a port take the service's.
func TestServiceForwarding(t *testing.T) {
	src := newFakeSource(t)
	code, body := call(t, src, "POST", "/v1/services",
		`{"vip": "172.19.0.20", "port": 443, "forwarding": "dsr-l2", "backends": [{"address": "10.0.0.1"}]}`)
	if code != http.StatusCreated {
		t.Fatalf("status %d: %s", code, body)
	}
	if v := decode[ServiceView](t, body); v.Forwarding != config.ForwardingDSRL2 || v.Backends[0].Port != 443 {
		t.Errorf("view = %+v, want forwarding dsr-l2 and the backend on 443", v)
	}
	code, body = call(t, src, "POST", "/v1/services/172.19.0.20:443/backends", `{"address": "10.0.0.2"}`)
	if code != http.StatusCreated {
		t.Fatalf("backend without a port: status %d: %s", code, body)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"forwarding": "fullnat"}`, config.ForwardingFullNAT},
		{`{"forwarding": "dsr-l2"}`, config.ForwardingDSRL2},
		{`{"forwarding": ""}`, config.ForwardingFullNAT},
	} {
		code, body := call(t, src, "PUT", "/v1/services/172.19.0.20:443", tc.body)
		if code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", tc.body, code, body)
		}
		if v := decode[ServiceView](t, body); v.Forwarding != tc.want {
			t.Errorf("%s: view forwarding %q, want %q", tc.body, v.Forwarding, tc.want)
		}
		if s := src.service(t, "172.19.0.20:443/tcp"); s.Forwarding != tc.want {
			t.Errorf("%s: service forwarding %q, want %q", tc.body, s.Forwarding, tc.want)
		}
	}

	src.cfg.DSR.EncapSource = netip.MustParseAddr("172.19.0.5")
	code, body = call(t, src, "PUT", "/v1/services/172.19.0.20:443", `{"forwarding": "dsr-gue"}`)
	if code != http.StatusOK {
		t.Fatalf("dsr-gue with an encap source: status %d: %s", code, body)
	}
	code, body = call(t, src, "POST", "/v1/services/172.19.0.20:443/backends", `{"address": "10.0.0.3", "port": 8443}`)
	wantError(t, code, body, http.StatusBadRequest,
		"8443 differs from the service's port 443: dsr-gue cannot rewrite ports", "port")
}

func TestAddServiceConflicts(t *testing.T) {
	src := newFakeSource(t)
	code, body := call(t, src, "POST", "/v1/services", `{"vip": "172.19.0.10", "port": 80}`)
	wantError(t, code, body, http.StatusConflict, "service 172.19.0.10:80/tcp already exists (web)", "-")
	code, body = call(t, src, "POST", "/v1/services", `{"name": "web", "vip": "172.19.0.10", "port": 81}`)
	wantError(t, code, body, http.StatusConflict, `service name "web" is already taken by 172.19.0.10:80/tcp`, "-")
	if src.changes != 0 {
		t.Errorf("%d changes made", src.changes)
	}
}

func TestAddServiceInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, body, msg, path string
	}{
		{"port 0", `{"vip": "172.19.0.20", "port": 0}`, "missing", "port"},
		{"port absent", `{"vip": "172.19.0.20"}`, "missing", "port"},
		{"port too big", `{"vip": "172.19.0.20", "port": 70000}`, "70000 is not a port", "port"},
		{"bad vip", `{"vip": "172.19.0.300", "port": 80}`, `"172.19.0.300" is not an IP address`, "vip"},
		{"missing vip", `{"port": 80}`, "missing", "vip"},
		{"loopback vip", `{"vip": "127.0.0.1", "port": 80}`, "loopback", "vip"},
		{"bad backend", `{"vip": "172.19.0.20", "port": 80, "backends": [{"address": "x"}]}`, `"x" is not an IP address`, "backends[0].address"},
		{"weight", `{"vip": "172.19.0.20", "port": 80, "backends": [{"address": "10.0.0.1"}, {"address": "10.0.0.2", "weight": 70000}]}`,
			"70000 is not a weight", "backends[1].weight"},
		{"weight overflow", `{"vip": "172.19.0.20", "port": 80, "backends": [{"address": "10.0.0.1", "weight": -1}]}`,
			"not a weight", "backends.weight"},
		{"scheduler", `{"vip": "172.19.0.20", "port": 80, "scheduler": "sed"}`, `"sed" is not a scheduler`, "scheduler"},
		{"protocol", `{"vip": "172.19.0.20", "port": 80, "protocol": "sctp"}`, `"sctp" is not a protocol`, "protocol"},
		{"client_address", `{"vip": "172.19.0.20", "port": 80, "client_address": "proxy"}`,
			`"proxy" is not a client address mode (accepted: none, toa)`, "client_address"},
		{"client_address toa on udp", `{"vip": "172.19.0.20", "port": 53, "protocol": "udp", "client_address": "toa"}`,
			"toa is for tcp services", "client_address"},
		{"client_address not a string", `{"vip": "172.19.0.20", "port": 80, "client_address": true}`,
			"bool where a string is expected", "client_address"},
		{"forwarding", `{"vip": "172.19.0.20", "port": 80, "forwarding": "dr"}`,
			`"dr" is not a forwarding mode (accepted: fullnat, dsr-l2, dsr-ipip, dsr-gue)`, "forwarding"},
		{"forwarding not a string", `{"vip": "172.19.0.20", "port": 80, "forwarding": 1}`,
			"number where a string is expected", "forwarding"},
		{"forwarding dsr with toa", `{"vip": "172.19.0.20", "port": 80, "forwarding": "dsr-l2", "client_address": "toa"}`,
			"toa is for forwarding fullnat: with dsr-l2 the backend already sees the client's address", "client_address"},
		{"forwarding dsr to another port", `{"vip": "172.19.0.20", "port": 80, "forwarding": "dsr-l2", "backends": [{"address": "10.0.0.1", "port": 8080}]}`,
			"8080 differs from the service's port 80: dsr-l2 cannot rewrite ports", "backends[0].port"},
		{"forwarding tunnel without an encap source", `{"vip": "172.19.0.20", "port": 80, "forwarding": "dsr-ipip"}`,
			"missing (an IPv4 address of this node, the outer source of the tunnelled packets, is required): services[1] (172.19.0.20:80/tcp) uses dsr-ipip",
			"dsr.encap_source"},
		{"persistence", `{"vip": "172.19.0.20", "port": 80, "persistence": "soon"}`, `"soon" is not a duration`, "persistence"},
		{"persistence range", `{"vip": "172.19.0.20", "port": 80, "persistence": "48h"}`, "out of range", "persistence"},
		{"persistence seconds past a Duration", `{"vip": "172.19.0.20", "port": 80, "persistence": 1e300}`,
			"persistence: 1e300 is out of range (0 for none, or 1s to 24h)", "persistence"},
		{"persistence seconds past a Duration, negative", `{"vip": "172.19.0.20", "port": 80, "persistence": -1e300}`,
			"persistence: -1e300 is out of range (0 for none, or 1s to 24h)", "persistence"},
		{"persistence seconds past a float64", `{"vip": "172.19.0.20", "port": 80, "persistence": 1e400}`,
			"persistence: 1e400 is out of range (0 for none, or 1s to 24h)", "persistence"},
		{"persistence seconds just past a Duration", `{"vip": "172.19.0.20", "port": 80, "persistence": 9223372037}`,
			"persistence: 9223372037 is out of range (0 for none, or 1s to 24h)", "persistence"},
		{"persistence string past a Duration", `{"vip": "172.19.0.20", "port": 80, "persistence": "9999999999h"}`,
			`persistence: "9999999999h" is out of range (0 for none, or 1s to 24h)`, "persistence"},
		{"name with a newline", `{"name": "web\n172.19.0.9:80", "vip": "172.19.0.20", "port": 80}`, "may hold only letters", "name"},
		{"name with a control character", `{"name": "web\u001b[2J", "vip": "172.19.0.20", "port": 80}`, "may hold only letters", "name"},
		{"name with a space", `{"name": "my web", "vip": "172.19.0.20", "port": 80}`, "may hold only letters", "name"},
		{"name like an address", `{"name": "172.19.0.10:80", "vip": "172.19.0.20", "port": 80}`, "may hold only letters", "name"},
		{"name with bidi control", `{"name": "web\u202e", "vip": "172.19.0.20", "port": 80}`, "may hold only letters", "name"},
		{"name too long", `{"name": "` + strings.Repeat("w", 65) + `", "vip": "172.19.0.20", "port": 80}`, "more than 64", "name"},
		{"unknown field", `{"vip": "172.19.0.20", "port": 80, "weight": 3}`, `unknown field "weight"`, "weight"},
		{"wrong type", `{"vip": "172.19.0.20", "port": "80"}`, "a string where a port (1-65535) is expected", "port"},
		{"malformed", `{"vip": "172.19.0.20", "port": 80`, "malformed JSON", "-"},
		{"syntax", `{"vip": 172.19.0.20}`, "malformed JSON at byte", "-"},
		{"trailing", `{"vip": "172.19.0.20", "port": 80} {}`, "after the JSON object", "-"},
		{"empty", ``, "empty request body", "-"},
		{"not an object", `[1]`, "not an object", "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newFakeSource(t)
			code, body := call(t, src, "POST", "/v1/services", tc.body)
			wantError(t, code, body, http.StatusBadRequest, tc.msg, tc.path)
			if src.changes != 0 {
				t.Errorf("%d changes made", src.changes)
			}
		})
	}
}

func TestEditService(t *testing.T) {
	for _, ref := range []string{"web", "172.19.0.10:80", "172.19.0.10:80%2Ftcp", "172.19.0.10:80%2FTCP"} {
		t.Run(ref, func(t *testing.T) {
			src := newFakeSource(t)
			code, body := call(t, src, "PUT", "/v1/services/"+ref, `{"scheduler": "wrr", "persistence": "5m", "name": "www"}`)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			v := decode[ServiceView](t, body)
			if v.Name != "www" || v.Scheduler != "wrr" || v.Persistence != 5*time.Minute || len(v.Backends) != 2 {
				t.Errorf("view = %+v", v)
			}
		})
	}
}

func TestEditServiceBackends(t *testing.T) {
	src := newFakeSource(t)
	code, body := call(t, src, "PUT", "/v1/services/web",
		`{"backends": [{"address": "172.19.0.3"}, {"address": "172.19.0.4", "port": 8080, "weight": 5}]}`)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	s := src.service(t, "172.19.0.10:80/tcp")
	if len(s.Backends) != 2 || s.Backends[0].Address.String() != "172.19.0.3" || s.Backends[0].Port != 80 ||
		s.Backends[0].Weight != 1 || s.Backends[1].Port != 8080 || s.Backends[1].Weight != 5 {
		t.Errorf("backends = %+v", s.Backends)
	}
	if s.Scheduler != "rr" || s.Name != "web" {
		t.Errorf("untouched fields changed: %+v", s)
	}

	code, body = call(t, src, "PUT", "/v1/services/web", `{"backends": []}`)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	if s := src.service(t, "172.19.0.10:80/tcp"); len(s.Backends) != 0 {
		t.Errorf("backends = %+v, want none", s.Backends)
	}

	code, body = call(t, src, "PUT", "/v1/services/web", `{"backends": [{"address": "10.0.0.1"}, {"address": "10.0.0.1"}]}`)
	wantError(t, code, body, http.StatusBadRequest, "duplicates backends[0]", "backends[1]")
}

func TestEditServiceName(t *testing.T) {
	src := newFakeSource(t)
	code, body := call(t, src, "POST", "/v1/services", `{"name": "api", "vip": "172.19.0.10", "port": 81}`)
	if code != http.StatusCreated {
		t.Fatalf("status %d: %s", code, body)
	}
	code, body = call(t, src, "PUT", "/v1/services/api", `{"name": "web"}`)
	wantError(t, code, body, http.StatusConflict, `service name "web" is already taken by 172.19.0.10:80/tcp`, "-")

	code, body = call(t, src, "PUT", "/v1/services/api", `{"name": ""}`)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	if v := decode[ServiceView](t, body); v.Name != "172.19.0.10:81/tcp" {
		t.Errorf("name = %q, want the default", v.Name)
	}
	// Renaming a service to its own name is no conflict.
	code, body = call(t, src, "PUT", "/v1/services/web", `{"name": "web"}`)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
}

func TestEditServiceErrors(t *testing.T) {
	for _, tc := range []struct {
		name, ref, body string
		code            int
		msg, path       string
	}{
		{"unknown address", "172.19.0.10:81", `{"scheduler": "wrr"}`, 404, "service 172.19.0.10:81 not found", "-"},
		{"unknown protocol", "172.19.0.10:80%2Fudp", `{"scheduler": "wrr"}`, 404, "service 172.19.0.10:80/udp not found", "-"},
		{"unknown name", "api", `{"scheduler": "wrr"}`, 404, "service api not found", "-"},
		{"missing port", "172.19.0.10", `{"scheduler": "wrr"}`, 400, "\"172.19.0.10\" is missing the port", "-"},
		{"bad port", "172.19.0.10:http", `{"scheduler": "wrr"}`, 400, `"http" is not a port`, "-"},
		{"bad protocol", "172.19.0.10:80%2Fsctp", `{"scheduler": "wrr"}`, 400, `"sctp" is not a protocol`, "-"},
		{"vip", "web", `{"vip": "172.19.0.11"}`, 400, "address of a service cannot change", "vip"},
		{"nothing", "web", `{}`, 400, "nothing to change", "-"},
		{"scheduler", "web", `{"scheduler": "sed"}`, 400, `"sed" is not a scheduler`, "scheduler"},
		{"client_address", "web", `{"client_address": "TOA"}`, 400, `"TOA" is not a client address mode`, "client_address"},
		{"forwarding", "web", `{"forwarding": "DSR"}`, 400, `"DSR" is not a forwarding mode`, "forwarding"},
		{"forwarding tunnel without an encap source", "web", `{"forwarding": "dsr-gue"}`, 400, "services[0] (web) uses dsr-gue", "dsr.encap_source"},
		{"forwarding dsr with a backend on another port", "web", `{"forwarding": "dsr-l2", "backends": [{"address": "10.0.0.1", "port": 81}]}`,
			400, "81 differs from the service's port 80", "backends[0].port"},
		{"backend weight", "web", `{"backends": [{"address": "10.0.0.1", "weight": 65536}]}`, 400, "65536 is not a weight", "backends[0].weight"},
		{"backend address", "web", `{"backends": [{"address": "10.0.0"}]}`, 400, "not an IP address", "backends[0].address"},
		{"name with a newline", "web", `{"name": "web\nTCP  172.19.0.9:80 rr"}`, 400, "may hold only letters", "name"},
		{"name with a control character", "web", `{"name": "\u0007"}`, 400, "may hold only letters", "name"},
		{"name like another service", "web", `{"name": "172.19.0.11:80/tcp"}`, 400, "may hold only letters", "name"},
		{"persistence past a Duration", "web", `{"persistence": 1e300}`, 400, "1e300 is out of range (0 for none, or 1s to 24h)", "persistence"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newFakeSource(t)
			code, body := call(t, src, "PUT", "/v1/services/"+tc.ref, tc.body)
			wantError(t, code, body, tc.code, tc.msg, tc.path)
			if src.changes != 0 {
				t.Errorf("%d changes made", src.changes)
			}
		})
	}
}

func TestRemoveService(t *testing.T) {
	src := newFakeSource(t)
	code, body := call(t, src, "DELETE", "/v1/services/172.19.0.10:80%2Ftcp", "")
	if code != http.StatusNoContent {
		t.Fatalf("status %d: %s", code, body)
	}
	if len(src.cfg.Services) != 0 {
		t.Errorf("services = %+v", src.cfg.Services)
	}
	code, body = call(t, src, "DELETE", "/v1/services/web", "")
	wantError(t, code, body, http.StatusNotFound, "service web not found", "-")
}

func TestAddBackend(t *testing.T) {
	src := newFakeSource(t)
	code, body := call(t, src, "POST", "/v1/services/web/backends", `{"address": "172.19.0.4"}`)
	if code != http.StatusCreated {
		t.Fatalf("status %d: %s", code, body)
	}
	v := decode[ServiceView](t, body)
	if len(v.Backends) != 3 || v.Backends[2] != (BackendView{Address: "172.19.0.4", Port: 80, Weight: 1, Up: true}) {
		t.Errorf("view = %+v", v)
	}
	code, body = call(t, src, "POST", "/v1/services/web/backends", `{"address": "172.19.0.4", "port": 8080, "weight": 0}`)
	if code != http.StatusCreated {
		t.Fatalf("status %d: %s", code, body)
	}
	s := src.service(t, "172.19.0.10:80/tcp")
	if b := s.Backends[3]; b.Port != 8080 || b.Weight != 0 {
		t.Errorf("backend = %+v", b)
	}
}

func TestAddBackendErrors(t *testing.T) {
	for _, tc := range []struct {
		name, ref, body string
		code            int
		msg, path       string
	}{
		{"duplicate", "web", `{"address": "172.19.0.2"}`, 409, "backend 172.19.0.2:80 already in service web", "-"},
		{"duplicate port", "web", `{"address": "172.19.0.3", "port": 80}`, 409, "backend 172.19.0.3:80 already in service web", "-"},
		{"unknown service", "172.19.0.10:81", `{"address": "172.19.0.4"}`, 404, "service 172.19.0.10:81 not found", "-"},
		{"weight", "web", `{"address": "172.19.0.4", "weight": 70000}`, 400, "70000 is not a weight", "weight"},
		{"address", "web", `{"address": "172.19.0.256"}`, 400, `"172.19.0.256" is not an IP address`, "address"},
		{"multicast", "web", `{"address": "224.0.0.1"}`, 400, "multicast", "address"},
		{"missing address", "web", `{"weight": 1}`, 400, "missing", "address"},
		{"unknown field", "web", `{"address": "172.19.0.4", "health": true}`, 400, `unknown field "health"`, "health"},
		{"port", "web", `{"address": "172.19.0.4", "port": 65536}`, 400, "65536 is not a port", "port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newFakeSource(t)
			code, body := call(t, src, "POST", "/v1/services/"+tc.ref+"/backends", tc.body)
			wantError(t, code, body, tc.code, tc.msg, tc.path)
			if src.changes != 0 {
				t.Errorf("%d changes made", src.changes)
			}
		})
	}
}

func TestEditBackend(t *testing.T) {
	for _, ref := range []string{"172.19.0.3", "172.19.0.3:80"} {
		src := newFakeSource(t)
		code, body := call(t, src, "PUT", "/v1/services/web/backends/"+ref, `{"weight": 0}`)
		if code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", ref, code, body)
		}
		if w := src.service(t, "172.19.0.10:80/tcp").Backends[1].Weight; w != 0 {
			t.Errorf("%s: weight %d, want 0", ref, w)
		}
	}
}

func TestEditBackendErrors(t *testing.T) {
	for _, tc := range []struct {
		name, path, body string
		code             int
		msg, ppath       string
	}{
		{"unknown backend", "web/backends/172.19.0.4", `{"weight": 1}`, 404, "backend 172.19.0.4:80 not in service web", "-"},
		{"other port", "web/backends/172.19.0.2:81", `{"weight": 1}`, 404, "backend 172.19.0.2:81 not in service web", "-"},
		{"unknown service", "www/backends/172.19.0.2", `{"weight": 1}`, 404, "service www not found", "-"},
		{"bad backend", "web/backends/backend-1", `{"weight": 1}`, 400, `backend "backend-1": "backend-1" is not an IP address`, "-"},
		{"port 0", "web/backends/172.19.0.2:0", `{"weight": 1}`, 400, `backend "172.19.0.2:0": "0" is not a port`, "-"},
		{"weight", "web/backends/172.19.0.2", `{"weight": 70000}`, 400, "70000 is not a weight", "weight"},
		{"no weight", "web/backends/172.19.0.2", `{}`, 400, "missing", "weight"},
		{"port field", "web/backends/172.19.0.2", `{"weight": 1, "port": 81}`, 400, `unknown field "port"`, "port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newFakeSource(t)
			code, body := call(t, src, "PUT", "/v1/services/"+tc.path, tc.body)
			wantError(t, code, body, tc.code, tc.msg, tc.ppath)
		})
	}
}

func TestRemoveBackend(t *testing.T) {
	src := newFakeSource(t)
	code, body := call(t, src, "DELETE", "/v1/services/web/backends/172.19.0.2:80", "")
	if code != http.StatusNoContent {
		t.Fatalf("status %d: %s", code, body)
	}
	s := src.service(t, "172.19.0.10:80/tcp")
	if len(s.Backends) != 1 || s.Backends[0].Address.String() != "172.19.0.3" {
		t.Errorf("backends = %+v", s.Backends)
	}
	code, body = call(t, src, "DELETE", "/v1/services/web/backends/172.19.0.2", "")
	wantError(t, code, body, http.StatusNotFound, "backend 172.19.0.2:80 not in service web", "-")
}

func TestChangeFailure(t *testing.T) {
	src := newFakeSource(t)
	src.changeErr = errors.New("map update: no space left")
	code, body := call(t, src, "POST", "/v1/services/web/backends", `{"address": "172.19.0.4"}`)
	wantError(t, code, body, http.StatusInternalServerError, "map update: no space left", "-")
}

func TestReload(t *testing.T) {
	src := newFakeSource(t)
	src.reload = ReloadResult{Applied: []string{"services"}, NeedRestart: []string{"xdp_mode"}}
	code, body := call(t, src, "POST", "/v1/reload", "")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	if r := decode[ReloadResult](t, body); len(r.Applied) != 1 || r.NeedRestart[0] != "xdp_mode" {
		t.Errorf("result = %+v", r)
	}

	src.reloadErr = &config.Error{Problems: []config.Problem{{Path: "services[0].port", Msg: "missing"}}}
	code, body = call(t, src, "POST", "/v1/reload", "")
	wantError(t, code, body, http.StatusBadRequest, "configuration file is invalid", "services[0].port")

	src.reloadErr = errors.New("open /etc/xdplb/xdplb.yaml: permission denied")
	code, body = call(t, src, "POST", "/v1/reload", "")
	wantError(t, code, body, http.StatusInternalServerError, "permission denied", "-")
}

// TestRouting checks that a request no route takes is answered in JSON:
// 404 for an unknown path, 405 with the methods allowed for a known one.
func TestRouting(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		code         int
		allow, msg   string
	}{
		{"GET", "/v1/nothing", 404, "", "no endpoint GET /v1/nothing"},
		{"GET", "/", 404, "", "no endpoint GET /"},
		{"PATCH", "/v1/services/web", 405, "DELETE, PUT", "PATCH is not allowed on /v1/services/web (allowed: DELETE, PUT)"},
		{"DELETE", "/v1/status", 405, "GET, HEAD", "DELETE is not allowed on /v1/status (allowed: GET, HEAD)"},
		{"GET", "/v1/reload", 405, "POST", "GET is not allowed on /v1/reload (allowed: POST)"},
		{"PUT", "/v1/services", 405, "GET, HEAD, POST", "PUT is not allowed on /v1/services (allowed: GET, HEAD, POST)"},
		{"GET", "/v1/services/web/backends/172.19.0.2", 405, "DELETE, PUT", "GET is not allowed"},
		{"GET", "/v1/status", 200, "", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := serveRequest(t, newFakeSource(t), httptest.NewRequest(tc.method, tc.path, nil))
			if tc.code == 200 {
				if rec.Code != 200 {
					t.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
				return
			}
			wantError(t, rec.Code, rec.Body.Bytes(), tc.code, tc.msg, "-")
			if got := rec.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow: %q, want %q", got, tc.allow)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type: %q", ct)
			}
		})
	}
}

// serveRequest sends req to a server over src.
func serveRequest(t *testing.T, src Source, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	NewServer(src, slog.New(slog.DiscardHandler)).Handler().ServeHTTP(rec, req)
	return rec
}

// TestRequestBody checks that a body must be JSON, and not too large.
func TestRequestBody(t *testing.T) {
	const svc = `{"vip": "172.19.0.20", "port": 80}`
	for _, tc := range []struct {
		name, method, path, contentType, body string
		code                                  int
		msg                                   string
	}{
		{"json", "POST", "/v1/services", "application/json", svc, 201, ""},
		{"json with charset", "POST", "/v1/services", "application/json; charset=UTF-8", svc, 201, ""},
		{"no content type", "POST", "/v1/services", "", svc, 415, "the request has a body but no Content-Type: send the body as application/json"},
		{"text", "POST", "/v1/services", "text/plain", svc, 415, `Content-Type "text/plain" is not supported: send the body as application/json`},
		{"form", "PUT", "/v1/services/web", "application/x-www-form-urlencoded", "scheduler=wrr", 415, "is not supported"},
		{"other charset", "POST", "/v1/services", "application/json; charset=latin1", svc, 415, "JSON is UTF-8"},
		{"malformed content type", "POST", "/v1/services", "application/json; =", svc, 415, "is not supported"},
		{"too large", "POST", "/v1/services", "application/json",
			`{"vip": "172.19.0.20", "port": 80, "name": "` + strings.Repeat("x", maxBody) + `"}`, 413, "request body larger than 1048576 bytes"},
		{"no body where none is needed", "POST", "/v1/reload", "", "", 200, ""},
		{"no body where one is needed", "POST", "/v1/services", "", "", 400, "empty request body"},
		{"no body, no content type, delete", "DELETE", "/v1/services/web", "", "", 204, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newFakeSource(t)
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := httptest.NewRequest(tc.method, tc.path, body)
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			rec := serveRequest(t, src, req)
			if tc.msg == "" {
				if rec.Code != tc.code {
					t.Fatalf("status %d, want %d: %s", rec.Code, tc.code, rec.Body)
				}
				return
			}
			wantError(t, rec.Code, rec.Body.Bytes(), tc.code, tc.msg, "-")
			if src.changes != 0 {
				t.Errorf("%d changes made", src.changes)
			}
		})
	}
}

// TestServerTimeouts checks that a client cannot hold a connection open
// forever by sending its request slowly, or not reading the answer.
func TestServerTimeouts(t *testing.T) {
	srv := NewServer(newFakeSource(t), slog.New(slog.DiscardHandler)).httpServer()
	if srv.ReadHeaderTimeout != 5*time.Second || srv.ReadTimeout != 10*time.Second ||
		srv.WriteTimeout != 60*time.Second || srv.IdleTimeout == 0 {
		t.Errorf("timeouts: read header %v, read %v, write %v, idle %v",
			srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
	if srv.Handler == nil {
		t.Error("no handler")
	}
}

func TestParseServiceRef(t *testing.T) {
	for in, want := range map[string]string{
		"172.19.0.10:80":        "172.19.0.10:80",
		"172.19.0.10:53/udp":    "172.19.0.10:53/udp",
		"[2001:db8::1]:443/TCP": "[2001:db8::1]:443/tcp",
		"web":                   "web",
		"web-v2.eu":             "web-v2.eu",
	} {
		ref, err := parseServiceRef(in)
		if err != nil || ref.String() != want {
			t.Errorf("parseServiceRef(%q) = %v, %v; want %s", in, ref, err, want)
		}
	}
	for _, in := range []string{"", "172.19.0.10", "172.19.0.10:0", "172.19.0.10:99999", "172.19.0.10:80/icmp",
		"172.19.0.1o:80", "web/v2", "db:5432", "a\nb", "with space"} {
		if _, err := parseServiceRef(in); err == nil {
			t.Errorf("parseServiceRef(%q) accepted", in)
		}
	}
}
