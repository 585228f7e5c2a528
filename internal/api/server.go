package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/xdplb/xdplb/internal/conntrack"
)

// Source is what the daemon exposes through the API.
type Source interface {
	Status() Status
	Stats() (Stats, error)
	Connections() ([]conntrack.Conn, error)
	Editor
}

// Server serves the API for one Source.
type Server struct {
	src Source
	log *slog.Logger
	mux *http.ServeMux
}

// NewServer routes the API's endpoints to src.
func NewServer(src Source, log *slog.Logger) *Server {
	s := &Server{src: src, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.src.Status())
	})
	s.mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.src.Stats()
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	s.mux.HandleFunc("GET /v1/connections", s.connections)
	// {service} is VIP:PORT, VIP:PORT/PROTO (the slash escaped as %2F) or
	// the service's name; {backend} is IP:PORT, or IP for the service port.
	s.mux.HandleFunc("GET /v1/services", s.listServices)
	s.mux.HandleFunc("POST /v1/services", s.addService)
	s.mux.HandleFunc("PUT /v1/services/{service}", s.editService)
	s.mux.HandleFunc("DELETE /v1/services/{service}", s.removeService)
	s.mux.HandleFunc("POST /v1/services/{service}/backends", s.addBackend)
	s.mux.HandleFunc("PUT /v1/services/{service}/backends/{backend}", s.editBackend)
	s.mux.HandleFunc("DELETE /v1/services/{service}/backends/{backend}", s.removeBackend)
	s.mux.HandleFunc("POST /v1/reload", s.reload)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no endpoint %s %s", r.Method, r.URL.Path))
	})
	return s
}

// Handler returns the HTTP handler, for tests.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve listens on the unix socket at path and serves until ctx ends.
func (s *Server) Serve(ctx context.Context, path string) error {
	ln, err := Listen(path)
	if err != nil {
		return err
	}
	return s.ServeListener(ctx, ln)
}

// Listen opens the API's unix socket at path, readable by root only: the
// API changes what the balancer does. A socket file left by a daemon that
// died is replaced; one that a running daemon answers on is an error, so a
// second daemon stops before it touches anything.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("api socket directory: %w", err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("api socket permissions: %w", err)
	}
	return ln, nil
}

// ServeListener serves on ln until ctx ends, then closes it (a unix
// socket's file goes with it).
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() {
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	})
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}

// removeStaleSocket deletes a socket file left by a daemon that died, and
// refuses to take over one that a running daemon still answers on.
func removeStaleSocket(path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("api socket %s is in use: is another xdplb running?", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale api socket %s: %w", path, err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, Error{Message: err.Error()})
}
