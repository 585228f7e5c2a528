package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/config"
)

// FuzzRequests sends arbitrary bodies (and service and backend
// references) to the endpoints that decode one: ServiceSpec, ServiceEdit,
// BackendSpec and BackendEdit. No request may panic the server or get a
// 5xx, every answer but 204 is JSON, and whatever the API accepts leaves
// a configuration that validates.
func FuzzRequests(f *testing.F) {
	base, err := config.Parse([]byte(testConfig))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct {
		endpoint  uint8
		ref, body string
	}{
		{0, "", `{"vip": "172.19.0.20", "port": 443, "persistence": "300s", "backends": [{"address": "10.0.0.1"}, {"address": "10.0.0.2", "port": 8443, "weight": 0}]}`},
		{0, "", `{"name": "dns", "vip": "172.19.0.10", "port": 53, "protocol": "UDP", "scheduler": "maglev", "persistence": 60}`},
		{0, "", `{"vip": "[2001:db8::1]", "port": 80, "persistence": 1e300}`},
		{0, "", `{"name": "a\nb", "vip": "172.19.0.20", "port": 80}`},
		{0, "", `{"vip": "172.19.0.20", "port": 80, "forwarding": "dsr-l2", "backends": [{"address": "10.0.0.1", "port": 8080}]}`},
		{1, "web", `{"forwarding": "dsr-ipip"}`},
		{1, "web", `{"scheduler": "wrr", "persistence": "5m", "name": "www"}`},
		{1, "172.19.0.10:80/tcp", `{"backends": [{"address": "172.19.0.3"}, {"address": "172.19.0.4", "port": 8080, "weight": 5}]}`},
		{1, "web", `{"persistence": -9223372036.854775808}`},
		{1, "web", `{"name": ""}`},
		{2, "web", `{"address": "172.19.0.4", "port": 8080, "weight": 0}`},
		{2, "172.19.0.10:80", `{"address": "::ffff:172.19.0.4"}`},
		{3, "web", `{"weight": 65535}`},
		{3, "web", `{"weight": null}`},
	} {
		f.Add(seed.endpoint, seed.ref, seed.body)
	}
	f.Fuzz(func(t *testing.T, endpoint uint8, ref, body string) {
		src := &fakeSource{cfg: base.Clone()}
		svc := "/v1/services/" + url.PathEscape(ref)
		route := []struct{ method, path string }{
			{"POST", "/v1/services"},
			{"PUT", svc},
			{"POST", svc + "/backends"},
			{"PUT", svc + "/backends/172.19.0.2"},
		}[int(endpoint)%4]
		req := httptest.NewRequest(route.method, route.path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := serveRequest(t, src, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: status %d: %s", route.method, route.path, body, rec.Code, rec.Body)
		}
		if rec.Code != http.StatusNoContent && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s %q: status %d, body not JSON: %q", route.method, route.path, body, rec.Code, rec.Body)
		}
		if err := src.cfg.Validate(); err != nil {
			t.Fatalf("%s %s %q: accepted, and left a configuration that does not validate: %v", route.method, route.path, body, err)
		}
	})
}
