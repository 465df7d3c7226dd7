package datasets

import "fmt"

// f32 rounds a float64 to float32 at run time, the way torch.as_tensor turns
// a Python float (a double) into a float32 tensor element.
func f32(v float64) float32 { return float32(v) }

// ImageNetMean and ImageNetStd are the per-channel (R, G, B) normalisation
// constants of the reference (torchvision's ImageNet statistics), as float32.
var (
	ImageNetMean = [3]float32{f32(0.485), f32(0.456), f32(0.406)}
	ImageNetStd  = [3]float32{f32(0.229), f32(0.224), f32(0.225)}
)

// byteToUnit[b] is torchvision ToTensor's value for a byte b:
// img.to(float32).div(255), a correctly rounded float32 division.
var byteToUnit [256]float32

// imageNetLUT[c][b] is Normalize(ImageNetMean, ImageNetStd) of
// byteToUnit[b] in channel c.
var imageNetLUT [3][256]float32

func init() {
	for b := range byteToUnit {
		byteToUnit[b] = float32(b) / float32(255)
	}
	imageNetLUT = normalizeLUT(ImageNetMean, ImageNetStd)
}

func normalizeLUT(mean, std [3]float32) (lut [3][256]float32) {
	for c := 0; c < 3; c++ {
		for b := range byteToUnit {
			lut[c][b] = (byteToUnit[b] - mean[c]) / std[c]
		}
	}
	return lut
}

// ToTensor returns img as a CHW float32 tensor (3·H·W values) with each byte
// b mapped to float32(b)/255, like torchvision's ToTensor.
func ToTensor(img RGB) []float32 {
	n := img.W * img.H
	t := make([]float32, 3*n)
	r, g, b := t[:n], t[n:2*n], t[2*n:]
	for i := 0; i < n; i++ {
		p := img.Pix[3*i : 3*i+3 : 3*i+3]
		r[i] = byteToUnit[p[0]]
		g[i] = byteToUnit[p[1]]
		b[i] = byteToUnit[p[2]]
	}
	return t
}

// Normalize applies torchvision's Normalize(mean, std) in place to a CHW
// tensor with three channels: x = (x - mean[c]) / std[c], in float32.
// It panics if len(t) is not a multiple of 3.
func Normalize(t []float32, mean, std [3]float32) {
	if len(t)%3 != 0 {
		panic(fmt.Sprintf("datasets.Normalize: tensor length %d is not a multiple of 3", len(t)))
	}
	n := len(t) / 3
	for c := 0; c < 3; c++ {
		m, s := mean[c], std[c]
		ch := t[c*n : (c+1)*n]
		for i, v := range ch {
			ch[i] = (v - m) / s
		}
	}
}

// ToNormalizedTensor is ToTensor followed by Normalize with the ImageNet
// statistics, computed in one pass through a lookup table (the results are
// identical).
func ToNormalizedTensor(img RGB) []float32 {
	n := img.W * img.H
	t := make([]float32, 3*n)
	r, g, b := t[:n], t[n:2*n], t[2*n:]
	lr, lg, lb := &imageNetLUT[0], &imageNetLUT[1], &imageNetLUT[2]
	for i := 0; i < n; i++ {
		p := img.Pix[3*i : 3*i+3 : 3*i+3]
		r[i] = lr[p[0]]
		g[i] = lg[p[1]]
		b[i] = lb[p[2]]
	}
	return t
}

// LoadRGB decodes the image at path and resizes it to size×size, like
// Image.open(path).convert("RGB") followed by transforms.Resize((size, size)).
func LoadRGB(path string, size int) (RGB, error) {
	return DecodeOptions{}.LoadRGB(path, size)
}

// LoadRGB is the package-level LoadRGB decoding with o.
func (o DecodeOptions) LoadRGB(path string, size int) (RGB, error) {
	if size <= 0 {
		return RGB{}, fmt.Errorf("load %s: invalid size %d", path, size)
	}
	img, err := o.DecodeFile(path)
	if err != nil {
		return RGB{}, err
	}
	if img.W == 0 || img.H == 0 {
		return RGB{}, fmt.Errorf("decode %s: empty image", path)
	}
	return Resize(img, size, size), nil
}

// LoadImage returns the evaluation input for the image at path: decode,
// Resize((size, size)), ToTensor, Normalize(ImageNetMean, ImageNetStd), as a
// CHW float32 slice of length 3·size·size.
func LoadImage(path string, size int) ([]float32, error) {
	return DecodeOptions{}.LoadImage(path, size)
}

// LoadImage is the package-level LoadImage decoding with o.
func (o DecodeOptions) LoadImage(path string, size int) ([]float32, error) {
	img, err := o.LoadRGB(path, size)
	if err != nil {
		return nil, err
	}
	return ToNormalizedTensor(img), nil
}

// LoadImageUnnormalized is LoadImage without the final Normalize: values lie
// in [0, 1]. Training applies its random augmentation to this tensor and
// normalises afterwards (see Normalize).
func LoadImageUnnormalized(path string, size int) ([]float32, error) {
	img, err := LoadRGB(path, size)
	if err != nil {
		return nil, err
	}
	return ToTensor(img), nil
}
