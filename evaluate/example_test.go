package evaluate_test

import (
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// Load a model directory in the reference's layout and score one image:
// its EfficientAD score (the maximum of the anomaly map), its PUAD feature
// vector and the map itself.
func Example() {
	dir, err := os.MkdirTemp("", "puad-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// A generated category and a model with random weights stand in for a
	// dataset and a trained model.
	catDir, err := testtree.WriteCategory(filepath.Join(dir, "data"), "my_dataset", "widget", synth.VariantTray, 1)
	if err != nil {
		log.Fatal(err)
	}
	modelDir := filepath.Join(dir, "models")
	if err := testtree.WriteRandomModel(modelDir, "my_dataset", "widget", 1, 0); err != nil {
		log.Fatal(err)
	}

	m, err := models.LoadEfficientAD(modelDir, models.Small, "my_dataset", "widget", 256, tb.CPU)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	// Decode, resize to 256×256 as Pillow does, scale and normalise.
	pixels, err := datasets.LoadImage(filepath.Join(catDir, "test", "good", "000.png"), 256)
	if err != nil {
		log.Fatal(err)
	}
	x, err := tb.FromSlice(pixels, 1, 3, 256, 256)
	if err != nil {
		log.Fatal(err)
	}
	defer x.Close()
	sc := &evaluate.Scorer{Model: m, Extractor: evaluate.StudentExtractor}
	outs, err := sc.Run(x, evaluate.Need{Score: true, Feature: true, Map: true})
	if err != nil {
		log.Fatal(err)
	}
	o := outs[0]
	mapMax := float32(math.Inf(-1))
	for _, v := range o.Map {
		mapMax = max(mapMax, v)
	}
	fmt.Println("score is the map's maximum:", float64(mapMax) == o.Score, !math.IsNaN(o.Score))
	fmt.Println("feature length:", len(o.Feature), "map pixels:", len(o.Map))
	// Output:
	// score is the map's maximum: true true
	// feature length: 384 map pixels: 65536
}
