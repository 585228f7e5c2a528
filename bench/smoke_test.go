package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// The harness starts this test binary again as its load generator.
	MaybeHelper()
	os.Exit(m.Run())
}

// TestSmoke runs every stage of the harness with tiny counts, so the
// harness is exercised by every `go test ./...` and cannot rot. Peers
// that are not installed (HAProxy, nftables) are skipped, not installed.
func TestSmoke(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the benchmark smoke test needs root (CI=true: refusing to skip)")
		}
		t.Skip("the benchmark smoke test needs root")
	}
	cfg := ShortConfig()
	cfg.OutDir = t.TempDir()
	cfg.Log = testWriter{t}
	start := time.Now()
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("harness failed: %v", err)
	}
	t.Logf("smoke run took %s", time.Since(start).Round(time.Millisecond))

	if len(res.Datapath) != 11 || len(res.Live) != 2 || res.Scale == nil || len(res.Scale.Cases) != 3 {
		t.Fatalf("missing stages: %d paths, %d rates, scale %v", len(res.Datapath), len(res.Live), res.Scale)
	}
	for _, p := range res.Datapath {
		if p.NsPerPacket <= 0 {
			t.Errorf("path %s: %v ns/packet", p.Name, p.NsPerPacket)
		}
	}
	for _, l := range res.Live {
		if l.Mpps <= 0 || l.Delivered < 0.5 {
			t.Errorf("live %s: %.2f Mpps, %.0f%% delivered", l.Name, l.Mpps, 100*l.Delivered)
		}
	}
	if len(res.E2E) != 6 {
		t.Fatalf("%d end-to-end setups, want 6", len(res.E2E))
	}
	for _, s := range res.E2E {
		switch {
		case s.Status == "ok":
			if s.KeepAlive.RPS <= 0 || s.Close.RPS <= 0 || s.Throughput.Gbps <= 0 {
				t.Errorf("setup %s: %+v", s.Name, s)
			}
		case s.Status == "skipped: not installed" && (s.Name == setupHAProxy || s.Name == setupNftables):
		default:
			t.Errorf("setup %s: %s", s.Name, s.Status)
		}
	}
	if len(res.Targets) != 7 {
		t.Errorf("%d targets, want 7", len(res.Targets))
	}
	for _, f := range []string{"results.md", "results.json"} {
		b, err := os.ReadFile(cfg.OutDir + "/" + f)
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	md, _ := os.ReadFile(cfg.OutDir + "/results.md")
	if !strings.Contains(string(md), "## Targets") {
		t.Errorf("results.md has no targets table:\n%s", md)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
