package serve_test

import (
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/puad-go/puad/internal/pyref"
	"github.com/puad-go/puad/serve"
)

// chromium finds Debian's headless browser; without it the test skips,
// except under CI (CI=true), where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	pyref.Unavailable(t, "chromium is not installed (make setup installs it)")
	return ""
}

// TestPageInBrowser opens the page in headless Chromium, uploads a
// generated image through its file picker and reads back the verdict and
// the PUAD score, which must be those of the detector.
func TestPageInBrowser(t *testing.T) {
	exe := chromium(t)
	s, d := newServer(t, serve.Config{})
	ln := listenLoopback(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, 5*time.Second) }()
	defer func() { cancel(); <-served }()

	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for y := range 30 {
		for x := range 40 {
			img.Set(x, y, color.RGBA{uint8(6 * x), uint8(8 * y), 128, 255})
		}
	}
	path := filepath.Join(t.TempDir(), "generated.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want, err := d.Predict(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	bctx, tcancel := context.WithTimeout(bctx, 2*time.Minute)
	defer tcancel()
	var verdict, score, heatmapSrc string
	err = chromedp.Run(bctx,
		chromedp.Navigate("http://"+ln.Addr().String()+"/"),
		chromedp.WaitReady(`#category option`, chromedp.ByQuery),
		chromedp.SetUploadFiles(`#file`, []string{path}, chromedp.ByID),
		chromedp.WaitVisible(`body[data-state="done"]`, chromedp.ByQuery),
		chromedp.Text(`#verdict`, &verdict, chromedp.ByID),
		chromedp.Text(`#puad`, &score, chromedp.ByID),
		chromedp.AttributeValue(`#heatmap`, "src", &heatmapSrc, nil, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	got, err := strconv.ParseFloat(score, 64)
	if err != nil || got != want.PUAD {
		t.Errorf("page shows PUAD score %q, the detector gives %v", score, want.PUAD)
	}
	if wantVerdict := map[bool]string{true: "anomalous", false: "normal"}[want.Anomalous]; verdict != wantVerdict {
		t.Errorf("page shows verdict %q, want %q", verdict, wantVerdict)
	}
	if len(heatmapSrc) < 100 || heatmapSrc[:22] != "data:image/png;base64," {
		t.Errorf("heatmap source %.40q", heatmapSrc)
	}
}
