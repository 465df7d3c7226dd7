package stats

import (
	"math"
	"testing"
)

type scoredForTest struct {
	Path        string  `json:"path"`
	EfficientAD float64 `json:"efficient_ad_score"`
	Mahalanobis float64 `json:"mahalanobis_distance"`
	PUAD        float64 `json:"puad_score"`
	Invalid     bool    `json:"invalid,omitempty"`
}

func TestMarshalScored(t *testing.T) {
	ok := scoredForTest{Path: "a.png", EfficientAD: 0.5, Mahalanobis: 2, PUAD: -1.25}
	got, err := MarshalScored(ok, false, ok.EfficientAD, ok.Mahalanobis, ok.PUAD)
	if want := `{"path":"a.png","efficient_ad_score":0.5,"mahalanobis_distance":2,"puad_score":-1.25}`; err != nil || string(got) != want {
		t.Errorf("valid: %s, %v; want %s", got, err, want)
	}
	bad := scoredForTest{Path: "b.png", EfficientAD: math.NaN(), Mahalanobis: 3, PUAD: math.Inf(1), Invalid: true}
	got, err = MarshalScored(bad, true, bad.EfficientAD, bad.Mahalanobis, bad.PUAD)
	if want := `{"path":"b.png","invalid":true,"efficient_ad_score":null,"mahalanobis_distance":3,"puad_score":null}`; err != nil || string(got) != want {
		t.Errorf("invalid: %s, %v; want %s", got, err, want)
	}
}
