package torchbind

/*
#include "torchbind.h"
*/
import "C"

import "fmt"

// Adam is torch.optim.Adam with PyTorch 1.13's semantics (single-tensor
// implementation, amsgrad off): weight decay is L2 added to the gradient, not
// decoupled (AdamW). LR may be changed between steps.
type Adam struct {
	Params      []*Tensor
	LR          float64
	Beta1       float64
	Beta2       float64
	Eps         float64
	WeightDecay float64

	steps  []int64
	expAvg []*Tensor
	expSq  []*Tensor
}

// NewAdam returns an optimiser over params with betas (0.9, 0.999) and eps 1e-8.
// The optimiser does not own the parameters.
func NewAdam(params []*Tensor, lr, weightDecay float64) *Adam {
	return &Adam{
		Params: params, LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay,
		steps: make([]int64, len(params)), expAvg: make([]*Tensor, len(params)), expSq: make([]*Tensor, len(params)),
	}
}

// ZeroGrad zeroes every parameter's gradient.
func (o *Adam) ZeroGrad() error {
	for _, p := range o.Params {
		if err := p.ZeroGrad(); err != nil {
			return err
		}
	}
	return nil
}

// Step updates every parameter that has a gradient.
func (o *Adam) Step() error {
	for i, p := range o.Params {
		g, err := p.Grad()
		if err != nil {
			return err
		}
		if g == nil {
			continue
		}
		g.Close()
		if o.expAvg[i] == nil {
			info, err := p.Info()
			if err != nil {
				return err
			}
			if o.expAvg[i], err = Zeros(info.Shape, info.DType, info.Device); err != nil {
				return err
			}
			if o.expSq[i], err = Zeros(info.Shape, info.DType, info.Device); err != nil {
				return err
			}
		}
		o.steps[i]++
		var c call
		msg := C.tb_adam_step(c.arg(p), c.arg(o.expAvg[i]), c.arg(o.expSq[i]), C.int64_t(o.steps[i]), C.double(o.LR),
			C.double(o.Beta1), C.double(o.Beta2), C.double(o.Eps), C.double(o.WeightDecay))
		if err := c.err("adam_step", msg); err != nil {
			return fmt.Errorf("parameter %d: %w", i, err)
		}
	}
	return nil
}

// AdamState is the optimiser state of one parameter, as in PyTorch's
// optimizer.state_dict(): step, exp_avg and exp_avg_sq (nil before the first step).
type AdamState struct {
	Step     int64
	ExpAvg   *Tensor
	ExpAvgSq *Tensor
}

// State returns the per-parameter state. The tensors still belong to the optimiser.
func (o *Adam) State() []AdamState {
	st := make([]AdamState, len(o.Params))
	for i := range st {
		st[i] = AdamState{Step: o.steps[i], ExpAvg: o.expAvg[i], ExpAvgSq: o.expSq[i]}
	}
	return st
}

// SetState replaces the state; the optimiser takes ownership of the tensors.
// Tensors of the old state that st does not reuse are freed.
func (o *Adam) SetState(st []AdamState) error {
	if len(st) != len(o.Params) {
		return fmt.Errorf("adam state: %d entries for %d parameters", len(st), len(o.Params))
	}
	keep := map[*Tensor]bool{}
	for _, s := range st {
		keep[s.ExpAvg], keep[s.ExpAvgSq] = true, true
	}
	for i := range o.expAvg {
		for _, t := range []*Tensor{o.expAvg[i], o.expSq[i]} {
			if !keep[t] {
				t.Close()
			}
		}
	}
	for i, s := range st {
		o.steps[i], o.expAvg[i], o.expSq[i] = s.Step, s.ExpAvg, s.ExpAvgSq
	}
	return nil
}

// Close frees the optimiser's state tensors (not the parameters).
func (o *Adam) Close() {
	for i := range o.expAvg {
		o.expAvg[i].Close()
		o.expSq[i].Close()
		o.expAvg[i], o.expSq[i] = nil, nil
	}
}
