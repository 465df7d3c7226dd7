package synth

import (
	"encoding/json"
	"slices"
)

// DefectSpec is one anomaly kind's entry of the generated
// defects_config.json, in MVTec LOCO AD's format.
type DefectSpec struct {
	// Name is the anomaly kind (one of the Anomaly* constants).
	Name string `json:"defect_name"`
	// PixelValue marks the kind's pixels in a ground-truth channel.
	PixelValue uint8 `json:"pixel_value"`
	// Saturation is the saturation threshold: a fraction of the channel's
	// area when Relative, else a number of pixels.
	Saturation json.Number `json:"saturation_threshold"`
	// Relative tells how Saturation is meant.
	Relative bool `json:"relative_saturation"`
}

// defectSpecs gives every anomaly kind a pixel value and a saturation
// threshold. Most are relative (the whole region must be found); the
// scratch and the extra object saturate at an absolute area, so that both
// kinds of threshold occur.
var defectSpecs = []DefectSpec{
	{AnomalyMissing, 255, "1.0", true},
	{AnomalyExtra, 254, "400", false},
	{AnomalyWrongColor, 253, "1.0", true},
	{AnomalySwapped, 252, "1.0", true},
	{AnomalyMisplaced, 251, "1.0", true},
	{AnomalyScratch, 250, "150", false},
	{AnomalyHole, 249, "1.0", true},
	{AnomalyBlot, 248, "1.0", true},
	{AnomalyBrokenEdge, 247, "1.0", true},
}

// Defects returns the defects_config.json entries of a variant: its
// logical kinds, then the structural ones.
func Defects(v Variant) []DefectSpec {
	lay := layouts[v]
	if lay == nil {
		return nil
	}
	var out []DefectSpec
	for _, d := range defectSpecs {
		if isStructural(d.Name) || slices.Contains(lay.logical, d.Name) {
			out = append(out, d)
		}
	}
	return out
}

// DefectPixelValue is the value of kind's pixels in a ground-truth
// channel; 0 for an unknown kind.
func DefectPixelValue(kind string) uint8 {
	for _, d := range defectSpecs {
		if d.Name == kind {
			return d.PixelValue
		}
	}
	return 0
}

func isStructural(kind string) bool { return slices.Contains(structuralKinds, kind) }

// defectsJSON is the defects_config.json of a variant.
func defectsJSON(v Variant) ([]byte, error) {
	data, err := json.MarshalIndent(Defects(v), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
