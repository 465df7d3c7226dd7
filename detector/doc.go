// Package detector is the high-level Go API of puad: it loads a category's
// EfficientAD networks together with the PUAD fit and decision threshold
// that `puad fit` stored beside them, and scores new images. Load names an
// MVTec-style category by its folder, LoadName a plain folder's model by
// its name; the teacher, and how 16-bit greyscale is decoded, are the
// fit's unless Options say otherwise. A fit whose model files changed
// since it was made is refused (evaluate.CheckFit).
//
// A Detector gives per image the EfficientAD score (the maximum of the
// anomaly map), the Mahalanobis distance of the PUAD feature vector, the
// PUAD score that fuses the two, the verdict (anomalous when the PUAD score
// is above the threshold, invalid when it is not a number) and the anomaly
// map at the image's resolution.
// Images are decoded and resized exactly as `puad eval` and `puad predict`
// do, so the scores are those of the command line bit for bit.
//
// Options.Threshold replaces the fit's threshold; Result.WithThreshold
// judges one result by another. Each result also carries a bounded
// confidence (the empirical CDF of the validation scores) and the PUAD
// component with the larger term, and Defects turns its map into a defect
// mask with the fit's pixel threshold, with the mask's connected regions.
//
// A Detector is safe for concurrent use: forward passes run one at a time
// (libtorch parallelises each of them), decoding runs in the caller's
// goroutine. Close releases the networks once the calls in progress end.
package detector
