package api

import (
	"net/url"

	"context"
	"encoding/json"
	"fmt"
	"github.com/xdplb/xdplb/internal/conntrack"
	"net"
	"net/http"
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
func (c *Client) Connections(ctx context.Context, service, backend string) ([]conntrack.Conn, error) {
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	if backend != "" {
		q.Set("backend", backend)
	}
	var out []conntrack.Conn
	return out, c.get(ctx, "/v1/connections?"+q.Encode(), &out)
}

func (c *Client) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://xdplb"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("xdplb daemon at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e Error
		if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Message != "" {
			return fmt.Errorf("xdplb daemon: %s", e.Message)
		}
		return fmt.Errorf("xdplb daemon: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("xdplb daemon: bad response to %s: %w", path, err)
	}
	return nil
}
