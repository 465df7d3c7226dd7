package evaluate

import (
	"fmt"

	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// Extractor names the network whose pooled output is PUAD's feature vector.
type Extractor string

// The two feature extractors of PUAD.
const (
	// StudentExtractor pools the student's first 384 output channels.
	StudentExtractor Extractor = "student"
	// TeacherExtractor pools the teacher's output after normalising it with mu/sigma.
	TeacherExtractor Extractor = "teacher"
)

// ParseExtractor reads "student" or "teacher".
func ParseExtractor(s string) (Extractor, error) {
	switch Extractor(s) {
	case StudentExtractor, TeacherExtractor:
		return Extractor(s), nil
	}
	return "", fmt.Errorf("feature extractor %q: want student or teacher", s)
}

// Need says which outputs an image's role requires, so that only the
// networks it needs are run: a training image feeds only the PUAD feature
// fit (with the student extractor that is the student alone), while
// validation and test images need the EfficientAD score too.
type Need struct {
	Score   bool // EfficientAD score (all three networks)
	Feature bool // PUAD feature vector
	Map     bool // keep the anomaly map (for heatmaps)
}

// ImageOutput is what one forward pass gives for one image.
type ImageOutput struct {
	Score   float64   // max of the anomaly map (a float32 value)
	Feature []float32 // [384] spatial mean of the extractor's output
	Map     []float32 // [ImgSize*ImgSize] anomaly map, when asked for
}

// Scorer runs an EfficientAD model as the reference's EfficientADInference
// does, once per image, and gives the score (the maximum of the anomaly
// map), the PUAD feature vector and optionally the map. The networks run on
// whole batches; the per-image steps after them run on each image alone
// with the reference's own shapes, so results do not depend on the batch
// size.
type Scorer struct {
	Model     *models.EfficientAD
	Extractor Extractor
}

// Run scores a batch x [B, 3, S, S] (on the model's device).
func (sc *Scorer) Run(x *tb.Tensor, need Need) ([]ImageOutput, error) {
	var outs []ImageOutput
	err := tb.InferenceMode(func() error {
		var err error
		outs, err = sc.run(x, need)
		return err
	})
	return outs, err
}

func (sc *Scorer) run(x *tb.Tensor, need Need) ([]ImageOutput, error) {
	m := sc.Model
	s := tb.NewScope()
	defer s.Close()
	shape := x.Shape()
	if len(shape) != 4 || shape[1] != 3 {
		return nil, fmt.Errorf("score: want a batch [B,3,H,W], got %v", shape)
	}
	batch := shape[0]
	needTeacher := need.Score || need.Map || (need.Feature && sc.Extractor == TeacherExtractor)
	needStudent := need.Score || need.Map || (need.Feature && sc.Extractor == StudentExtractor)
	needAE := need.Score || need.Map

	var teacherNorm, studentST, studentAE, ae *tb.Tensor
	if needTeacher {
		t := s.T(m.Teacher.Forward(x))
		mu := s.T(tb.View(m.Mu, -1, 1, 1))
		sigma := s.T(tb.View(m.Sigma, -1, 1, 1))
		// torchvision's Normalize: subtract, then divide.
		teacherNorm = s.T(tb.Div(s.T(tb.Sub(t, mu)), sigma))
	}
	if needStudent {
		st := s.T(m.Student.Forward(x))
		studentST = s.T(tb.Narrow(st, 1, 0, models.TeacherChannels))
		studentAE = s.T(tb.Narrow(st, 1, models.TeacherChannels, models.TeacherChannels))
	}
	if needAE {
		ae = s.T(m.AutoEncoder.Forward(x))
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("score: %w", err)
	}
	outs := make([]ImageOutput, batch)
	for i := int64(0); i < batch; i++ {
		one := func(t *tb.Tensor) *tb.Tensor { return s.T(tb.Narrow(t, 0, i, 1)) }
		if need.Feature {
			src := studentST
			if sc.Extractor == TeacherExtractor {
				src = teacherNorm
			}
			f := s.T(tb.Mean(one(src), []int64{0, 2, 3}, false))
			if s.Err() == nil {
				v, err := tb.Values[float32](f)
				if err != nil {
					return nil, fmt.Errorf("score: feature: %w", err)
				}
				outs[i].Feature = v
			}
		}
		if need.Score || need.Map {
			amap := sc.anomalyMap(s, one(teacherNorm), one(studentST), one(studentAE), one(ae))
			if need.Score {
				mx := s.T(tb.Max(amap, nil, false))
				if s.Err() == nil {
					v, err := mx.Item()
					if err != nil {
						return nil, fmt.Errorf("score: %w", err)
					}
					outs[i].Score = v
				}
			}
			if need.Map && s.Err() == nil {
				v, err := amap.Float32s()
				if err != nil {
					return nil, fmt.Errorf("score: map: %w", err)
				}
				outs[i].Map = v
			}
		}
		if err := s.Err(); err != nil {
			return nil, fmt.Errorf("score: %w", err)
		}
	}
	return outs, nil
}

// anomalyMap computes the reference's map for one image (tensors [1,C,h,w]):
// 0.5·norm_st(up(mean_c (t̂ − s_st)²)) + 0.5·norm_ae(up(mean_c (ae − s_ae)²)),
// norm(m) = 0.1·(m − q_a)/(q_b − q_a), as a [S,S] tensor.
func (sc *Scorer) anomalyMap(s *tb.Scope, tNorm, sST, sAE, ae *tb.Tensor) *tb.Tensor {
	m := sc.Model
	size := m.ImgSize
	q := m.Quantiles
	part := func(a, b *tb.Tensor, qa, qb string) *tb.Tensor {
		d := s.T(tb.PowScalar(s.T(tb.Sub(a, b)), 2))
		mp := s.T(tb.Mean(d, []int64{1}, true))
		mp = s.T(tb.UpsampleBilinear(mp, size, size, false))
		mp = s.T(tb.Squeeze(mp, nil))
		mp = s.T(tb.MulScalar(s.T(tb.Sub(mp, q[qa])), 0.1))
		return s.T(tb.Div(mp, s.T(tb.Sub(q[qb], q[qa]))))
	}
	st := part(tNorm, sST, "q_a_student", "q_b_student")
	aemap := part(ae, sAE, "q_a_autoencoder", "q_b_autoencoder")
	return s.T(tb.Add(s.T(tb.MulScalar(st, 0.5)), s.T(tb.MulScalar(aemap, 0.5))))
}
