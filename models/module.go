// Package models holds the networks of EfficientAD and PUAD — the patch
// description networks PDN_S and PDN_M, the autoencoder, and the
// WideResNet101-2 feature extractor used to distil the teacher — as Go
// structs whose fields are the reference's layers. A parameter's path is its
// state-dict key (e.g. "encoder.enconv1.weight"), so loading a PyTorch
// state dict is a walk over named parameters.
//
// The package also owns what every user of a trained model shares:
//
//   - the one EfficientAD anomaly map (anomalymap.go): the teacher output
//     normalised with mu/sigma (NormalizeTeacher), the student/teacher and
//     student/autoencoder maps upsampled to the image size (Maps), and their
//     quantile-normalised combination (AnomalyMap). Scoring, heatmaps and
//     the validation quantiles of training all call these, so they cannot
//     drift apart;
//   - the reference's model directory (Layout) and its file names
//     (files.go), with LoadEfficientAD reading a category's model from it;
//   - typed errors for weights that do not fit (ShapeError), which the
//     command line turns into advice about flags.
//
// Loading refuses what would score silently wrong: NaN or infinite values
// (ErrNonFinite), quantiles that cannot normalise a map, and a category
// folder whose files are not the set its manifest lists (ErrMixedModel).
package models

import (
	"fmt"
	"math"
	"slices"
	"strings"

	tb "github.com/puad-go/puad/torchbind"
)

// Param is one named tensor of a module: a learnable parameter or a buffer
// (e.g. batch-norm running statistics).
type Param struct {
	Name   string
	Shape  []int64
	Tensor **tb.Tensor // where the module keeps it
	Buffer bool        // not learnable
}

// Module is anything with named parameters.
type Module interface {
	NamedParams() []Param
}

// Parameters returns the learnable tensors of m in state-dict order.
func Parameters(m Module) []*tb.Tensor {
	var ps []*tb.Tensor
	for _, p := range m.NamedParams() {
		if !p.Buffer {
			ps = append(ps, *p.Tensor)
		}
	}
	return ps
}

// Close frees every tensor of m.
func Close(m Module) {
	for _, p := range m.NamedParams() {
		(*p.Tensor).Close()
		*p.Tensor = nil
	}
}

// LoadStateDict copies the tensors of sd into m, checking that every key is
// present with the expected shape and that sd has no extra keys (as
// load_state_dict(strict=True)). The tensors are moved to dev and converted to float32
// (integer buffers keep their dtype). The state dict keeps ownership of its own tensors.
// A tensor of another shape is a *ShapeError.
func LoadStateDict(m Module, sd *tb.StateDict, dev tb.Device, source string) error {
	params := m.NamedParams()
	want := make(map[string]bool, len(params))
	for _, p := range params {
		want[p.Name] = true
	}
	var extra []string
	for _, k := range sd.Keys {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("%s: unexpected keys %s (wrong network or size?)", source, strings.Join(extra, ", "))
	}
	for _, p := range params {
		src, ok := sd.Tensors[p.Name]
		if !ok {
			return fmt.Errorf("%s: missing key %q (wrong network or size?)", source, p.Name)
		}
		info, err := src.Info()
		if err != nil {
			return fmt.Errorf("%s: key %q: %w", source, p.Name, err)
		}
		if !slices.Equal(info.Shape, p.Shape) {
			return &ShapeError{File: source, Key: p.Name, Want: p.Shape, Got: info.Shape}
		}
		if err := checkFinite(src, source, p.Name); err != nil {
			return err
		}
		dt := tb.Float32
		if info.DType == tb.Int64 {
			dt = tb.Int64
		}
		t, err := src.To(dev, dt)
		if err != nil {
			return fmt.Errorf("%s: key %q: %w", source, p.Name, err)
		}
		// A fresh copy, so the module never shares storage with the state dict.
		c, err := tb.Clone(t)
		t.Close()
		if err != nil {
			return fmt.Errorf("%s: key %q: %w", source, p.Name, err)
		}
		(*p.Tensor).Close()
		*p.Tensor = c
	}
	return nil
}

// StateDict returns copies of m's tensors under their keys, on the CPU.
func StateDict(m Module) (*tb.StateDict, error) {
	sd := tb.NewStateDict()
	for _, p := range m.NamedParams() {
		d, err := tb.Detach(*p.Tensor)
		if err != nil {
			sd.Close()
			return nil, fmt.Errorf("state dict %s: %w", p.Name, err)
		}
		c, err := d.To(tb.CPU, dtypeOr(d))
		d.Close()
		if err == nil {
			var cc *tb.Tensor
			cc, err = tb.Clone(c)
			c.Close()
			c = cc
		}
		if err != nil {
			sd.Close()
			return nil, fmt.Errorf("state dict %s: %w", p.Name, err)
		}
		sd.Set(p.Name, c)
	}
	return sd, nil
}

func dtypeOr(t *tb.Tensor) tb.DType {
	info, err := t.Info()
	if err != nil {
		return tb.Float32
	}
	return info.DType
}

// SetRequiresGrad marks every learnable parameter of m.
func SetRequiresGrad(m Module, b bool) error {
	for _, p := range m.NamedParams() {
		if p.Buffer {
			continue
		}
		if err := (*p.Tensor).SetRequiresGrad(b); err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	return nil
}

// To moves every tensor of m to dev.
func To(m Module, dev tb.Device) error {
	for _, p := range m.NamedParams() {
		t, err := (*p.Tensor).ToDevice(dev)
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		(*p.Tensor).Close()
		*p.Tensor = t
	}
	return nil
}

// InitDefault initialises every parameter of m as PyTorch's Conv2d does by
// default (kaiming_uniform with a=√5 for weights: U(−1/√fan_in, 1/√fan_in),
// and the same bound for biases), drawing from g. Buffers are left alone.
// The distribution matches PyTorch's; the random stream does not.
func InitDefault(m Module, g *tb.Generator, dev tb.Device) error {
	var fanIn int64
	for _, p := range m.NamedParams() {
		if p.Buffer {
			continue
		}
		if len(p.Shape) > 1 {
			fanIn = 1
			for _, s := range p.Shape[1:] {
				fanIn *= s
			}
		}
		if fanIn == 0 {
			return fmt.Errorf("init %s: no fan-in known", p.Name)
		}
		bound := 1 / math.Sqrt(float64(fanIn))
		s := tb.NewScope()
		u := s.T(tb.Rand(g, p.Shape, tb.Float32, dev))
		u = s.T(tb.MulScalar(u, 2*bound))
		u = s.T(tb.SubScalar(u, bound))
		if err := s.Err(); err != nil {
			s.Close()
			return fmt.Errorf("init %s: %w", p.Name, err)
		}
		(*p.Tensor).Close()
		*p.Tensor = s.Keep(u)
		s.Close()
	}
	return nil
}
