package serve

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// statusWriter records the status code a handler answers with.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var requestIDs atomic.Uint64

// instrument counts, times and logs the requests of a handler, and turns
// a panic into a JSON 500 so that one bad request cannot stop the service.
func (s *Server) instrument(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestIDs.Add(1)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				s.cfg.Logger.Error("handler panicked", "id", id, "panic", p)
				if sw.status == 0 {
					writeError(sw, http.StatusInternalServerError, "internal error")
				}
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			d := time.Since(start)
			s.met.requests.WithLabelValues(name, strconv.Itoa(sw.status)).Inc()
			s.met.latency.WithLabelValues(name).Observe(d.Seconds())
			level := slog.LevelInfo
			if name == "metrics" || name == "healthz" || name == "readyz" {
				level = slog.LevelDebug
			}
			s.cfg.Logger.Log(r.Context(), level, "request", "id", id, "method", r.Method, "path", r.URL.Path,
				"query", r.URL.RawQuery, "status", sw.status, "bytes", sw.bytes, "duration_ms", ms(d), "remote", r.RemoteAddr)
		}()
		h.ServeHTTP(sw, r)
	})
}
