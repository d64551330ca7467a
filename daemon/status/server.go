package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/mews"
)

// shutdownTimeout bounds how long Run waits for a scrape in progress.
const shutdownTimeout = 5 * time.Second

// Server serves /healthz and /metrics.
type Server struct {
	ln  net.Listener
	srv *http.Server
	log zerolog.Logger
}

// NewServer listens on addr. The endpoint has no authentication, so a
// non-loopback addr is refused unless allowRemote. Run must be called; it
// closes the listener.
func NewServer(addr string, allowRemote bool, src Source, reg *prometheus.Registry, log zerolog.Logger) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("status_listen %q: %w", addr, err)
	}
	if !allowRemote && !mews.IsLoopback(host) {
		return nil, fmt.Errorf("status_listen %q: not a loopback address (the endpoint has no authentication); use 127.0.0.1:PORT", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("status_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", healthHandler(src))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return &Server{
		ln:  ln,
		log: log,
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
	}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(s.ln) }()
	s.log.Info().Str("addr", s.Addr()).Msg("status endpoint listening")
	select {
	case err := <-served:
		return fmt.Errorf("status endpoint: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(shutdownCtx)
	if serveErr := <-served; !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("status endpoint: %w", serveErr)
	}
	if err != nil {
		return fmt.Errorf("status endpoint shutdown: %w", err)
	}
	return nil
}

// healthHandler answers 200 when healthy and 503 when degraded, so a load
// balancer or monitoring check needs only the status code.
func healthHandler(src Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		snap := src.Health()
		snap.complete(time.Now())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if snap.Status != StatusOK {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(snap)
	})
}
