package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/internal/testtree"
)

// BenchmarkPredictBatch times `puad predict` (decoding, the networks, the
// fit's scores; no heatmaps) on every image of a generated category at the
// reference's 256 pixels, one image per forward pass and eight, and reports
// images per second.
func BenchmarkPredictBatch(b *testing.B) {
	root := b.TempDir()
	modelDir, cat, err := testtree.Fitted(root, loco, "pushpins", synth.VariantPins, 7, 0)
	if err != nil {
		b.Fatal(err)
	}
	imgs, err := filepath.Glob(filepath.Join(cat, "*", "*", "*.png"))
	if err != nil {
		b.Fatal(err)
	}
	for _, batch := range []int{1, 8} {
		b.Run(fmt.Sprintf("batch%d", batch), func(b *testing.B) {
			ps := predictSettings{ModelDir: modelDir, CategoryDir: cat, Inputs: imgs, Size: "s", Device: "cpu", BatchSize: batch}
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, err := runPredict(context.Background(), ps, io.Discard, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			rate := float64(b.N*len(imgs)) / time.Since(start).Seconds()
			b.ReportMetric(rate, "img/s")
			b.Logf("batch %d: %d images, %.2f images/s", batch, len(imgs), rate)
		})
	}
}
