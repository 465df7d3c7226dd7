package stats

// UnpicturableOnly reports whether an image is anomalous by its PUAD score
// only thanks to the unpicturable part: the PUAD score is above the
// threshold while the EfficientAD score alone (the Mahalanobis term at its
// validation mean, contributing zero) would not be. Such an image is a
// logical anomaly that EfficientAD's map does not show.
func (f *FitFile) UnpicturableOnly(eff, maha float64) bool {
	t := f.Threshold.Value
	return f.Fusion.Score(eff, maha) > t && f.Fusion.Score(eff, f.Fusion.Mahalanobis.Mean) <= t
}
