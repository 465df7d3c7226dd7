package localize

import (
	"errors"
	"fmt"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/evaluate/metrics"
	"github.com/puad-go/puad/internal/pyfmt"
)

// Accumulator gathers a test set's maps one image at a time.
// It is not safe for concurrent use.
type Accumulator struct {
	gt      *GroundTruth
	all     *metrics.PixelAccumulator
	classes []string // anomaly classes, in order
	pixel   map[string]*metrics.PixelAccumulator
	spro    map[string]*metrics.SPROAccumulator // nil without a defects config
}

// NewAccumulator returns an empty accumulator for a category with ground
// truth gt and the given test classes (datasets.Dataset.Classes; the
// good class is recognised by its name).
func NewAccumulator(gt *GroundTruth, classes []string) *Accumulator {
	a := &Accumulator{gt: gt, all: metrics.NewPixelAccumulator(), pixel: map[string]*metrics.PixelAccumulator{}}
	if gt.Defects != nil {
		a.spro = map[string]*metrics.SPROAccumulator{}
	}
	for _, c := range classes {
		if c == datasets.NormalClass {
			continue
		}
		a.classes = append(a.classes, c)
		a.pixel[c] = metrics.NewPixelAccumulator()
		if a.spro != nil {
			a.spro[c] = metrics.NewSPROAccumulator(gt.Defects)
		}
	}
	return a
}

// Add adds one test image: its full-resolution anomaly map (w×h,
// row-major) and its masks (GroundTruth.Masks). A good image counts for
// every class; an anomalous one for its own. Errors name the image.
func (a *Accumulator) Add(it datasets.TestItem, anomalyMap []float32, w, h int, masks []metrics.Mask) error {
	fail := func(err error) error { return fmt.Errorf("localisation of %s: %w", it.Path, err) }
	if it.Anomalous && a.pixel[it.Class] == nil {
		return fail(fmt.Errorf("class %q is not one of the category's", it.Class))
	}
	if err := a.all.Add(anomalyMap, w, h, masks...); err != nil {
		return fail(err)
	}
	targets := a.classes
	if it.Anomalous {
		targets = []string{it.Class}
	}
	for _, c := range targets {
		if err := a.pixel[c].Add(anomalyMap, w, h, masks...); err != nil {
			return fail(err)
		}
		if a.spro != nil {
			if err := a.spro[c].Add(anomalyMap, w, h, masks...); err != nil {
				return fail(err)
			}
		}
	}
	return nil
}

// Result returns the metrics of the images added. A class whose masks
// mark no pixel has no entry; when no mask marks any pixel the result is
// nil, as when no metric applies.
func (a *Accumulator) Result() (*Metrics, error) {
	all, err := a.all.Result()
	if errors.Is(err, metrics.ErrNoAnomalousPixel) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("localisation: %w", err)
	}
	m := &Metrics{PixelAUROC: all.PixelAUROC}
	if a.gt.Layout == datasets.MVTecADMasks {
		m.AUPRO = &all.AUPRO
	}
	sums := map[string]float64{}
	nSPRO := 0
	for _, c := range a.classes {
		cm, ok, err := a.classResult(c)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		m.PerClass = append(m.PerClass, cm)
		if cm.AUSPRO != nil {
			nSPRO++
			for k, v := range cm.AUSPRO {
				sums[k] += v
			}
		}
	}
	if nSPRO > 0 {
		m.AUSPRO = map[string]float64{}
		for k, v := range sums {
			m.AUSPRO[k] = v / float64(nSPRO)
		}
	}
	return m, nil
}

// classResult returns the metrics of one anomaly class, and false when its
// masks mark no pixel.
func (a *Accumulator) classResult(c string) (ClassMetrics, bool, error) {
	r, err := a.pixel[c].Result()
	if errors.Is(err, metrics.ErrNoAnomalousPixel) {
		return ClassMetrics{}, false, nil
	}
	if err != nil {
		return ClassMetrics{}, false, fmt.Errorf("localisation of class %s: %w", c, err)
	}
	cm := ClassMetrics{Class: c, PixelAUROC: r.PixelAUROC}
	if a.gt.Layout == datasets.MVTecADMasks {
		cm.AUPRO = &r.AUPRO
	}
	if a.spro != nil {
		s, err := a.spro[c].Result()
		if err != nil {
			return ClassMetrics{}, false, fmt.Errorf("localisation of class %s: %w", c, err)
		}
		cm.AUSPRO = sproMap(s)
	}
	return cm, true, nil
}

// sproMap picks the reported limits out of an SPRO result.
func sproMap(s metrics.SPROResult) map[string]float64 {
	out := map[string]float64{}
	for _, area := range s.AUSPRO {
		for _, l := range SPROLimits {
			if area.Limit == l {
				out[pyfmt.Float(l)] = area.AUSPRO
			}
		}
	}
	return out
}
