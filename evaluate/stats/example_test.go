package stats_test

import (
	"fmt"

	"github.com/puad-go/puad/evaluate/stats"
)

// Fit the Gaussian of normal feature vectors, then score new vectors by
// their Mahalanobis distance: a vector like the training ones is close, one
// that breaks their correlation is far even though each of its components
// is ordinary.
func ExampleFitGaussian() {
	train := [][]float32{
		{1.0, 2.0}, {1.2, 2.3}, {0.8, 1.7}, {1.1, 2.2},
		{0.9, 1.9}, {1.3, 2.5}, {0.7, 1.6}, {1.0, 2.1},
	}
	g, err := stats.FitGaussian(train)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("mean %.3f, shrinkage %.3f\n", g.Mean, g.Shrinkage)
	fmt.Printf("typical   %.2f\n", g.Mahalanobis([]float32{1.05, 2.1}))
	fmt.Printf("unrelated %.2f\n", g.Mahalanobis([]float32{1.3, 1.6}))
	// Output:
	// mean [1.000 2.037], shrinkage 0.250
	// typical   0.26
	// unrelated 4.11
}

// The PUAD score adds the EfficientAD score and the Mahalanobis distance,
// each standardised by its mean and standard deviation on the validation
// images.
func ExampleFitFusion() {
	validEff := []float64{0.10, 0.12, 0.08, 0.11, 0.09}
	validMaha := []float64{4.0, 5.0, 3.5, 4.5, 3.0}
	f, err := stats.FitFusion(validEff, validMaha)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("EfficientAD mean %.3f std %.4f\n", f.EfficientAD.Mean, f.EfficientAD.Std)
	fmt.Printf("Mahalanobis mean %.3f std %.4f\n", f.Mahalanobis.Mean, f.Mahalanobis.Std)
	fmt.Printf("PUAD score %.3f\n", f.Score(0.13, 6.0))
	// Output:
	// EfficientAD mean 0.100 std 0.0141
	// Mahalanobis mean 4.000 std 0.7071
	// PUAD score 4.950
}
