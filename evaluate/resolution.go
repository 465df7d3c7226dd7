package evaluate

import (
	"fmt"
	"math"

	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/models"
)

// ResolutionFactor is how many unit roundoffs of the networks' precision
// the EfficientAD scores of the validation images must spread, relative to
// their mean, for CheckResolution to pass. In bfloat16 (unit roundoff
// 2^-8) that is 1.6%: trained models spread far more (0.56 on the demo's
// data after 100 iterations), while models whose scores bfloat16 reorders
// (random weights on near-identical images: 0.12% and 0.21%) fall below.
const ResolutionFactor = 4

// ResolutionError says that EfficientAD's scores of the validation images
// lie closer together than the networks' precision resolves, so that the
// precision's rounding may reorder scores and, through the fusion that
// divides by their spread, PUAD's scores too.
type ResolutionError struct {
	Precision models.Precision
	// Spread is the standard deviation of the validation scores relative to
	// their mean, Limit the least spread the precision resolves.
	Spread, Limit float64
}

func (e *ResolutionError) Error() string {
	msg := fmt.Sprintf("EfficientAD's validation scores spread only %.2g of their mean, less than %s resolves (%.2g): its rounding may reorder near-equal scores",
		e.Spread, e.Precision, e.Limit)
	if e.Precision != models.FP32 && e.Precision != "" {
		msg += "; --precision fp32 keeps their order"
	}
	return msg
}

// CheckResolution returns a *ResolutionError when the EfficientAD scores
// that f was fitted on spread less than ResolutionFactor unit roundoffs of
// p relative to their mean, else nil. A command can warn with it.
func CheckResolution(f stats.Fusion, p models.Precision) error {
	spread := f.EfficientAD.Std / math.Abs(f.EfficientAD.Mean)
	limit := ResolutionFactor * p.UnitRoundoff()
	if spread < limit {
		return &ResolutionError{Precision: p, Spread: spread, Limit: limit}
	}
	return nil
}
