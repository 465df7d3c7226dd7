package serve

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the service's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec   // by handler and status code
	latency    *prometheus.HistogramVec // by handler
	batchSize  prometheus.Histogram
	queueDepth *prometheus.GaugeVec     // by category
	score      *prometheus.HistogramVec // PUAD scores by category
}

// MetricNames are the service's own metrics, as /metrics lists them (the
// Go runtime's and the process's standard ones come beside them).
var MetricNames = []string{
	"puad_http_requests_total", "puad_http_request_duration_seconds",
	"puad_batch_size", "puad_queue_depth", "puad_score",
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "puad_http_requests_total", Help: "HTTP requests answered, by handler and status code.",
		}, []string{"handler", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "puad_http_request_duration_seconds", Help: "Time from a request's arrival to its answer, by handler.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"handler"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "puad_batch_size", Help: "Images per forward pass.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "puad_queue_depth", Help: "Images waiting for the networks, by category.",
		}, []string{"category"}),
		score: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "puad_score", Help: "PUAD scores of the scored images, by category.",
			Buckets: []float64{-10, -5, -2.5, 0, 1, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 50, 100},
		}, []string{"category"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.batchSize, m.queueDepth, m.score,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
