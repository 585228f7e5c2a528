package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to a daemon's API socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the daemon listening at socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &Client{socket: socket, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// Status asks whether the daemon is ready.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.get(ctx, "/v1/status", &s)
}

// Stats reads the datapath counters.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	return s, c.get(ctx, "/v1/stats", &s)
}

// Connections lists tracked connections; service ("VIP:port[/proto]") and
// backend ("IP:port") filter when not empty.
func (c *Client) Connections(ctx context.Context, service, backend string) ([]Connection, error) {
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	if backend != "" {
		q.Set("backend", backend)
	}
	var out []Connection
	return out, c.get(ctx, "/v1/connections?"+q.Encode(), &out)
}

func (c *Client) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

// Services lists the configured services with their runtime state.
func (c *Client) Services(ctx context.Context) ([]ServiceView, error) {
	var out []ServiceView
	return out, c.get(ctx, "/v1/services", &out)
}

// AddService adds a service and returns it as the daemon now runs it.
func (c *Client) AddService(ctx context.Context, spec ServiceSpec) (ServiceView, error) {
	var out ServiceView
	return out, c.do(ctx, http.MethodPost, "/v1/services", spec, &out)
}

// EditService changes the service named by service (VIP:PORT,
// VIP:PORT/PROTO or its name) and returns it as changed.
func (c *Client) EditService(ctx context.Context, service string, edit ServiceEdit) (ServiceView, error) {
	var out ServiceView
	return out, c.do(ctx, http.MethodPut, servicePath(service), edit, &out)
}

// RemoveService removes a service.
func (c *Client) RemoveService(ctx context.Context, service string) error {
	return c.do(ctx, http.MethodDelete, servicePath(service), nil, nil)
}

// AddBackend adds a backend to a service and returns the service.
func (c *Client) AddBackend(ctx context.Context, service string, spec BackendSpec) (ServiceView, error) {
	var out ServiceView
	return out, c.do(ctx, http.MethodPost, servicePath(service)+"/backends", spec, &out)
}

// EditBackend changes the backend (IP:PORT, or IP for the service port) of
// a service and returns the service.
func (c *Client) EditBackend(ctx context.Context, service, backend string, edit BackendEdit) (ServiceView, error) {
	var out ServiceView
	return out, c.do(ctx, http.MethodPut, backendPath(service, backend), edit, &out)
}

// RemoveBackend removes a backend from a service.
func (c *Client) RemoveBackend(ctx context.Context, service, backend string) error {
	return c.do(ctx, http.MethodDelete, backendPath(service, backend), nil, nil)
}

// Reload has the daemon re-read its configuration file.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var out ReloadResult
	return out, c.do(ctx, http.MethodPost, "/v1/reload", nil, &out)
}

// Zero restarts from zero the counters Stats shows, of service or, if it
// is empty, of every service.
func (c *Client) Zero(ctx context.Context, service string) error {
	path := "/v1/zero"
	if service != "" {
		path += "?service=" + url.QueryEscape(service)
	}
	return c.do(ctx, http.MethodPost, path, nil, nil)
}

// ReloadDryRun asks the daemon what a reload would change, applying
// nothing.
func (c *Client) ReloadDryRun(ctx context.Context) (ReloadResult, error) {
	var out ReloadResult
	return out, c.do(ctx, http.MethodPost, "/v1/reload?dry_run=true", nil, &out)
}

func servicePath(service string) string {
	return "/v1/services/" + url.PathEscape(service)
}

func backendPath(service, backend string) string {
	return servicePath(service) + "/backends/" + url.PathEscape(backend)
}

// RemoteError is a request the daemon refused. errors.Is matches it
// against ErrNotFound (404) and ErrConflict (409).
type RemoteError struct {
	Status   int
	Message  string
	Problems []Problem
}

// Error is the daemon's message, then one problem a line.
func (e *RemoteError) Error() string {
	var b strings.Builder
	b.WriteString("xdplb daemon: ")
	b.WriteString(e.Message)
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		if p.Path != "" {
			b.WriteString(p.Path)
			b.WriteString(": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// Is reports whether the status is the one target stands for.
func (e *RemoteError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	}
	return false
}

// do sends body (if not nil) as JSON and decodes a successful answer into
// out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://xdplb"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("xdplb daemon at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e Error
		if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Message != "" {
			return &RemoteError{Status: resp.StatusCode, Message: e.Message, Problems: e.Problems}
		}
		return &RemoteError{Status: resp.StatusCode, Message: resp.Status}
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("xdplb daemon: bad response to %s %s: %w", method, path, err)
	}
	return nil
}
