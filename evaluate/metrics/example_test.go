package metrics_test

import (
	"fmt"

	"github.com/puad-go/puad/evaluate/metrics"
)

// Four normal and three anomalous images: of the twelve (anomalous, normal)
// pairs, ten are ranked correctly and one is tied, which counts one half:
// 10.5/12.
func ExampleAUROC() {
	anomalous := []bool{false, false, false, false, true, true, true}
	scores := []float64{0.10, 0.20, 0.35, 0.40, 0.35, 0.80, 0.90}
	auroc, err := metrics.AUROC(anomalous, scores)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("AUROC %.4f\n", auroc)
	// Output:
	// AUROC 0.8750
}

// Each anomaly class is scored against the normal images alone.
func ExamplePerClassAUROC() {
	classes := []string{"good", "good", "good", "scratch", "scratch", "missing_part"}
	scores := []float64{0.1, 0.2, 0.3, 0.9, 0.25, 0.15}
	overall, perClass, err := metrics.PerClassAUROC(classes, scores, "good")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("all: %.4f\n", overall)
	for _, c := range perClass {
		fmt.Printf("%s (%d images): %.4f\n", c.Class, c.Count, c.AUROC)
	}
	// Output:
	// all: 0.6667
	// scratch (2 images): 0.8333
	// missing_part (1 images): 0.3333
}
