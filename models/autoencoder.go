package models

import (
	"fmt"

	tb "github.com/puad-go/puad/torchbind"
)

// AutoEncoder is EfficientAD's autoencoder with the reference's layers:
// encoder.enconv1–5 (k4 s2 p1, each followed by relu) and enconv6 (k8, no
// relu); decoder.deconv1–6 (k4 p2), each after a bilinear resize and followed
// by relu and dropout(0.2), then a resize to ImgSize/4−8 (ImgSize/4 with
// Padding), deconv7 (k3 p1) relu, deconv8 (k3 p1) to OutChannels.
type AutoEncoder struct {
	OutChannels int64
	ImgSize     int64
	Padding     bool
	Enc         [6]*Conv2d
	Dec         [8]*Conv2d
	// DropoutP is the decoder's dropout probability (0.2).
	DropoutP float64
	// Training turns dropout on; Gen, if set, draws its masks.
	Training bool
	Gen      *tb.Generator
}

// NewAutoEncoder describes the autoencoder for square images of imgSize.
func NewAutoEncoder(outChannels, imgSize int64, padding bool) *AutoEncoder {
	a := &AutoEncoder{OutChannels: outChannels, ImgSize: imgSize, Padding: padding, DropoutP: 0.2}
	a.Enc[0] = NewConv2d(3, 32, 4, 2, 1)
	a.Enc[1] = NewConv2d(32, 32, 4, 2, 1)
	a.Enc[2] = NewConv2d(32, 64, 4, 2, 1)
	a.Enc[3] = NewConv2d(64, 64, 4, 2, 1)
	a.Enc[4] = NewConv2d(64, 64, 4, 2, 1)
	a.Enc[5] = NewConv2d(64, 64, EncoderLastKernel(imgSize), 1, 0)
	for i := 0; i < 6; i++ {
		a.Dec[i] = NewConv2d(64, 64, 4, 1, 2)
	}
	a.Dec[6] = NewConv2d(64, 64, 3, 1, 1)
	a.Dec[7] = NewConv2d(64, outChannels, 3, 1, 1)
	return a
}

// EncoderLastKernel is the kernel of enconv6: 8, as in the reference, for
// images of 256 pixels and more; for smaller images (quick experiments and
// the demo) it shrinks to imgSize/32 so that the encoder still ends in a 1×1
// code. The reference's architecture, and its weights, are for 256.
func EncoderLastKernel(imgSize int64) int64 {
	if imgSize >= 256 {
		return 8
	}
	return imgSize / 32
}

// NamedParams lists encoder.enconvN and decoder.deconvN weights and biases.
func (a *AutoEncoder) NamedParams() []Param {
	var ps []Param
	for i, c := range a.Enc {
		ps = append(ps, c.params(fmt.Sprintf("encoder.enconv%d", i+1))...)
	}
	for i, c := range a.Dec {
		ps = append(ps, c.params(fmt.Sprintf("decoder.deconv%d", i+1))...)
	}
	return ps
}

// decoderSizes are the sizes the decoder resizes to before each of its
// convolutions deconv1..deconv7 (integer division, as the reference).
func (a *AutoEncoder) decoderSizes() [7]int64 {
	s := a.ImgSize
	last := s/4 - 8
	if a.Padding {
		last = s / 4
	}
	return [7]int64{s/64 - 1, s / 32, s/16 - 1, s / 8, s/4 - 1, s/2 - 1, last}
}

// Forward runs the autoencoder on a batch [B, 3, ImgSize, ImgSize].
func (a *AutoEncoder) Forward(x *tb.Tensor) (*tb.Tensor, error) {
	s := tb.NewScope()
	defer s.Close()
	h := x
	for i, c := range a.Enc {
		h = s.T(c.Forward(h))
		if i < 5 {
			h = s.T(tb.Relu(h))
		}
	}
	sizes := a.decoderSizes()
	for i := 0; i < 6; i++ {
		h = s.T(tb.UpsampleBilinear(h, sizes[i], sizes[i], false))
		h = s.T(a.Dec[i].Forward(h))
		h = s.T(tb.Relu(h))
		if a.Training {
			h = s.T(tb.Dropout(h, a.DropoutP, true, a.Gen))
		}
	}
	h = s.T(tb.UpsampleBilinear(h, sizes[6], sizes[6], false))
	h = s.T(a.Dec[6].Forward(h))
	h = s.T(tb.Relu(h))
	h = s.T(a.Dec[7].Forward(h))
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("autoencoder forward: %w", err)
	}
	return s.Keep(h), nil
}
