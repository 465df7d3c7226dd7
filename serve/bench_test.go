package serve_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/puad-go/puad/serve"
)

// reportLatencies adds throughput and latency percentiles to a benchmark.
func reportLatencies(b *testing.B, lat []time.Duration, elapsed time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "img/s")
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99_ms")
}

// BenchmarkPredict scores the test images one after the other in one
// process, as `puad predict` does: decode, then one forward pass each.
func BenchmarkPredict(b *testing.B) {
	d := newDetector(b, 1)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		t0 := time.Now()
		if _, err := d.PredictEncoded(ctx, testData[i%len(testData)]); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	reportLatencies(b, lat, time.Since(start))
}

// BenchmarkServe sends the test images over loopback from N concurrent
// clients, without batching (bit-exact) and with batches of up to four.
func BenchmarkServe(b *testing.B) {
	for _, c := range []struct{ clients, maxBatch int }{{1, 1}, {4, 1}, {4, 4}} {
		b.Run(fmt.Sprintf("clients=%d/max-batch=%d", c.clients, c.maxBatch), func(b *testing.B) {
			s, _ := newServer(b, serve.Config{MaxBatch: c.maxBatch, MaxWait: 20 * time.Millisecond})
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.clients}}
			b.ResetTimer()
			start := time.Now()
			lat := clientLoad(b, client, ts.URL+"/v1/predict", b.N, c.clients, func(int, serve.Prediction) {})
			reportLatencies(b, lat, time.Since(start))
		})
	}
}
