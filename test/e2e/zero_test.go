package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/demo"
)

// TestZeroKeepsPrometheusMonotonic: `xdplb zero web` restarts what
// `xdplb list --stats` shows for web, while xdplb_service_connections_total
// keeps rising.
func TestZeroKeepsPrometheusMonotonic(t *testing.T) {
	e := newEnv(t, "native")
	e.start(t, func(dir string) string {
		return demo.Setup{Mode: "native", Dir: dir, Services: demo.ReferenceServices, Extra: metricsExtra}.YAML()
	})
	client := e.ref.Client.HTTPClient(false)
	request := func(n int) {
		for i := range n {
			if _, err := httpGet(t.Context(), client, webURL); err != nil {
				t.Fatalf("request %d: %v", i+1, err)
			}
		}
	}
	request(4)
	schedMustCLI(t, e, "zero", "web")
	request(2)
	st, err := e.bal.API.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Services {
		if s.Name == "web" && s.Traffic.NewConns != 2 {
			t.Errorf("after zero and 2 requests, the listing counts %d new connections, want 2", s.Traffic.NewConns)
		}
	}
	if v, _ := scrapeSettled(t, e).value("xdplb_service_connections_total", "service", "web"); v != 6 {
		t.Errorf("xdplb_service_connections_total{service=web} = %v after zero, want all 6: Prometheus counters never go back", v)
	}
	if out := schedMustCLI(t, e, "list", "--stats", "web"); !strings.Contains(out, fmt.Sprintf("%9d", 2)) {
		t.Errorf("list --stats web after zero:\n%s", out)
	}
}
