package stats

// Component names the part of PUAD that contributes more to a score.
type Component string

// The two components of the PUAD score.
const (
	// Picturable is EfficientAD's anomaly map: something visible at a place.
	Picturable Component = "picturable"
	// Unpicturable is the Mahalanobis distance of the global feature vector:
	// something wrong with the image as a whole (a logical anomaly), which
	// may leave the map empty.
	Unpicturable Component = "unpicturable"
)

// Components returns the two standardised terms whose sum is Score (in
// float32, as Score adds them) and the component with the larger one
// (Picturable on a tie).
func (f Fusion) Components(eff, maha float64) (zEff, zMaha float64, larger Component) {
	zEff, zMaha = float64(f.EfficientAD.apply32(eff)), float64(f.Mahalanobis.apply32(maha))
	if zMaha > zEff {
		return zEff, zMaha, Unpicturable
	}
	return zEff, zMaha, Picturable
}

// Confidence is the empirical cumulative distribution function of the
// fit's validation PUAD scores at puad: the fraction of validation images
// (all normal) that score strictly below it, in [0, 1]. A score above
// every validation image's gives 1, below all of them 0. It says how
// unusual the score is among normal images, not the probability of an
// anomaly.
func (f *FitFile) Confidence(puad float64) float64 {
	if len(f.Validation) == 0 {
		return 0
	}
	below := 0
	for _, v := range f.Validation {
		if v.PUAD < puad {
			below++
		}
	}
	return float64(below) / float64(len(f.Validation))
}
