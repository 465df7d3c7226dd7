package training

import (
	"fmt"
	"io"
	"math"

	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// Dynamic loss scaling for float16 training, with the rule and the
// defaults of PyTorch's torch.cuda.amp.GradScaler: the loss is multiplied by
// the scale before the backward pass, so that small gradients survive
// float16's narrow range; the gradients are divided by it again before the
// optimiser (multiplied by the float32 reciprocal of the scale, which is a
// power of two, so exactly); a step whose gradients are not all finite is
// skipped and the scale halved; after lossScaleInterval finite steps in a
// row the scale doubles.
const (
	lossScaleInit    = 65536 // 2^16
	lossScaleGrowth  = 2
	lossScaleBackoff = 0.5
	// lossScaleKey names the scaler's state in checkpoints: a float64
	// vector [scale, finite steps in a row].
	lossScaleKey = "loss_scale"
)

// lossScaleInterval is how many finite steps in a row double the scale
// (tests shorten it).
var lossScaleInterval = 2000

// lossScaler is the dynamic loss scale of one run.
type lossScaler struct {
	scale    float32 // GradScaler keeps its scale in a float32 tensor
	tracker  int     // finite steps in a row since the scale last changed
	interval int
	// state mirrors scale and tracker on the run's device, for checkpoints
	// and for the ranks of a group to agree on at the start.
	state *tb.Tensor
	log   io.Writer
}

// newLossScaler returns the scaler of a run in precision p on dev: one for
// float16, and for tests that ask with initScale > 0 in any precision; nil
// when the run does not scale its loss.
func newLossScaler(p models.Precision, initScale float32, dev tb.Device, log io.Writer) (*lossScaler, error) {
	if initScale == 0 {
		if p != models.FP16 {
			return nil, nil
		}
		initScale = lossScaleInit
	}
	s := &lossScaler{scale: initScale, interval: lossScaleInterval, log: log}
	t, err := tb.FromSlice([]float64{float64(s.scale), 0}, 2)
	if err == nil && dev != tb.CPU {
		defer t.Close()
		t, err = t.ToDevice(dev)
	}
	if err != nil {
		return nil, fmt.Errorf("loss scale: %w", err)
	}
	s.state = t
	return s, nil
}

// Close frees the state.
func (s *lossScaler) Close() {
	if s != nil {
		s.state.Close()
		s.state = nil
	}
}

// restore takes the scale and the count of finite steps from a state
// vector (a checkpoint's, or rank 0's).
func (s *lossScaler) restore(t *tb.Tensor) error {
	v, err := t.Float64s()
	if err != nil {
		return fmt.Errorf("loss scale: %w", err)
	}
	if len(v) != 2 || !(v[0] > 0) || math.IsInf(v[0], 0) || v[1] < 0 || v[1] != math.Trunc(v[1]) {
		return fmt.Errorf("loss scale: state %v: want [positive scale, count of steps]", v)
	}
	s.scale, s.tracker = float32(v[0]), int(v[1])
	return s.mirror()
}

// mirror writes scale and tracker into the state tensor.
func (s *lossScaler) mirror() error {
	t, err := tb.FromSlice([]float64{float64(s.scale), float64(s.tracker)}, 2)
	if err != nil {
		return fmt.Errorf("loss scale: %w", err)
	}
	defer t.Close()
	if err := tb.CopyInto(s.state, t); err != nil {
		return fmt.Errorf("loss scale: %w", err)
	}
	return nil
}

// scaled returns loss × scale (a new tensor).
func (s *lossScaler) scaled(loss *tb.Tensor) (*tb.Tensor, error) {
	return tb.MulScalar(loss, float64(s.scale))
}

// unscale divides the gradients of params by the scale in place and
// reports whether all of them are finite (checked before dividing, as
// GradScaler does).
func (s *lossScaler) unscale(params []*tb.Tensor) (finite bool, err error) {
	inv := float64(float32(1 / float64(s.scale)))
	finite = true
	for i, p := range params {
		err := func() error {
			sc := tb.NewScope()
			defer sc.Close()
			g := sc.T(p.Grad())
			if err := sc.Err(); err != nil || g == nil {
				return err
			}
			// 0·x is NaN exactly where x is infinite or NaN.
			bad := sc.T(tb.Sum(sc.T(tb.MulScalar(g, 0)), nil, false))
			u := sc.T(tb.MulScalar(g, inv))
			if err := sc.Err(); err != nil {
				return err
			}
			v, err := bad.Item()
			if err != nil {
				return err
			}
			if math.IsNaN(v) {
				finite = false
			}
			return tb.CopyInto(g, u)
		}()
		if err != nil {
			return false, fmt.Errorf("loss scale: gradient %d: %w", i, err)
		}
	}
	return finite, nil
}

// update moves the scale after a step whose gradients were finite or not,
// as GradScaler.update does, and says so on the log when the step was
// skipped.
func (s *lossScaler) update(finite bool) error {
	if !finite {
		old := s.scale
		s.scale *= lossScaleBackoff
		s.tracker = 0
		fmt.Fprintf(s.log, "gradients not finite at loss scale %g: step skipped, scale now %g\n", old, s.scale)
	} else if s.tracker++; s.tracker == s.interval {
		s.scale *= lossScaleGrowth
		s.tracker = 0
	}
	return s.mirror()
}

// step unscales the gradients of opt's parameters, runs opt's step when
// they are all finite, and updates the scale; it reports whether the step
// ran. A nil scaler just runs the step.
func (s *lossScaler) step(opt *tb.Adam) (bool, error) {
	if s == nil {
		return true, opt.Step()
	}
	finite, err := s.unscale(opt.Params)
	if err != nil {
		return false, err
	}
	if finite {
		if err := opt.Step(); err != nil {
			return false, err
		}
	}
	return finite, s.update(finite)
}

// runLossScaler returns the loss scaler of run r in precision p (nil when
// the run does not scale its loss), resumed from r's checkpoint when it has
// one, and stored in r's checkpoints from now on. The caller closes it.
func runLossScaler(r *run, p models.Precision, initScale float32, dev tb.Device, log io.Writer) (*lossScaler, error) {
	s, err := newLossScaler(p, initScale, dev, log)
	if err != nil || s == nil {
		return nil, err
	}
	if t := r.take(lossScaleKey); t != nil {
		err := s.restore(t)
		t.Close()
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("checkpoint %s: %w", r.ckptPath, err)
		}
	}
	if r.extra == nil {
		r.extra = map[string]*tb.Tensor{}
	}
	r.extra[lossScaleKey] = s.state
	return s, nil
}
