package serve_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/puad-go/puad/internal/pyref"
	"github.com/puad-go/puad/serve"
)

// soakRequests is the number of requests of TestSoak: PUAD_SOAK_REQUESTS,
// else 100 (20 with -short). A few thousand make the full soak.
func soakRequests(t *testing.T) int {
	if v := os.Getenv("PUAD_SOAK_REQUESTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("PUAD_SOAK_REQUESTS=%q: want a positive count", v)
		}
		return n
	}
	if testing.Short() {
		return 20
	}
	return 100
}

// rssBytes is the process's resident memory, from /proc.
func rssBytes(t *testing.T) int64 {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		pyref.Unavailable(t, "no /proc/self/statm: "+err.Error())
	}
	f := strings.Fields(string(raw))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

// settledGoroutines waits up to two seconds for the goroutine count to
// fall to at most limit and returns it.
func settledGoroutines(limit int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(2 * time.Second); n > limit && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// clientLoad sends n requests from clients goroutines over loopback,
// cycling through the test images, and checks every answer with check. It
// returns the requests' latencies.
func clientLoad(t testing.TB, client *http.Client, url string, n, clients int, check func(i int, p serve.Prediction)) []time.Duration {
	var next sync.Mutex
	sent := 0
	lat := make([]time.Duration, 0, n)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				i := sent
				sent++
				next.Unlock()
				if i >= n {
					return
				}
				k := i % len(testData)
				start := time.Now()
				code, p, e, err := post(client, url, "image/png", testData[k])
				d := time.Since(start)
				if err != nil || code != http.StatusOK {
					t.Errorf("request %d: %d %+v %v", i, code, e, err)
					return
				}
				check(k, p)
				next.Lock()
				lat = append(lat, d)
				next.Unlock()
			}
		}()
	}
	wg.Wait()
	return lat
}

// percentile is the q-quantile of sorted latencies (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// TestSoak sends many requests from four clients over loopback: every
// answer has the scores of `puad predict` bit for bit, and the resident
// memory and the goroutine count stay flat.
func TestSoak(t *testing.T) {
	n := soakRequests(t)
	s, d := newServer(t, serve.Config{})
	want := wantScores(t, d)
	ln := listenLoopback(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, 5*time.Second) }()
	defer func() { cancel(); <-served }()
	url := "http://" + ln.Addr().String() + "/v1/predict"
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{}).DialContext, MaxIdleConnsPerHost: 8}}
	check := func(k int, p serve.Prediction) {
		if !sameScores(p.Result, want[k]) {
			t.Errorf("%s: served %+v, predict gives %+v", testImages[k], p.Result, want[k])
		}
	}

	warm := max(n/10, 2*len(testData))
	clientLoad(t, client, url, warm, 4, check)
	client.CloseIdleConnections()
	runtime.GC()
	baseG := settledGoroutines(0)
	baseRSS := rssBytes(t)

	start := time.Now()
	lat := clientLoad(t, client, url, n, 4, check)
	elapsed := time.Since(start)
	client.CloseIdleConnections()
	runtime.GC()
	endG := settledGoroutines(baseG + 2)
	endRSS := rssBytes(t)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("%d requests in %v (%.1f/s), p50 %v, p99 %v; RSS %.1f → %.1f MiB; goroutines %d → %d",
		len(lat), elapsed.Round(time.Millisecond), float64(len(lat))/elapsed.Seconds(), percentile(lat, 0.5), percentile(lat, 0.99),
		float64(baseRSS)/(1<<20), float64(endRSS)/(1<<20), baseG, endG)
	if endG > baseG+2 {
		t.Errorf("goroutines grew from %d to %d", baseG, endG)
	}
	if grown := endRSS - baseRSS; grown > 64<<20 {
		t.Errorf("resident memory grew by %.1f MiB over %d requests", float64(grown)/(1<<20), n)
	}
}
