package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Source is what the daemon exposes through the API.
type Source interface {
	Status() Status
	Stats() (Stats, error)
	Connections() ([]Connection, error)
	Editor
	Cluster
	BGP
}

// Server serves the API for one Source.
type Server struct {
	src     Source
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler // mux behind guard
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
	s.mux.HandleFunc("POST /v1/zero", s.zero)
	s.mux.HandleFunc("GET /v1/cluster", s.clusterStatus)
	s.mux.HandleFunc("POST /v1/cluster/role", s.setRole)
	s.mux.HandleFunc("GET /v1/bgp", s.bgpStatus)
	s.mux.HandleFunc("POST /v1/bgp/drain", s.bgpDrain(true))
	s.mux.HandleFunc("POST /v1/bgp/undrain", s.bgpDrain(false))
	// No catch-all route: it would take every wrong method too. guard
	// answers what no route takes, 404 or 405.
	s.handler = guard(s.mux)
	return s
}

// Handler returns the HTTP handler, for tests.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve listens on the unix socket at path and serves until ctx ends.
func (s *Server) Serve(ctx context.Context, path string) error {
	ln, err := Listen(path)
	if err != nil {
		return err
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener serves on ln until ctx ends, then closes it (a unix
// socket's file goes with it).
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	srv := s.httpServer()
	drained := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(drained)
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	})
	defer stop()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		// Serve returns as soon as Shutdown begins; a request in flight
		// may have changed the state already and must get its answer
		// before the daemon exits.
		<-drained
		return nil
	}
	return fmt.Errorf("api: %w", err)
}

// httpServer is the HTTP server of ServeListener. Its timeouts keep a
// client that stalls from holding a connection (and its goroutine)
// forever; writing may take long, for a listing of millions of
// connections.
func (s *Server) httpServer() *http.Server {
	return &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
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
