package heatmap

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/puad-go/puad/internal/atomicfile"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Options controls Render and Write.
type Options struct {
	// Min and Max are the anomaly values drawn at the cold (blue) and the
	// hot (red) end of the colour map; values outside are clamped. Use the
	// same fixed range for every image of a run so that the overlays are
	// comparable. If Max <= Min, Max is taken from the map itself (its
	// largest value), which makes each overlay relative to its own peak.
	Min, Max float64
	// Alpha is the opacity of the overlay in (0, 1]; zero means 0.5.
	Alpha float64
	// Title is an optional first line of text below the image, such as the
	// file name or the ground-truth label.
	Title string
	// ShowScore prints Score below the image.
	ShowScore bool
	// Score is the image-level anomaly score.
	Score float64
	// UseThreshold adds a verdict after the score: "ANOMALY" (in red) when
	// Score >= Threshold, else "normal" (in green).
	UseThreshold bool
	// Threshold is the decision threshold on Score.
	Threshold float64
	// ColorBar adds a colour bar right of the image, labelled with the
	// values of its ends.
	ColorBar bool
	// Contour, when set, outlines the pixels whose resampled map value is
	// greater than *Contour (a defect mask's edge).
	Contour *float64
	// GroundTruth, if set, is the image's ground-truth mask (non-zero
	// where anomalous, any size: it is scaled to the image by nearest
	// neighbour); its outline is drawn over the overlay.
	GroundTruth *image.Gray
	// Note, if set, is a last line of text in the alarm colour, such as
	// why an image whose map is quiet is anomalous.
	Note string
}

// Layout of the text strip and the colour bar, in pixels.
const (
	lineHeight = 15 // basicfont.Face7x13 is 13 pixels high
	pad        = 4
	barWidth   = 12
)

var (
	panelColor  = color.RGBA{28, 28, 32, 255}
	textColor   = color.RGBA{235, 235, 235, 255}
	alarmColor  = color.RGBA{255, 80, 70, 255}
	normalColor = color.RGBA{110, 220, 120, 255}
)

// JetColor maps t in [0, 1] to the classic "jet" colour map: dark blue at 0,
// through cyan, green and yellow, to dark red at 1. Values outside [0, 1]
// are clamped; NaN maps to 0.
func JetColor(t float64) color.RGBA {
	if !(t > 0) { // also NaN
		t = 0
	}
	t = math.Min(t, 1)
	ch := func(c float64) uint8 {
		v := math.Max(0, math.Min(1, 1.5-math.Abs(4*t-c)))
		return uint8(math.Round(255 * v))
	}
	return color.RGBA{ch(3), ch(2), ch(1), 255}
}

// Render returns img with anomalyMap (mapH rows of mapW values, row major)
// drawn over it as a colour overlay, resized to the image with bilinear
// interpolation (pixel centres aligned, as align_corners=False), normalised
// with the range of opts and coloured with JetColor. Below the image it
// adds a strip with opts.Title and the score when asked for, and right of
// it a colour bar when opts.ColorBar is set.
func Render(img image.Image, anomalyMap []float32, mapW, mapH int, opts Options) (*image.RGBA, error) {
	lo, hi, alpha, err := checkInputs(img, anomalyMap, mapW, mapH, opts)
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	lines := textLines(opts)
	outW, outH := w, h+len(lines)*lineHeight
	if len(lines) > 0 {
		outH += pad
	}
	var loLabel, hiLabel string
	if opts.ColorBar {
		loLabel = strconv.FormatFloat(lo, 'g', 3, 64)
		hiLabel = strconv.FormatFloat(hi, 'g', 3, 64)
		labelW := 7 * max(len(loLabel), len(hiLabel))
		outW += pad + barWidth + pad + labelW + pad
	}
	out := image.NewRGBA(image.Rect(0, 0, outW, outH))
	draw.Draw(out, out.Bounds(), image.NewUniform(panelColor), image.Point{}, draw.Src)
	draw.Draw(out, image.Rect(0, 0, w, h), img, b.Min, draw.Src)
	drawOverlay(out, anomalyMap, mapW, mapH, w, h, lo, hi, alpha)
	if opts.Contour != nil {
		level := *opts.Contour
		drawContour(out, w, h, func(x, y int) bool { return bilinear(anomalyMap, mapW, mapH, w, h, x, y) > level })
	}
	if opts.GroundTruth != nil && opts.GroundTruth.Bounds().Dx() > 0 && opts.GroundTruth.Bounds().Dy() > 0 {
		drawContour(out, w, h, maskRegion(opts.GroundTruth, w, h))
	}
	drawText(out, lines, w, h)
	if opts.ColorBar {
		drawColorBar(out, w, h, loLabel, hiLabel)
	}
	return out, nil
}

// checkInputs validates the arguments of Render and returns the value range
// [lo, hi] of the colour map and the opacity of the overlay.
func checkInputs(img image.Image, anomalyMap []float32, mapW, mapH int, opts Options) (lo, hi, alpha float64, err error) {
	if img == nil {
		return 0, 0, 0, fmt.Errorf("heatmap: nil image")
	}
	if b := img.Bounds(); b.Dx() <= 0 || b.Dy() <= 0 {
		return 0, 0, 0, fmt.Errorf("heatmap: empty image")
	}
	if mapW <= 0 || mapH <= 0 || len(anomalyMap) != mapW*mapH {
		return 0, 0, 0, fmt.Errorf("heatmap: anomaly map of %d values does not match %dx%d", len(anomalyMap), mapW, mapH)
	}
	lo, hi = opts.Min, opts.Max
	if math.IsNaN(lo) || math.IsInf(lo, 0) || math.IsNaN(hi) || math.IsInf(hi, 0) {
		return 0, 0, 0, fmt.Errorf("heatmap: range [%g, %g] is not finite", lo, hi)
	}
	peak := math.Inf(-1)
	for i, v := range anomalyMap {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, 0, 0, fmt.Errorf("heatmap: anomaly map value %d is %g", i, f)
		}
		peak = math.Max(peak, f)
	}
	if hi <= lo {
		hi = peak
	}
	alpha = opts.Alpha
	if alpha == 0 {
		alpha = 0.5
	}
	if !(alpha > 0 && alpha <= 1) {
		return 0, 0, 0, fmt.Errorf("heatmap: alpha %g not in (0, 1]", opts.Alpha)
	}
	return lo, hi, alpha, nil
}

// drawOverlay blends the coloured map over the w×h image at the top left
// of out.
func drawOverlay(out *image.RGBA, anomalyMap []float32, mapW, mapH, w, h int, lo, hi, alpha float64) {
	norm := func(v float64) float64 {
		if hi <= lo {
			return 0
		}
		return (v - lo) / (hi - lo)
	}
	for y := range h {
		for x := range w {
			c := JetColor(norm(bilinear(anomalyMap, mapW, mapH, w, h, x, y)))
			o := out.PixOffset(x, y)
			out.Pix[o+0] = blend(out.Pix[o+0], c.R, alpha)
			out.Pix[o+1] = blend(out.Pix[o+1], c.G, alpha)
			out.Pix[o+2] = blend(out.Pix[o+2], c.B, alpha)
			out.Pix[o+3] = 255
		}
	}
}

// drawText writes the lines of the text strip below the w×h image, cut to
// the width of the image.
func drawText(out *image.RGBA, lines [][]textSeg, w, h int) {
	d := &font.Drawer{Dst: out, Face: basicfont.Face7x13}
	for i, ln := range lines {
		d.Dot = fixed.P(pad, h+pad+i*lineHeight+11)
		room := (w - 2*pad) / 7
		for _, seg := range ln {
			if room <= 0 {
				break
			}
			text := truncateText(seg.text, room)
			room -= len(text)
			d.Src = image.NewUniform(seg.color)
			d.DrawString(text)
		}
	}
}

// drawColorBar draws the colour bar right of the w×h image, hot at the top
// and cold at the bottom, labelled with the values of its ends.
func drawColorBar(out *image.RGBA, w, h int, loLabel, hiLabel string) {
	x0 := w + pad
	for y := range h {
		t := 1 - (float64(y)+0.5)/float64(h)
		draw.Draw(out, image.Rect(x0, y, x0+barWidth, y+1), image.NewUniform(JetColor(t)), image.Point{}, draw.Src)
	}
	d := &font.Drawer{Dst: out, Face: basicfont.Face7x13, Src: image.NewUniform(textColor)}
	d.Dot = fixed.P(x0+barWidth+pad, 11)
	d.DrawString(hiLabel)
	d.Dot = fixed.P(x0+barWidth+pad, max(11, h-2))
	d.DrawString(loLabel)
}

// Write renders the overlay of Render and writes it as a PNG file at path
// (WritePNG).
func Write(path string, img image.Image, anomalyMap []float32, mapW, mapH int, opts Options) error {
	out, err := Render(img, anomalyMap, mapW, mapH, opts)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return WritePNG(path, out)
}

// WritePNG writes img as a PNG file at path with internal/atomicfile, so a
// reader never sees a partial image.
func WritePNG(path string, img image.Image) error {
	return atomicfile.Write(path, atomicfile.DefaultPerm, func(w io.Writer) error {
		return png.Encode(w, img)
	})
}

type textSeg struct {
	text  string
	color color.RGBA
}

// textLines returns the lines of the text strip, each as coloured
// segments.
func textLines(opts Options) [][]textSeg {
	var lines [][]textSeg
	if t := strings.TrimSpace(opts.Title); t != "" {
		lines = append(lines, []textSeg{{asciiOnly(t), textColor}})
	}
	if opts.ShowScore {
		ln := []textSeg{{"score " + strconv.FormatFloat(opts.Score, 'f', 3, 64), textColor}}
		if opts.UseThreshold {
			if opts.Score >= opts.Threshold {
				ln = append(ln, textSeg{"  ANOMALY", alarmColor})
			} else {
				ln = append(ln, textSeg{"  normal", normalColor})
			}
		}
		lines = append(lines, ln)
	}
	if n := strings.TrimSpace(opts.Note); n != "" {
		lines = append(lines, []textSeg{{asciiOnly(n), alarmColor}})
	}
	return lines
}

// truncateText cuts s to at most n characters, marking a cut with "...".
func truncateText(s string, n int) string {
	switch {
	case len(s) <= n:
		return s
	case n <= 3:
		return s[:n]
	}
	return s[:n-3] + "..."
}

// asciiOnly replaces the characters basicfont cannot draw.
func asciiOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// bilinear samples the map at the centre of output pixel (x, y) of a w×h
// image, with the pixel-centre convention of align_corners=False and edge
// clamping.
func bilinear(m []float32, mw, mh, w, h, x, y int) float64 {
	sx := (float64(x)+0.5)*float64(mw)/float64(w) - 0.5
	sy := (float64(y)+0.5)*float64(mh)/float64(h) - 0.5
	sx = math.Max(0, math.Min(float64(mw-1), sx))
	sy = math.Max(0, math.Min(float64(mh-1), sy))
	x0, y0 := int(sx), int(sy)
	x1, y1 := min(x0+1, mw-1), min(y0+1, mh-1)
	fx, fy := sx-float64(x0), sy-float64(y0)
	v00, v10 := float64(m[y0*mw+x0]), float64(m[y0*mw+x1])
	v01, v11 := float64(m[y1*mw+x0]), float64(m[y1*mw+x1])
	top := v00 + (v10-v00)*fx
	bot := v01 + (v11-v01)*fx
	return top + (bot-top)*fy
}

// contourColor outlines ground truths and defect masks: white stands out
// on every colour of the jet map.
var contourColor = color.RGBA{255, 255, 255, 255}

// drawContour draws the outline of a region of the w×h image at the top left
// of out: the pixels in the region with a pixel outside it among their four
// neighbours inside the image.
func drawContour(out *image.RGBA, w, h int, region func(x, y int) bool) {
	in := make([]bool, w*h)
	for y := range h {
		for x := range w {
			in[y*w+x] = region(x, y)
		}
	}
	for y := range h {
		for x := range w {
			if !in[y*w+x] {
				continue
			}
			for _, d := range [4][2]int{{-1, 0}, {1, 0}, {0, -1}, {0, 1}} {
				nx, ny := x+d[0], y+d[1]
				if nx >= 0 && nx < w && ny >= 0 && ny < h && !in[ny*w+nx] {
					out.SetRGBA(x, y, contourColor)
					break
				}
			}
		}
	}
}

// maskRegion is the region of a non-empty mask scaled to a w×h image by
// nearest neighbour: its non-zero pixels.
func maskRegion(mask *image.Gray, w, h int) func(x, y int) bool {
	mb := mask.Bounds()
	return func(x, y int) bool {
		return mask.GrayAt(mb.Min.X+x*mb.Dx()/w, mb.Min.Y+y*mb.Dy()/h).Y != 0
	}
}

func blend(base, over uint8, alpha float64) uint8 {
	return uint8(math.Round(float64(base)*(1-alpha) + float64(over)*alpha))
}
