package detector_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"log"
	"os"
	"path/filepath"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/detector"
	"github.com/puad-go/puad/internal/testtree"
)

// Load a category's detector and score an image in memory. The model here
// is random (made by internal/testtree), so the scores mean nothing, but the
// calls are those of a real deployment.
func Example() {
	root, err := os.MkdirTemp("", "detector-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	models, category, err := testtree.Fitted(root, "mvtec_loco_anomaly_detection", "pushpins", synth.VariantPins, 7, 0)
	if err != nil {
		log.Fatal(err)
	}

	d, err := detector.Load(models, category, detector.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	img.Set(10, 10, color.RGBA{255, 0, 0, 255})
	r, err := d.Predict(context.Background(), img)
	if err != nil {
		log.Fatal(err)
	}
	amap, err := r.AnomalyMap()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s/%s: verdict by PUAD score > %v? %v\n", d.DatasetName(), d.Category(), r.Threshold == d.Threshold(), r.Anomalous == (r.PUAD > r.Threshold))
	fmt.Printf("anomaly map of %dx%d = %d values\n", r.Width, r.Height, len(amap))
	// Output:
	// mvtec_loco_anomaly_detection/pushpins: verdict by PUAD score > true? true
	// anomaly map of 64x48 = 3072 values
}

// Score files in batches: decode them (possibly in parallel goroutines),
// then send them through the networks together.
func ExampleDetector_PredictBatch() {
	d, err := detector.Load(modelDir, categoryDir, detector.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	var ins []detector.Input
	for _, p := range testImages[:2] {
		in, err := d.DecodeFile(p)
		if err != nil {
			log.Fatal(err)
		}
		ins = append(ins, in)
	}
	rs, err := d.PredictBatch(context.Background(), ins)
	if err != nil {
		log.Fatal(err)
	}
	for i, r := range rs {
		fmt.Printf("%s: %dx%d\n", filepath.Base(testImages[i]), r.Width, r.Height)
	}
	// Output:
	// 000.png: 32x32
	// 001.png: 32x32
}
