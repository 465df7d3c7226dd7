package detector

import (
	"errors"
	"fmt"
	"image"

	"github.com/puad-go/puad/datasets"
)

// ErrEmptyImage is returned (wrapped) for an image without pixels.
var ErrEmptyImage = errors.New("empty image")

// Input is an image ready for the networks: its 8-bit RGB pixels at the
// original size and their resized, normalised tensor. Preparing inputs is
// the CPU-bound part of scoring and may run in many goroutines at once.
type Input struct {
	rgb datasets.RGB
	x   []float32 // CHW float32 at the model's size
}

// Width and Height are the image's original size.
func (in Input) Width() int  { return in.rgb.W }
func (in Input) Height() int { return in.rgb.H }

// prepare resizes and normalises rgb as datasets.LoadImage does.
func (d *Detector) prepare(rgb datasets.RGB) (Input, error) {
	if rgb.W <= 0 || rgb.H <= 0 {
		return Input{}, ErrEmptyImage
	}
	size := d.ImgSize()
	return Input{rgb: rgb, x: datasets.ToNormalizedTensor(datasets.Resize(rgb, size, size))}, nil
}

// NewInput prepares an image in memory (converted as datasets.FromImage
// does).
func (d *Detector) NewInput(img image.Image) (Input, error) {
	if img == nil {
		return Input{}, ErrEmptyImage
	}
	return d.prepare(datasets.FromImage(img))
}

// Decode prepares an encoded PNG, JPEG, BMP or TIFF image, within the
// limits of Options.Decode. Its errors wrap those of datasets (such as
// datasets.ErrUnsupportedFormat, datasets.ErrCorruptImage and
// *datasets.ImageTooLargeError) and ErrEmptyImage.
func (d *Detector) Decode(data []byte) (Input, error) {
	rgb, err := d.decode.Decode(data)
	if err != nil {
		return Input{}, fmt.Errorf("decode: %w", err)
	}
	in, err := d.prepare(rgb)
	if err != nil {
		return Input{}, fmt.Errorf("decode: %w", err)
	}
	return in, nil
}

// DecodeFile prepares the image file at path, as Decode does; errors name
// the file.
func (d *Detector) DecodeFile(path string) (Input, error) {
	rgb, err := d.decode.DecodeFile(path)
	if err != nil {
		return Input{}, err
	}
	in, err := d.prepare(rgb)
	if err != nil {
		return Input{}, fmt.Errorf("decode %s: %w", path, err)
	}
	return in, nil
}
