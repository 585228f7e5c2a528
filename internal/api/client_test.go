package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve runs a server over src on a unix socket in a temporary directory
// until the test ends and returns a client for it.
func serve(t *testing.T, src Source) *Client {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "api.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewServer(src, slog.New(slog.DiscardHandler)).Serve(ctx, socket) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("unix", socket)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return NewClient(socket)
}

func weight(w uint32) *uint32 { return &w }

func TestClientServices(t *testing.T) {
	src := newFakeSource(t)
	c := serve(t, src)
	ctx := t.Context()

	got, err := c.Services(ctx)
	if err != nil || len(got) != 1 || got[0].Name != "web" {
		t.Fatalf("Services = %+v, %v", got, err)
	}

	v, err := c.AddService(ctx, ServiceSpec{
		VIP: "172.19.0.10", Port: 53, Protocol: "udp", Persistence: Duration(time.Minute),
		Backends: []BackendSpec{{Address: "172.19.0.2"}, {Address: "172.19.0.3", Weight: weight(0)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "172.19.0.10:53/udp" || v.Persistence != time.Minute || len(v.Backends) != 2 ||
		v.Backends[0].Weight != 1 || v.Backends[1].Weight != 0 || v.Backends[1].Port != 53 {
		t.Errorf("AddService = %+v", v)
	}

	// The slash in VIP:PORT/PROTO must reach the server as part of the
	// service, not as a path separator.
	sched, name := "maglev", "dns"
	v, err = c.EditService(ctx, "172.19.0.10:53/udp", ServiceEdit{Scheduler: &sched, Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	if v.Scheduler != "maglev" || v.Name != "dns" {
		t.Errorf("EditService = %+v", v)
	}

	v, err = c.AddBackend(ctx, "dns", BackendSpec{Address: "172.19.0.4", Port: 5353})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Backends) != 3 || v.Backends[2].Port != 5353 {
		t.Errorf("AddBackend = %+v", v)
	}
	v, err = c.EditBackend(ctx, "dns", "172.19.0.4:5353", BackendEdit{Weight: weight(7)})
	if err != nil {
		t.Fatal(err)
	}
	if v.Backends[2].Weight != 7 {
		t.Errorf("EditBackend = %+v", v)
	}
	if err := c.RemoveBackend(ctx, "dns", "172.19.0.2"); err != nil {
		t.Fatal(err)
	}
	if s := src.service(t, "172.19.0.10:53/udp"); len(s.Backends) != 2 {
		t.Errorf("backends after RemoveBackend = %+v", s.Backends)
	}
	if err := c.RemoveService(ctx, "172.19.0.10:53/udp"); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Services(ctx); len(got) != 1 {
		t.Errorf("Services after RemoveService = %+v", got)
	}
}

func TestClientErrors(t *testing.T) {
	src := newFakeSource(t)
	c := serve(t, src)
	ctx := t.Context()

	err := c.RemoveService(ctx, "172.19.0.10:81")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "service 172.19.0.10:81 not found") {
		t.Errorf("RemoveService of an unknown service: %v", err)
	}
	_, err = c.AddBackend(ctx, "web", BackendSpec{Address: "172.19.0.2"})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "backend 172.19.0.2:80 already in service web") {
		t.Errorf("AddBackend of a duplicate: %v", err)
	}
	_, err = c.AddService(ctx, ServiceSpec{VIP: "172.19.0.20", Backends: []BackendSpec{{Address: "10.0.0.1", Weight: weight(70000)}}})
	var re *RemoteError
	if !errors.As(err, &re) || re.Status != 400 {
		t.Fatalf("AddService of an invalid service: %v", err)
	}
	for _, want := range []string{"invalid service 172.19.0.20:0/tcp", "\n  port: missing", "\n  backends[0].weight: 70000 is not a weight"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		t.Errorf("400 matches ErrNotFound or ErrConflict")
	}
	_, err = c.EditService(ctx, "web", ServiceEdit{})
	if err == nil || !strings.Contains(err.Error(), "nothing to change") {
		t.Errorf("EditService without changes: %v", err)
	}
}

func TestClientReload(t *testing.T) {
	src := newFakeSource(t)
	src.reload = ReloadResult{Applied: []string{"services", "log"}}
	c := serve(t, src)
	res, err := c.Reload(t.Context())
	if err != nil || len(res.Applied) != 2 || res.Applied[1] != "log" {
		t.Errorf("Reload = %+v, %v", res, err)
	}
}

func TestClientNoDaemon(t *testing.T) {
	c := NewClient(filepath.Join(t.TempDir(), "none.sock"))
	if _, err := c.Services(t.Context()); err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Errorf("Services without a daemon: %v", err)
	}
}
