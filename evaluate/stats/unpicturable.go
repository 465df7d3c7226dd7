package stats

// UnpicturableOnly reports whether an image is anomalous by its PUAD score
// only thanks to the unpicturable part: the PUAD score is above the
// threshold while the EfficientAD score alone (the Mahalanobis term at its
// validation mean, contributing zero) would not be. Such an image is a
// logical anomaly that EfficientAD's map does not show.
func (f *FitFile) UnpicturableOnly(eff, maha float64) bool {
	return f.Fusion.UnpicturableOnly(eff, maha, f.Threshold.Value)
}

// UnpicturableOnly is FitFile.UnpicturableOnly with another threshold on
// the PUAD score.
func (f Fusion) UnpicturableOnly(eff, maha, threshold float64) bool {
	return f.Score(eff, maha) > threshold && f.Score(eff, f.Mahalanobis.Mean) <= threshold
}
