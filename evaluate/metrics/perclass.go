package metrics

import "fmt"

// ClassAUROC is the AUROC of one anomaly class: the normal images against
// the images of that class only.
type ClassAUROC struct {
	// Class is the anomaly class name (a test-set folder name such as
	// "broken_large").
	Class string `json:"class"`
	// AUROC is the area under the ROC curve of the normal images and this
	// class's images.
	AUROC float64 `json:"auroc"`
	// Count is the number of images of this class.
	Count int `json:"count"`
}

// PerClassAUROC returns the AUROC over all images and the AUROC of each
// anomaly class, as the reference's PUAD.auroc_for_anomalies computes them.
// classes[i] is the class name of image i and scores[i] its anomaly score;
// images whose class is normal (the reference uses "good") are the
// negatives, every other class is anomalous. Per-class results come in the
// order in which each anomaly class first appears in classes, which for an
// ImageFolder test set is the alphabetical order of its folders.
//
// It returns an error when the lengths differ, when there are no normal or
// no anomalous images, or when a score is not finite.
func PerClassAUROC(classes []string, scores []float64, normal string) (overall float64, perClass []ClassAUROC, err error) {
	if len(classes) != len(scores) {
		return 0, nil, fmt.Errorf("metrics: per-class AUROC: %d class names but %d scores", len(classes), len(scores))
	}
	labels := make([]bool, len(classes))
	var normalScores []float64
	byClass := map[string][]float64{}
	var order []string
	for i, c := range classes {
		if c == normal {
			normalScores = append(normalScores, scores[i])
			continue
		}
		labels[i] = true
		if _, ok := byClass[c]; !ok {
			order = append(order, c)
		}
		byClass[c] = append(byClass[c], scores[i])
	}
	if len(normalScores) == 0 {
		return 0, nil, fmt.Errorf("metrics: per-class AUROC: no image of the normal class %q", normal)
	}
	if len(order) == 0 {
		return 0, nil, fmt.Errorf("metrics: per-class AUROC: no anomalous image (every image is of class %q)", normal)
	}
	overall, err = AUROC(labels, scores)
	if err != nil {
		return 0, nil, err
	}
	for _, c := range order {
		s := append(append([]float64(nil), normalScores...), byClass[c]...)
		l := make([]bool, len(s))
		for i := len(normalScores); i < len(l); i++ {
			l[i] = true
		}
		a, err := AUROC(l, s)
		if err != nil {
			return 0, nil, fmt.Errorf("metrics: per-class AUROC of %q: %w", c, err)
		}
		perClass = append(perClass, ClassAUROC{Class: c, AUROC: a, Count: len(byClass[c])})
	}
	return overall, perClass, nil
}
