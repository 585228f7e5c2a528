package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, string(body)
}

func TestHandlerServesText(t *testing.T) {
	srv := httptest.NewServer(NewServer("unused", newFake(), nil).Handler())
	defer srv.Close()

	resp, body := get(t, srv.Client(), srv.URL+"/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	for _, want := range []string{
		`xdplb_service_packets_total{direction="in",port="80",protocol="tcp",service="web",vip="10.0.0.10"} 10`,
		`xdplb_backend_up{backend="192.168.1.2:8080",service="web"} 0`,
		`xdplb_build_info{`,
		"\ngo_goroutines ",
		"\nprocess_", // Linux only, as is xdplb
		"\npromhttp_metric_handler_requests_total",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if resp, _ := get(t, srv.Client(), srv.URL+"/"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /: %s", resp.Status)
	}
	if resp, _ := get(t, srv.Client(), srv.URL+"/nothing"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing: %s, want 404", resp.Status)
	}
}

// A failing source does not take the process and runtime metrics, or the
// rest of xdplb's, down with it.
func TestHandlerServesDespiteSourceError(t *testing.T) {
	src := newFake()
	src.statsErr = errors.New("stats map gone")
	srv := httptest.NewServer(NewServer("unused", src, nil).Handler())
	defer srv.Close()

	resp, body := get(t, srv.Client(), srv.URL+"/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	for _, want := range []string{`xdplb_scrape_success{source="stats"} 0`, "xdplb_conntrack_entries 3", "\ngo_goroutines "} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "xdplb_service_packets_total") {
		t.Error("/metrics has service counters although Stats failed")
	}
}

func TestServeListenerStopsOnCancel(t *testing.T) {
	defer goleak.VerifyNone(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/metrics"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- NewServer("unused", newFake(), nil).ServeListener(ctx, ln) }()

	client := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	resp, body := get(t, client, url)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "xdplb_conntrack_entries 3") {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeListener after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeListener still running 5s after its context ended")
	}
	client.CloseIdleConnections()
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("still accepting connections after Serve returned")
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	defer goleak.VerifyNone(t)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewServer("127.0.0.1:0", newFake(), nil).Serve(ctx) }()
	time.Sleep(50 * time.Millisecond) // let it listen; it must stop either way
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve still running 5s after its context ended")
	}
}

func TestServeListenError(t *testing.T) {
	err := NewServer("127.0.0.1:notaport", newFake(), nil).Serve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Serve on a bad address = %v, want a listen error", err)
	}
}
