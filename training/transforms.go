package training

import (
	"fmt"
	"math"

	"github.com/puad-go/puad/datasets"
	tb "github.com/puad-go/puad/torchbind"
)

// Grayscale converts img as torchvision's rgb_to_grayscale(img, 3) does on a
// PIL image: Pillow's convert("L") (ITU-R 601-2 luma in 16-bit fixed point,
// L = (19595·R + 38470·G + 7471·B + 2^15) >> 16) copied into the three
// channels.
func Grayscale(img datasets.RGB) datasets.RGB {
	out := datasets.RGB{W: img.W, H: img.H, Pix: make([]uint8, len(img.Pix))}
	for i := 0; i+2 < len(img.Pix); i += 3 {
		p := img.Pix[i : i+3 : i+3]
		l := uint8((uint32(p[0])*19595 + uint32(p[1])*38470 + uint32(p[2])*7471 + 0x8000) >> 16)
		out.Pix[i], out.Pix[i+1], out.Pix[i+2] = l, l, l
	}
	return out
}

// CenterCrop is torchvision 0.14's center_crop(img, (h, w)) on a PIL image:
// an image smaller than the crop is first padded with black ((crop −
// size) // 2 before, the rest after), then the window starts at
// round((size − crop) / 2) with Python's rounding (half to even).
func CenterCrop(img datasets.RGB, h, w int) datasets.RGB {
	if w > img.W || h > img.H {
		padL, padT, padR, padB := 0, 0, 0, 0
		if w > img.W {
			padL, padR = (w-img.W)/2, (w-img.W+1)/2
		}
		if h > img.H {
			padT, padB = (h-img.H)/2, (h-img.H+1)/2
		}
		p := datasets.NewRGB(img.W+padL+padR, img.H+padT+padB)
		for y := 0; y < img.H; y++ {
			copy(p.Pix[3*((y+padT)*p.W+padL):], img.Pix[3*y*img.W:3*(y+1)*img.W])
		}
		img = p
		if img.W == w && img.H == h {
			return img
		}
	}
	top := int(math.RoundToEven(float64(img.H-h) / 2))
	left := int(math.RoundToEven(float64(img.W-w) / 2))
	out := datasets.NewRGB(w, h)
	for y := 0; y < h; y++ {
		src := img.Pix[3*((y+top)*img.W+left) : 3*((y+top)*img.W+left+w)]
		copy(out.Pix[3*y*w:], src)
	}
	return out
}

// AugmentKind is the photometric change RandomAugment picks.
type AugmentKind int

// The three kinds, numbered as the reference's RandomAugment draws them
// (torch.randint(1, 4)).
const (
	Brightness AugmentKind = 1
	Contrast   AugmentKind = 2
	Saturation AugmentKind = 3
)

func (k AugmentKind) String() string {
	switch k {
	case Brightness:
		return "brightness"
	case Contrast:
		return "contrast"
	case Saturation:
		return "saturation"
	}
	return fmt.Sprintf("AugmentKind(%d)", int(k))
}

// Augment is one draw of the reference's RandomAugment: a kind and a factor
// in [0.8, 1.2).
type Augment struct {
	Kind   AugmentKind
	Factor float32
}

// AugmentFactor maps a uniform draw u in [0, 1) (float32) to the factor as
// the reference computes it: torch.rand(1) * 0.4 + 0.8 in float32.
func AugmentFactor(u float32) float32 {
	p := float32(u * float32(0.4)) // the conversion keeps the product rounded (no fused multiply-add)
	return p + float32(0.8)
}

// Apply applies the augmentation to a [3, H, W] float32 tensor with values
// in [0, 1], as torchvision 0.14's tensor functions adjust_brightness,
// adjust_contrast and adjust_saturation do: each blends the image with
// another (black; the mean of its grayscale; its grayscale, with the
// weights 0.2989, 0.587, 0.114) as ratio·img + (1 − ratio)·other, clamped to
// [0, 1].
func (a Augment) Apply(img *tb.Tensor) (*tb.Tensor, error) {
	s := tb.NewScope()
	defer s.Close()
	info, err := img.Info()
	if err != nil {
		return nil, fmt.Errorf("augment: %w", err)
	}
	var other *tb.Tensor
	switch a.Kind {
	case Brightness:
		other = s.T(tb.Zeros(info.Shape, info.DType, info.Device))
	case Contrast, Saturation:
		r := s.T(tb.Narrow(img, 0, 0, 1))
		g := s.T(tb.Narrow(img, 0, 1, 1))
		b := s.T(tb.Narrow(img, 0, 2, 1))
		gray := s.T(tb.Add(s.T(tb.Add(s.T(tb.MulScalar(r, 0.2989)), s.T(tb.MulScalar(g, 0.587)))), s.T(tb.MulScalar(b, 0.114))))
		if a.Kind == Contrast {
			other = s.T(tb.Mean(gray, nil, false))
		} else {
			other = gray
		}
	default:
		return nil, fmt.Errorf("augment: unknown kind %d", int(a.Kind))
	}
	ratio := float64(a.Factor)
	out := s.T(tb.Add(s.T(tb.MulScalar(img, ratio)), s.T(tb.MulScalar(other, 1.0-ratio))))
	out = s.T(tb.Clamp(out, 0, 1))
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("augment %v: %w", a.Kind, err)
	}
	return s.Keep(out), nil
}

// augmentSlice applies a to a CHW image given as ToTensor values and
// returns the result normalised with the ImageNet statistics.
func augmentSlice(a Augment, chw []float32, size int) ([]float32, error) {
	x, err := tb.FromSlice(chw, 3, int64(size), int64(size))
	if err != nil {
		return nil, err
	}
	defer x.Close()
	y, err := a.Apply(x)
	if err != nil {
		return nil, err
	}
	defer y.Close()
	v, err := tb.Values[float32](y)
	if err != nil {
		return nil, err
	}
	datasets.Normalize(v, datasets.ImageNetMean, datasets.ImageNetStd)
	return v, nil
}
