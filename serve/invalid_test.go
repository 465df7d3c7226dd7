package serve_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/puad-go/puad/detector"
	"github.com/puad-go/puad/serve"
)

// The answer for a score that is not a number says invalid, with null
// scores, and keeps its other fields.
func TestInvalidPredictionJSON(t *testing.T) {
	r := detector.Result{EfficientAD: 1.5, Mahalanobis: math.Inf(1), PUAD: math.NaN()}.WithThreshold(2)
	p := serve.Prediction{DatasetName: "d", Category: "c", Result: r, Verdict: r.Verdict().String(), BatchSize: 1}
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"invalid":true`, `"verdict":"invalid"`, `"puad_score":null`, `"mahalanobis_distance":null`,
		`"efficient_ad_score":1.5`, `"threshold":2`, `"category":"c"`, `"batch_size":1`, `"anomalous":false`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("JSON lacks %s: %s", want, data)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	valid := detector.Result{EfficientAD: 1.5, Mahalanobis: 4, PUAD: 3}.WithThreshold(2)
	if data, err = json.Marshal(serve.Prediction{Result: valid, Verdict: valid.Verdict().String()}); err != nil || strings.Contains(string(data), "invalid") ||
		!strings.Contains(string(data), `"puad_score":3`) || !strings.Contains(string(data), `"verdict":"anomalous"`) {
		t.Errorf("valid prediction: %s, %v", data, err)
	}
}
