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

	// The networks run in the model's precision; their outputs come back
	// in float32, and everything after them is float32.
	p := m.Precision
	in := s.T(p.Input(x))
	var teacherNorm, studentST, studentAE, ae *tb.Tensor
	if needTeacher {
		teacherNorm = s.T(m.NormalizeTeacher(s.T(p.Forward(m.Teacher, in))))
	}
	if needStudent {
		st := s.T(p.Forward(m.Student, in))
		studentST = s.T(tb.Narrow(st, 1, 0, models.TeacherChannels))
		studentAE = s.T(tb.Narrow(st, 1, models.TeacherChannels, models.TeacherChannels))
	}
	if needAE {
		ae = s.T(p.Forward(m.AutoEncoder, in))
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
			stMap, aeMap, err := m.Maps(one(teacherNorm), one(studentST), one(studentAE), one(ae))
			s.Own(stMap)
			s.Own(aeMap)
			s.Fail(err)
			amap := s.T(m.AnomalyMap(stMap, aeMap))
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
