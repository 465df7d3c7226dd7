package serve_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/puad-go/puad/serve"
)

var discardLogger = slog.New(slog.DiscardHandler)

// listenLoopback listens on a free port of 127.0.0.1.
func listenLoopback(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestPredictExact checks that raw and multipart uploads score as `puad
// predict` does, bit for bit, and that the heatmap is a PNG.
func TestPredictExact(t *testing.T) {
	s, d := newServer(t, serve.Config{})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	want := wantScores(t, d)
	for i, data := range testData {
		code, p, e, err := post(ts.Client(), ts.URL+"/v1/predict", "image/png", data)
		if err != nil || code != http.StatusOK {
			t.Fatalf("%s: %d %v %v", testImages[i], code, e, err)
		}
		if !sameScores(p.Result, want[i]) || p.Category != "pushpins" || p.BatchSize != 1 || p.Verdict != map[bool]string{true: "anomalous", false: "normal"}[want[i].Anomalous] {
			t.Errorf("%s: served %+v, predict gives %+v", testImages[i], p, want[i])
		}
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("note", "a field before the file")
	fw, _ := mw.CreateFormFile("image", "x.png")
	_, _ = fw.Write(testData[1])
	_ = mw.Close()
	code, p, e, err := post(ts.Client(), ts.URL+"/v1/predict?category=pushpins&heatmap=png", mw.FormDataContentType(), body.Bytes())
	if err != nil || code != http.StatusOK || !sameScores(p.Result, want[1]) {
		t.Fatalf("multipart: %d %+v %v %v", code, p, e, err)
	}
	code, withMask, e, err := post(ts.Client(), ts.URL+"/v1/predict?masks=png", "image/png", testData[1])
	if err != nil || code != http.StatusOK || withMask.MaskPNG == "" {
		t.Errorf("masks: %d %+v %v", code, e, err)
	} else if _, regions, _ := d.Defects(want[1]); len(regions) != len(withMask.Regions) {
		t.Errorf("masks: %d regions served, %d from the detector", len(withMask.Regions), len(regions))
	}
	code, high, e, err := post(ts.Client(), ts.URL+"/v1/predict?threshold=1e9", "image/png", testData[1])
	if err != nil || code != http.StatusOK || high.Anomalous || high.Threshold != 1e9 || high.Verdict != "normal" || high.PUAD != want[1].PUAD {
		t.Errorf("threshold 1e9: %d %+v %+v %v", code, high, e, err)
	}
	raw, err := base64.StdEncoding.DecodeString(p.HeatmapPNG)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil || img.Bounds().Dy() != 256+2*15+4 {
		t.Errorf("heatmap: %v, %v", err, img.Bounds())
	}
}

// hugePNG is a PNG header announcing w×h pixels, with no pixels after it.
func hugePNG(w, h uint32) []byte {
	var buf bytes.Buffer
	_ = png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1)))
	b := buf.Bytes()
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// TestBadRequests sends what a client may get wrong: each is a 4xx with a
// JSON error, and the service goes on scoring.
func TestBadRequests(t *testing.T) {
	s, d := newServer(t, serve.Config{MaxBodyBytes: 64 << 10})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	url := ts.URL + "/v1/predict"
	var noFile bytes.Buffer
	mw := multipart.NewWriter(&noFile)
	_ = mw.WriteField("a", "b")
	_ = mw.Close()
	for _, c := range []struct {
		name, url, ct string
		body          []byte
		code          int
	}{
		{"not an image", url, "image/png", []byte("hello"), http.StatusUnsupportedMediaType},
		{"empty body", url, "image/png", nil, http.StatusUnsupportedMediaType},
		{"truncated image", url, "image/png", testData[0][:len(testData[0])/2], http.StatusBadRequest},
		{"huge declared size", url, "image/png", hugePNG(200000, 200000), http.StatusRequestEntityTooLarge},
		{"oversize body", url, "image/png", make([]byte, 65<<10), http.StatusRequestEntityTooLarge},
		{"unknown category", url + "?category=../../etc", "image/png", testData[0], http.StatusNotFound},
		{"bad heatmap format", url + "?heatmap=jpg", "image/png", testData[0], http.StatusBadRequest},
		{"bad threshold", url + "?threshold=NaN", "image/png", testData[0], http.StatusBadRequest},
		{"form without file", url, mw.FormDataContentType(), noFile.Bytes(), http.StatusBadRequest},
		{"broken form", url, "multipart/form-data; boundary=x", []byte("--y\r\n"), http.StatusBadRequest},
		{"unknown path", ts.URL + "/v2/predict", "image/png", testData[0], http.StatusNotFound},
		{"page by POST", ts.URL + "/", "image/png", testData[0], http.StatusMethodNotAllowed},
	} {
		code, _, e, err := post(ts.Client(), c.url, c.ct, c.body)
		if err != nil || code != c.code || e.Status != c.code || e.Error == "" {
			t.Errorf("%s: %d %+v %v, want %d", c.name, code, e, err, c.code)
		}
	}
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, url, nil)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
			t.Errorf("%s: %d", m, resp.StatusCode)
		}
	}
	code, p, _, err := post(ts.Client(), url, "image/png", testData[0])
	if err != nil || code != http.StatusOK || !sameScores(p.Result, wantScores(t, d)[0]) {
		t.Errorf("after the bad requests: %d %v", code, err)
	}
}

// TestQueueAndTimeout fills a queue of one (503) and runs a request out of
// time (504).
func TestQueueAndTimeout(t *testing.T) {
	s, _ := newServer(t, serve.Config{QueueSize: 1})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	codes := make([]int, 6)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _, _, _ = post(ts.Client(), ts.URL+"/v1/predict", "image/png", testData[0])
		}()
	}
	wg.Wait()
	busy := 0
	for _, c := range codes {
		switch c {
		case http.StatusServiceUnavailable:
			busy++
		case http.StatusOK:
		default:
			t.Errorf("status %d", c)
		}
	}
	if busy == 0 || busy > 4 {
		t.Errorf("statuses %v: want some 503 with a queue of one", codes)
	}

	slow, _ := newServer(t, serve.Config{Timeout: time.Millisecond})
	ts2 := httptest.NewServer(slow.Handler())
	defer ts2.Close()
	if code, _, e, err := post(ts2.Client(), ts2.URL+"/v1/predict", "image/png", testData[0]); code != http.StatusGatewayTimeout || err != nil {
		t.Errorf("1 ms timeout: %d %+v %v", code, e, err)
	}
}

// TestBatching sends concurrent requests to a server that batches up to
// four: some share a forward pass, and all agree with predict to float32
// precision.
func TestBatching(t *testing.T) {
	s, _ := newServer(t, serve.Config{MaxBatch: 4, MaxWait: 200 * time.Millisecond})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	want := wantScores(t, newDetector(t, 1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	maxBatch := 0
	for i := range testData {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, p, e, err := post(ts.Client(), ts.URL+"/v1/predict", "image/png", testData[i])
			if err != nil || code != http.StatusOK {
				t.Errorf("%d %+v %v", code, e, err)
				return
			}
			if d := p.PUAD - want[i].PUAD; d > 1e-4 || d < -1e-4 {
				t.Errorf("%s: PUAD %v in a batch of %d, %v alone", testImages[i], p.PUAD, p.BatchSize, want[i].PUAD)
			}
			mu.Lock()
			maxBatch = max(maxBatch, p.BatchSize)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if maxBatch < 2 {
		t.Errorf("largest batch %d: concurrent requests were not batched", maxBatch)
	}
	resp, err := ts.Client().Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range serve.MetricNames {
		if !strings.Contains(string(metrics), "\n"+name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	for _, line := range []string{`puad_http_requests_total{code="200",handler="predict"} 4`, `puad_score_count{category="pushpins"} 4`, "process_resident_memory_bytes"} {
		if !strings.Contains(string(metrics), line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}

// TestGracefulShutdown cancels the server's context while a request is
// being scored: the request is answered, readiness goes away and Serve
// returns.
func TestGracefulShutdown(t *testing.T) {
	s, _ := newServer(t, serve.Config{})
	ln := listenLoopback(t)
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, 30*time.Second) }()
	for _, p := range []string{"/healthz", "/readyz", "/v1/categories", "/"} {
		resp, err := http.Get(base + p)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
	answered := make(chan int, 1)
	go func() {
		code, _, _, _ := post(http.DefaultClient, base+"/v1/predict", "image/png", testData[0])
		answered <- code
	}()
	time.Sleep(100 * time.Millisecond) // the request is being scored
	cancel()
	if code := <-answered; code != http.StatusOK {
		t.Errorf("request in flight at shutdown: %d", code)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still answering after shutdown")
	}
}
