package heatmap

import (
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// grayImage returns a uniform mid-grey image.
func grayImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{128, 128, 128, 255}), image.Point{}, draw.Src)
	return img
}

// quadrantMap returns a w×h map that is hot in its top-left quadrant and
// zero elsewhere.
func quadrantMap(w, h int, hot float32) []float32 {
	m := make([]float32, w*h)
	for y := range h / 2 {
		for x := range w / 2 {
			m[y*w+x] = hot
		}
	}
	return m
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return img
}

func rgbAt(img image.Image, x, y int) (r, g, b int) {
	c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
	return int(c.R), int(c.G), int(c.B)
}

func reddish(r, g, b int) bool  { return r > g+40 && r > b+40 }
func bluish(r, g, b int) bool   { return b > r+40 && b > g+20 }
func greenish(r, g, b int) bool { return g > r+40 && g > b+40 }

func TestWrite(t *testing.T) {
	const w, h = 64, 48
	tests := []struct {
		name       string
		img        image.Image
		mapW, mapH int
		hot        float32
		opts       Options
		wantW      int
		wantH      int
	}{
		{
			name: "plain overlay keeps the image size",
			img:  grayImage(w, h), mapW: 16, mapH: 12, hot: 1,
			opts:  Options{Min: 0, Max: 1},
			wantW: w, wantH: h,
		},
		{
			name: "range from the map",
			img:  grayImage(w, h), mapW: 8, mapH: 6, hot: 7.5,
			opts:  Options{},
			wantW: w, wantH: h,
		},
		{
			name: "score and title add two lines",
			img:  grayImage(w, h), mapW: 16, mapH: 12, hot: 2,
			opts:  Options{Min: 0, Max: 2, Title: "test/good/000.png", ShowScore: true, Score: 1.234},
			wantW: w, wantH: h + pad + 2*lineHeight,
		},
		{
			name: "colour bar widens the image",
			img:  grayImage(w, h), mapW: 16, mapH: 12, hot: 1,
			opts:  Options{Min: 0, Max: 1, ColorBar: true, Alpha: 0.7},
			wantW: w + 3*pad + barWidth + 7, wantH: h,
		},
		{
			name: "image with offset bounds",
			img:  grayImage(w+10, h+10).SubImage(image.Rect(10, 10, w+10, h+10)), mapW: 4, mapH: 4, hot: 1,
			opts:  Options{Min: 0, Max: 1},
			wantW: w, wantH: h,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "heat.png")
			m := quadrantMap(tt.mapW, tt.mapH, tt.hot)
			if err := Write(path, tt.img, m, tt.mapW, tt.mapH, tt.opts); err != nil {
				t.Fatal(err)
			}
			out := readPNG(t, path)
			if b := out.Bounds(); b.Dx() != tt.wantW || b.Dy() != tt.wantH {
				t.Fatalf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), tt.wantW, tt.wantH)
			}
			// Centre of the hot quadrant and of the cold opposite one.
			if r, g, b := rgbAt(out, w/8, h/8); !reddish(r, g, b) {
				t.Errorf("hot pixel is (%d,%d,%d), want red", r, g, b)
			}
			if r, g, b := rgbAt(out, w-w/8, h-h/8); !bluish(r, g, b) {
				t.Errorf("cold pixel is (%d,%d,%d), want blue", r, g, b)
			}
			if tt.opts.ColorBar {
				x := w + pad + barWidth/2
				if r, g, b := rgbAt(out, x, 1); !reddish(r, g, b) {
					t.Errorf("top of the colour bar is (%d,%d,%d), want red", r, g, b)
				}
				if r, g, b := rgbAt(out, x, h-2); !bluish(r, g, b) {
					t.Errorf("bottom of the colour bar is (%d,%d,%d), want blue", r, g, b)
				}
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			if len(entries) != 1 {
				t.Errorf("directory holds %d entries, want only the PNG", len(entries))
			}
		})
	}
}

// TestRenderFixedRange checks that the same value is drawn the same way
// whatever else the map holds, and cooler under a wider range.
func TestRenderFixedRange(t *testing.T) {
	img := grayImage(32, 32)
	m1 := []float32{1, 0, 0, 0}
	m2 := []float32{1, 0, 0, 4}
	a, err := Render(img, m1, 2, 2, Options{Min: 0, Max: 2})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Render(img, m2, 2, 2, Options{Min: 0, Max: 2})
	if err != nil {
		t.Fatal(err)
	}
	if a.RGBAAt(2, 2) != b.RGBAAt(2, 2) {
		t.Errorf("same value drawn as %v and %v under one fixed range", a.RGBAAt(2, 2), b.RGBAAt(2, 2))
	}
	c, err := Render(img, m1, 2, 2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r, g, bl := rgbAt(c, 2, 2); !reddish(r, g, bl) {
		t.Errorf("peak under the automatic range is (%d,%d,%d), want red", r, g, bl)
	}
	if r, g, bl := rgbAt(a, 2, 2); reddish(r, g, bl) || bluish(r, g, bl) {
		t.Errorf("half of the fixed range is (%d,%d,%d), want neither red nor blue", r, g, bl)
	}
}

func TestRenderVerdict(t *testing.T) {
	tests := []struct {
		name      string
		score     float64
		threshold float64
		want      func(r, g, b int) bool
	}{
		{"anomaly", 2.5, 1, reddish},
		{"at the threshold", 1, 1, reddish},
		{"normal", 0.2, 1, greenish},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const w, h = 160, 32
			out, err := Render(grayImage(w, h), make([]float32, 4), 2, 2, Options{
				ShowScore: true, Score: tt.score, UseThreshold: true, Threshold: tt.threshold,
			})
			if err != nil {
				t.Fatal(err)
			}
			if out.Bounds().Dy() != h+pad+lineHeight {
				t.Fatalf("height %d", out.Bounds().Dy())
			}
			var text, verdict int
			for y := h; y < out.Bounds().Dy(); y++ {
				for x := range w {
					r, g, b := rgbAt(out, x, y)
					if r > 200 && g > 200 && b > 200 {
						text++
					}
					if tt.want(r, g, b) {
						verdict++
					}
				}
			}
			if text < 20 {
				t.Errorf("only %d light text pixels in the strip", text)
			}
			if verdict < 10 {
				t.Errorf("only %d pixels of the verdict colour in the strip", verdict)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	img := grayImage(8, 8)
	tests := []struct {
		name string
		img  image.Image
		m    []float32
		w, h int
		opts Options
	}{
		{"nil image", nil, make([]float32, 4), 2, 2, Options{}},
		{"empty image", image.NewRGBA(image.Rect(0, 0, 0, 0)), make([]float32, 4), 2, 2, Options{}},
		{"short map", img, make([]float32, 3), 2, 2, Options{}},
		{"zero width", img, nil, 0, 2, Options{}},
		{"NaN value", img, []float32{0, float32(math.NaN()), 0, 0}, 2, 2, Options{}},
		{"infinite value", img, []float32{0, float32(math.Inf(1)), 0, 0}, 2, 2, Options{}},
		{"NaN range", img, make([]float32, 4), 2, 2, Options{Max: math.NaN()}},
		{"alpha above one", img, make([]float32, 4), 2, 2, Options{Alpha: 1.5}},
		{"negative alpha", img, make([]float32, 4), 2, 2, Options{Alpha: -0.1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.png")
			err := Write(path, tt.img, tt.m, tt.w, tt.h, tt.opts)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the path", err)
			}
			if _, statErr := os.Stat(path); !os.IsNotExist(statErr) {
				t.Errorf("a file was written despite the error")
			}
		})
	}
	t.Run("missing directories are created", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "no", "such", "dir", "x.png")
		if err := Write(path, img, make([]float32, 4), 2, 2, Options{}); err != nil {
			t.Fatal(err)
		}
		readPNG(t, path)
	})
	t.Run("parent is a file", func(t *testing.T) {
		parent := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(parent, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(parent, "x.png")
		err := Write(path, img, make([]float32, 4), 2, 2, Options{})
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("err = %v, want an error naming %s", err, path)
		}
	})
}

func TestJetColor(t *testing.T) {
	tests := []struct {
		t    float64
		want color.RGBA
	}{
		{0, color.RGBA{0, 0, 128, 255}},
		{-1, color.RGBA{0, 0, 128, 255}},
		{math.NaN(), color.RGBA{0, 0, 128, 255}},
		{0.5, color.RGBA{128, 255, 128, 255}},
		{1, color.RGBA{128, 0, 0, 255}},
		{2, color.RGBA{128, 0, 0, 255}},
	}
	for _, tt := range tests {
		if got := JetColor(tt.t); got != tt.want {
			t.Errorf("JetColor(%g) = %v, want %v", tt.t, got, tt.want)
		}
	}
}

func TestTruncateText(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdefgh", 6, "abc..."},
		{"abcdefgh", 2, "ab"},
	}
	for _, tt := range tests {
		if got := truncateText(tt.s, tt.n); got != tt.want {
			t.Errorf("truncateText(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

// TestContour outlines the region above the level in white and leaves its
// inside and the rest coloured.
func TestContour(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	m := make([]float32, 64)
	for y := 2; y < 6; y++ {
		for x := 2; x < 6; x++ {
			m[y*8+x] = 1
		}
	}
	level := 0.5
	out, err := Render(img, m, 8, 8, Options{Min: 0, Max: 1, Contour: &level})
	if err != nil {
		t.Fatal(err)
	}
	white := func(x, y int) bool {
		c := out.RGBAAt(x, y)
		return c.R == 255 && c.G == 255 && c.B == 255
	}
	if !white(2, 2) || !white(5, 3) || white(3, 3) || white(1, 1) || white(6, 6) {
		t.Errorf("contour pixels wrong")
	}
}

// The ground truth's outline is drawn in white at the mask's edge, scaled to
// the image, and nowhere inside or outside it.
func TestRenderGroundTruthContour(t *testing.T) {
	const w, h = 40, 40
	mask := image.NewGray(image.Rect(0, 0, 20, 20)) // half the image's size
	for y := 5; y < 10; y++ {
		for x := 5; x < 15; x++ {
			mask.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	out, err := Render(grayImage(w, h), make([]float32, 4), 2, 2, Options{GroundTruth: mask})
	if err != nil {
		t.Fatal(err)
	}
	white := func(x, y int) bool {
		r, g, b := rgbAt(out, x, y)
		return r == 255 && g == 255 && b == 255
	}
	// The mask covers x 10..29, y 10..19 of the image.
	for _, p := range [][2]int{{10, 10}, {29, 10}, {10, 19}, {29, 19}, {20, 10}, {10, 15}} {
		if !white(p[0], p[1]) {
			t.Errorf("(%d, %d) on the outline is not white", p[0], p[1])
		}
	}
	for _, p := range [][2]int{{20, 15}, {9, 15}, {30, 15}, {20, 9}, {20, 20}, {0, 0}} {
		if white(p[0], p[1]) {
			t.Errorf("(%d, %d) off the outline is white", p[0], p[1])
		}
	}
}

// A note adds a line in the alarm colour.
func TestRenderNote(t *testing.T) {
	const w, h = 200, 32
	out, err := Render(grayImage(w, h), make([]float32, 4), 2, 2, Options{Note: "logical anomaly"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Bounds().Dy() != h+pad+lineHeight {
		t.Fatalf("height %d, want one text line", out.Bounds().Dy())
	}
	red := 0
	for y := h; y < out.Bounds().Dy(); y++ {
		for x := range w {
			if reddish(rgbAt(out, x, y)) {
				red++
			}
		}
	}
	if red < 20 {
		t.Errorf("only %d red pixels in the note", red)
	}
}
