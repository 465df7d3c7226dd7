package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/puad-go/puad/detector"
)

// Config tunes the service. Zero fields take the defaults below.
type Config struct {
	// MaxBatch is the largest number of concurrent requests of a category
	// scored in one forward pass (DefaultMaxBatch). With 1 every image goes
	// through the networks alone and scores exactly as `puad predict` does.
	MaxBatch int
	// MaxWait is how long the first request of a batch waits for others
	// (DefaultMaxWait); unused when MaxBatch is 1.
	MaxWait time.Duration
	// QueueSize is how many requests of a category may wait for the
	// networks; more are answered 503 (DefaultQueueSize).
	QueueSize int
	// MaxBodyBytes is the largest request body; larger ones are answered
	// 413 (DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Timeout bounds each prediction request (DefaultTimeout); one that runs
	// out is answered 504.
	Timeout time.Duration
	// Logger receives one record per request (slog.Default() when nil).
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultMaxBatch     = 1
	DefaultMaxWait      = 5 * time.Millisecond
	DefaultQueueSize    = 64
	DefaultMaxBodyBytes = 32 << 20
	DefaultTimeout      = 30 * time.Second
)

func (c Config) withDefaults() Config {
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server is the service over a set of detectors. It does not own them:
// the caller closes them after Close.
type Server struct {
	cfg      Config
	met      *metrics
	names    []string // category names, sorted
	batchers map[string]*batcher
	handler  http.Handler
	draining atomic.Bool
}

// New starts a batcher per detector. Categories are told apart by name, so
// two detectors may not share one.
func New(dets []*detector.Detector, cfg Config) (*Server, error) {
	if len(dets) == 0 {
		return nil, errors.New("serve: no category to serve")
	}
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, met: newMetrics(), batchers: map[string]*batcher{}}
	for _, d := range dets {
		if _, dup := s.batchers[d.Category()]; dup {
			s.Close()
			return nil, fmt.Errorf("serve: category %s is given twice", d.Category())
		}
		s.batchers[d.Category()] = newBatcher(d, cfg, s.met)
		s.names = append(s.names, d.Category())
		if err := d.CheckResolution(); err != nil {
			cfg.Logger.Warn("precision", "category", d.Category(), "warning", err.Error())
		}
	}
	slices.Sort(s.names)
	s.handler = s.routes()
	return s, nil
}

// routes maps the service's paths; every other path is a JSON 404.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/predict", s.instrument("predict", http.HandlerFunc(s.handlePredict)))
	mux.Handle("/v1/categories", s.instrument("categories", http.HandlerFunc(s.handleCategories)))
	mux.Handle("/healthz", s.instrument("healthz", http.HandlerFunc(s.handleHealth)))
	mux.Handle("/readyz", s.instrument("readyz", http.HandlerFunc(s.handleReady)))
	mux.Handle("/metrics", s.instrument("metrics", promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{})))
	mux.Handle("/{$}", s.instrument("page", http.HandlerFunc(s.handlePage)))
	mux.Handle("/", s.instrument("other", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such path")
	})))
	return mux
}

// Handler is the service's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the batchers. Call it after the HTTP server has shut down.
func (s *Server) Close() {
	for _, b := range s.batchers {
		b.stop()
	}
}

// Serve answers requests on ln until ctx is cancelled, then stops taking
// new connections, lets the requests in progress finish (for at most
// grace) and closes the batchers.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		s.draining.Store(true)
		s.cfg.Logger.Info("shutting down: finishing the requests in progress", "grace", grace)
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		err = hs.Shutdown(sctx)
		cancel()
		if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
	}
	s.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
