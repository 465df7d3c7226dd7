package models

import (
	"fmt"

	tb "github.com/puad-go/puad/torchbind"
)

// NormalizeChannels returns (x − mean) / std per channel of x [B, C, H, W],
// with mean and std of shape [C]: torchvision's Normalize (subtract, then
// divide). It is the one normalisation of network outputs, for the teacher
// (NormalizeTeacher) and for the extractor's features in distillation.
func NormalizeChannels(x, mean, std *tb.Tensor) (*tb.Tensor, error) {
	s := tb.NewScope()
	defer s.Close()
	m := s.T(tb.View(mean, -1, 1, 1))
	sd := s.T(tb.View(std, -1, 1, 1))
	out := s.T(tb.Div(s.T(tb.Sub(x, m)), sd))
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("normalize: %w", err)
	}
	return s.Keep(out), nil
}

// NormalizeTeacher normalises a teacher output [B, 384, h, w] with the
// category's statistics Mu and Sigma.
func (m *EfficientAD) NormalizeTeacher(t *tb.Tensor) (*tb.Tensor, error) {
	return NormalizeChannels(t, m.Mu, m.Sigma)
}

// Maps returns the two anomaly maps of one image before their quantile
// normalisation, each [1, 1, ImgSize, ImgSize]: the channel mean of
// (t̂ − s_st)² and of (ae − s_ae)², upsampled bilinearly (align_corners
// false). tNorm is the normalised teacher output, sST and sAE the student's
// first and second 384 channels and ae the autoencoder's output, each
// [1, 384, h, w]. Training takes the quantiles of these maps; AnomalyMap
// combines them.
func (m *EfficientAD) Maps(tNorm, sST, sAE, ae *tb.Tensor) (st, aeMap *tb.Tensor, err error) {
	s := tb.NewScope()
	defer s.Close()
	raw := func(a, b *tb.Tensor) *tb.Tensor {
		d := s.T(tb.PowScalar(s.T(tb.Sub(a, b)), 2))
		mp := s.T(tb.Mean(d, []int64{1}, true))
		return s.T(tb.UpsampleBilinear(mp, m.ImgSize, m.ImgSize, false))
	}
	st = raw(tNorm, sST)
	aeMap = raw(ae, sAE)
	if err := s.Err(); err != nil {
		return nil, nil, fmt.Errorf("anomaly maps: %w", err)
	}
	return s.Keep(st), s.Keep(aeMap), nil
}

// AnomalyMap is the reference's anomaly map [ImgSize, ImgSize] of one
// image from its two maps (as Maps returns them):
// 0.5·norm_st(st) + 0.5·norm_ae(ae), with norm(x) = 0.1·(x − q_a)/(q_b − q_a)
// and the model's Quantiles.
func (m *EfficientAD) AnomalyMap(st, ae *tb.Tensor) (*tb.Tensor, error) {
	s := tb.NewScope()
	defer s.Close()
	q := m.Quantiles
	norm := func(mp *tb.Tensor, qa, qb string) *tb.Tensor {
		mp = s.T(tb.Squeeze(mp, nil))
		mp = s.T(tb.MulScalar(s.T(tb.Sub(mp, q[qa])), 0.1))
		return s.T(tb.Div(mp, s.T(tb.Sub(q[qb], q[qa]))))
	}
	a := norm(st, QuantileStudentA, QuantileStudentB)
	b := norm(ae, QuantileAutoEncoderA, QuantileAutoEncoderB)
	out := s.T(tb.Add(s.T(tb.MulScalar(a, 0.5)), s.T(tb.MulScalar(b, 0.5))))
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("anomaly map: %w", err)
	}
	return s.Keep(out), nil
}
