package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/detector"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/serve"
)

// testImgSize is the model size of the tests: the smallest the
// autoencoder takes, so that many requests stay affordable on a CPU.
const testImgSize = 128

// The category all tests share, made once per test binary.
var (
	modelDir, categoryDir string
	testImages            []string // its test images, sorted
	testData              [][]byte // their bytes
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := os.MkdirTemp("", "serve-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(root)
	modelDir, categoryDir, err = testtree.Fitted(root, "mvtec_loco_anomaly_detection", "pushpins", synth.VariantPins, 7, testImgSize)
	if err == nil {
		testImages, err = filepath.Glob(filepath.Join(categoryDir, "test", "*", "*.png"))
	}
	sort.Strings(testImages)
	for _, p := range testImages {
		data, rerr := os.ReadFile(p)
		if rerr != nil {
			err = rerr
		}
		testData = append(testData, data)
	}
	if err != nil || len(testImages) == 0 {
		fmt.Fprintln(os.Stderr, "test category:", err)
		return 1
	}
	return m.Run()
}

// newDetector loads the test category's detector with a batch size.
func newDetector(t testing.TB, batch int) *detector.Detector {
	t.Helper()
	d, err := detector.Load(modelDir, categoryDir, detector.Options{BatchSize: batch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// newServer serves the test category with cfg; it is stopped at the end
// of the test.
func newServer(t testing.TB, cfg serve.Config) (*serve.Server, *detector.Detector) {
	t.Helper()
	d := newDetector(t, cfg.MaxBatch)
	if cfg.Logger == nil {
		cfg.Logger = discardLogger
	}
	s, err := serve.New([]*detector.Detector{d}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, d
}

// wantScores are the test images' scores as `puad predict` computes them:
// one image per forward pass through the detector.
func wantScores(t testing.TB, d *detector.Detector) []detector.Result {
	t.Helper()
	var rs []detector.Result
	for _, data := range testData {
		r, err := d.PredictEncoded(context.Background(), data)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return rs
}

// post sends body to url and decodes the JSON answer into a Prediction or
// an Error.
func post(client *http.Client, url, contentType string, body []byte) (int, serve.Prediction, serve.Error, error) {
	var p serve.Prediction
	var e serve.Error
	resp, err := client.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		return 0, p, e, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, p, e, err
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		return resp.StatusCode, p, e, fmt.Errorf("content type %q: %s", ct, raw)
	}
	if resp.StatusCode == http.StatusOK {
		err = json.Unmarshal(raw, &p)
	} else {
		err = json.Unmarshal(raw, &e)
	}
	return resp.StatusCode, p, e, err
}

func sameScores(a, b detector.Result) bool {
	return a.EfficientAD == b.EfficientAD && a.Mahalanobis == b.Mahalanobis && a.PUAD == b.PUAD &&
		a.Anomalous == b.Anomalous && a.Threshold == b.Threshold
}
