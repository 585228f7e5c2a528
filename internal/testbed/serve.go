package testbed

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// ServeHTTP starts an in-process HTTP server on h, listening on addr (e.g.
// ":80"), that answers every request with body + "\n". The server stops when
// stop is called or the segment is closed, whichever comes first; stop waits
// until the server goroutine has returned.
func (h *Host) ServeHTTP(addr, body string) (stop func(), err error) {
	l, err := h.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("host %s: http server: %w", h.Name, err)
	}
	reply := []byte(body + "\n")
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Drain the request so keep-alive connections stay usable.
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/plain")
			w.Write(reply)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(l)
	}()
	var once sync.Once
	shutdown := func() error {
		var err error
		once.Do(func() {
			// Close, not Shutdown: tests tear down while clients may
			// still hold keep-alive connections.
			err = srv.Close()
			<-served
		})
		if err != nil {
			return fmt.Errorf("host %s: stop http server on %s: %w", h.Name, addr, err)
		}
		return nil
	}
	if err := h.seg.addCloser(shutdown); err != nil {
		return nil, fmt.Errorf("host %s: http server: %w", h.Name, err)
	}
	return func() { shutdown() }, nil
}

// ServeUDPEcho starts an in-process UDP server on h, listening on addr (e.g.
// ":9000"), that answers each datagram with prefix + payload, from the
// address it arrived on. Stopping works as for ServeHTTP.
func (h *Host) ServeUDPEcho(addr, prefix string) (stop func(), err error) {
	c, err := h.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("host %s: udp echo: %w", h.Name, err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		buf := make([]byte, 64<<10)
		out := make([]byte, 0, len(prefix)+len(buf))
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				// Transient errors (e.g. ICMP-induced ECONNREFUSED
				// reported on the socket) must not kill the server.
				continue
			}
			out = append(append(out[:0], prefix...), buf[:n]...)
			c.WriteTo(out, from)
		}
	}()
	var once sync.Once
	shutdown := func() error {
		var err error
		once.Do(func() {
			err = c.Close()
			<-served
		})
		if err != nil {
			return fmt.Errorf("host %s: stop udp echo on %s: %w", h.Name, addr, err)
		}
		return nil
	}
	if err := h.seg.addCloser(shutdown); err != nil {
		return nil, fmt.Errorf("host %s: udp echo: %w", h.Name, err)
	}
	return func() { shutdown() }, nil
}

// HTTPClient returns a client whose connections are dialled from inside h's
// namespace. With keepAlive false every request uses a new connection (and
// thus a new flow through the balancer). The client has a 10s timeout so a
// black-holed request fails a test instead of hanging it; change Timeout if
// that does not fit. Call CloseIdleConnections when done with a keep-alive
// client.
func (h *Host) HTTPClient(keepAlive bool) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         h.DialContext,
			DisableKeepAlives:   !keepAlive,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
			// No Proxy: the environment's proxy is meaningless here.
		},
		Timeout: 10 * time.Second,
	}
}
