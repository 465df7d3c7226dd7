package detector

import (
	"context"
	"fmt"
	"image"

	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/stats"
)

// Result is the outcome for one image.
type Result struct {
	// EfficientAD is the maximum of the anomaly map (a float32 value).
	EfficientAD float64 `json:"efficient_ad_score"`
	// Mahalanobis is the distance of the image's PUAD feature vector to the
	// training features.
	Mahalanobis float64 `json:"mahalanobis_distance"`
	// PUAD fuses the two standardised scores.
	PUAD float64 `json:"puad_score"`
	// Anomalous is PUAD > Threshold, for a valid PUAD score.
	Anomalous bool `json:"anomalous"`
	// Invalid marks a PUAD score that is not a number (NaN or infinite,
	// from a broken model or fit): the image is neither normal nor
	// anomalous (stats.VerdictInvalid). JSON cannot hold such scores:
	// encode them with stats.JSONScore.
	Invalid   bool    `json:"invalid,omitempty"`
	Threshold float64 `json:"threshold"`
	// Confidence is the empirical CDF of the fit's validation PUAD scores
	// at PUAD: the fraction of normal validation images scoring below this
	// image, in [0, 1] (stats.FitFile.Confidence).
	Confidence float64 `json:"confidence"`
	// Component is the part of PUAD with the larger standardised term:
	// "picturable" (the EfficientAD map) or "unpicturable" (the Mahalanobis
	// distance), which explains an anomaly with an empty heatmap.
	Component stats.Component `json:"component"`
	// Width and Height are the image's original size.
	Width  int `json:"width"`
	Height int `json:"height"`

	modelMap []float32 // mapSize×mapSize
	mapSize  int
}

// WithThreshold returns r judged by another threshold.
func (r Result) WithThreshold(threshold float64) Result {
	v := stats.VerdictAt(r.PUAD, threshold)
	r.Threshold, r.Anomalous, r.Invalid = threshold, v == stats.VerdictAnomalous, v == stats.VerdictInvalid
	return r
}

// Verdict is the decision on the image: normal, anomalous or invalid.
func (r Result) Verdict() stats.Verdict { return stats.VerdictAt(r.PUAD, r.Threshold) }

// ModelMap returns the anomaly map as the networks computed it: size rows of
// size values at the model's input resolution.
func (r Result) ModelMap() (m []float32, size int) { return r.modelMap, r.mapSize }

// AnomalyMap returns the anomaly map at the image's resolution: Height rows
// of Width values, resized from the model's map as the reference does
// (evaluate.FullMap).
func (r Result) AnomalyMap() ([]float32, error) {
	return evaluate.FullMap(r.modelMap, r.mapSize, r.Width, r.Height)
}

// Predict scores an image in memory.
func (d *Detector) Predict(ctx context.Context, img image.Image) (Result, error) {
	in, err := d.NewInput(img)
	if err != nil {
		return Result{}, err
	}
	return d.predictOne(ctx, in)
}

// PredictEncoded scores an encoded image (see Decode).
func (d *Detector) PredictEncoded(ctx context.Context, data []byte) (Result, error) {
	in, err := d.Decode(data)
	if err != nil {
		return Result{}, err
	}
	return d.predictOne(ctx, in)
}

func (d *Detector) predictOne(ctx context.Context, in Input) (Result, error) {
	rs, err := d.PredictBatch(ctx, []Input{in})
	if err != nil {
		return Result{}, err
	}
	return rs[0], nil
}

// PredictBatch scores inputs, BatchSize images per forward pass, and
// returns one result per input, in order. With a batch size of one the
// scores are those of `puad predict` and `puad eval` bit for bit; larger
// batches may move them by about 1e-7 relative (see
// evaluate.DefaultBatchSize). The context is checked between forward passes.
func (d *Detector) PredictBatch(ctx context.Context, ins []Input) ([]Result, error) {
	if err := d.acquire(); err != nil {
		return nil, err
	}
	defer d.release()
	out := make([]Result, 0, len(ins))
	for start := 0; start < len(ins); start += d.batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		chunk := ins[start:min(start+d.batch, len(ins))]
		rs, err := d.forward(chunk)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// forward runs one batch through the networks and scores it with the fit.
func (d *Detector) forward(ins []Input) ([]Result, error) {
	size := d.ImgSize()
	data := make([]float32, 0, len(ins)*3*size*size)
	for i, in := range ins {
		if len(in.x) != 3*size*size {
			return nil, fmt.Errorf("detector: input %d was not prepared by this detector", i)
		}
		data = append(data, in.x...)
	}
	d.run.Lock()
	outs, err := evaluate.ScoreBatch(d.scorer, data, len(ins), evaluate.Need{Score: true, Feature: true, Map: true})
	d.run.Unlock()
	if err != nil {
		return nil, fmt.Errorf("detector %s/%s: %w", d.datasetName, d.category, err)
	}
	rs := make([]Result, len(ins))
	for i, o := range outs {
		maha, puad, _ := d.fit.Score(d.gauss, o.Score, o.Feature)
		_, _, comp := d.fit.Fusion.Components(o.Score, maha)
		rs[i] = Result{
			EfficientAD: o.Score, Mahalanobis: maha, PUAD: puad, Confidence: d.fit.Confidence(puad), Component: comp,
			Width: ins[i].rgb.W, Height: ins[i].rgb.H, modelMap: o.Map, mapSize: size,
		}.WithThreshold(d.threshold)
	}
	return rs, nil
}
