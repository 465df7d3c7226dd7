package datasets

import (
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"image/png"
	"io"
	"strings"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// ErrUnsupportedFormat is returned (wrapped) for data that is not one of the
// formats Decode reads.
var ErrUnsupportedFormat = errors.New("unsupported image format (PNG, JPEG, BMP and TIFF are decoded)")

// ErrUnsupportedFeature is returned (wrapped, naming the format and the
// feature) for a PNG, JPEG, BMP or TIFF file that uses a variant of its
// format the decoders do not read, such as a compression scheme.
var ErrUnsupportedFeature = errors.New("unsupported image feature")

// ErrCorruptImage is returned (wrapped, naming the format and the problem)
// for truncated or malformed image data.
var ErrCorruptImage = errors.New("corrupt image data")

// Grey16Mode says how 16-bit greyscale samples become 8-bit ones.
type Grey16Mode int

const (
	// Grey16Clip reproduces Pillow's convert("RGB") of a 16-bit greyscale
	// image (mode "I" or "I;16"): a sample v becomes min(v, 255), so
	// everything above 255 is white. It is the default, for parity with
	// the Python reference.
	Grey16Clip Grey16Mode = iota
	// Grey16Scale maps the full 16-bit range onto 0..255: v becomes
	// round(v·255/65535), computed exactly as (v+128)/257 in integers
	// (v/257 never falls halfway between two integers).
	Grey16Scale
)

// String is the mode's name: "clip" or "scale".
func (m Grey16Mode) String() string {
	if m == Grey16Scale {
		return "scale"
	}
	return "clip"
}

// ParseGrey16Mode reads a name of String; "" is Grey16Clip, the default.
func ParseGrey16Mode(name string) (Grey16Mode, error) {
	switch name {
	case "", "clip":
		return Grey16Clip, nil
	case "scale":
		return Grey16Scale, nil
	}
	return 0, fmt.Errorf("16-bit greyscale mode %q: want clip or scale", name)
}

// DecodeOptions tunes Decode and DecodeFile. The zero value gives the
// defaults that the package-level Decode and DecodeFile use.
type DecodeOptions struct {
	// Grey16 says what becomes of 16-bit greyscale PNG and TIFF samples.
	// 16-bit colour samples always keep their high byte, as Pillow does.
	Grey16 Grey16Mode
	// MaxPixels is the largest width × height accepted; 0 means
	// MaxImagePixels, a negative value means no limit.
	MaxPixels int64
	// MaxFileBytes is the longest file DecodeFile reads; 0 means
	// MaxFileBytes, a negative value means no limit.
	MaxFileBytes int64
}

func (o DecodeOptions) maxPixels() int64 {
	if o.MaxPixels == 0 {
		return MaxImagePixels
	}
	return o.MaxPixels
}

func (o DecodeOptions) maxFileBytes() int64 {
	if o.MaxFileBytes == 0 {
		return MaxFileBytes
	}
	return o.MaxFileBytes
}

// DecodeFile reads the regular file at path (at most the byte limit) and
// decodes it like Decode. Errors name the file.
func (o DecodeOptions) DecodeFile(path string) (RGB, error) {
	data, err := readRegularFile(path, o.maxFileBytes())
	if err != nil {
		return RGB{}, fmt.Errorf("decode %s: %w", path, err)
	}
	img, err := o.Decode(data)
	if err != nil {
		var big *ImageTooLargeError
		if errors.As(err, &big) {
			big.Path = path
		}
		return RGB{}, fmt.Errorf("decode %s: %w", path, err)
	}
	return img, nil
}

// Decode decodes a PNG, JPEG, BMP or TIFF image (told apart by their
// signatures, whatever the file is called) into 8-bit RGB as described in
// the package-level Decode. The dimensions are read from the header first:
// an image over the pixel limit is refused with an *ImageTooLargeError
// before its pixels are allocated.
func (o DecodeOptions) Decode(data []byte) (RGB, error) {
	for i := range formats {
		if formats[i].match(data) {
			return o.decodeAs(&formats[i], data)
		}
	}
	return RGB{}, ErrUnsupportedFormat
}

// decodeAs decodes data as format f: the header, the pixel limit, the
// pixels.
func (o DecodeOptions) decodeAs(f *imageFormat, data []byte) (RGB, error) {
	w, h, err := f.config(data)
	if err != nil {
		return RGB{}, f.wrap(err)
	}
	// An image without pixels is refused, as Pillow refuses one: its
	// decoder would still walk every row (or column) of the other side.
	if w <= 0 || h <= 0 {
		return RGB{}, fmt.Errorf("%w (%s): the image is %dx%d pixels", ErrCorruptImage, f.name, w, h)
	}
	if err := checkPixels(w, h, o.maxPixels()); err != nil {
		return RGB{}, err
	}
	img, err := f.decode(data, o)
	if err != nil {
		return RGB{}, f.wrap(err)
	}
	return img, nil
}

// imageFormat is one format Decode reads.
type imageFormat struct {
	name   string
	match  func(data []byte) bool
	config func(data []byte) (w, h int, err error)
	decode func(data []byte, o DecodeOptions) (RGB, error)
}

var formats = [...]imageFormat{
	{"PNG", isPNG, pngSize, decodePNG},
	{"JPEG", isJPEG, jpegSize, decodeJPEG},
	{"BMP", isBMP, bmpSize, decodeBMP},
	{"TIFF", isTIFF, tiffSize, decodeTIFF},
}

// Indices into formats, for the fuzz tests.
const (
	formatPNG = iota
	formatJPEG
	formatBMP
	formatTIFF
)

func isBMP(data []byte) bool { return bytes.HasPrefix(data, []byte("BM")) }

func isTIFF(data []byte) bool {
	return bytes.HasPrefix(data, []byte("II*\x00")) || bytes.HasPrefix(data, []byte("MM\x00*"))
}

// wrap turns an error of a decoder into ErrUnsupportedFeature or
// ErrCorruptImage, naming the format, with the decoder's own package
// prefixes left out of the message. Errors already classified pass through.
func (f *imageFormat) wrap(err error) error {
	if errors.Is(err, ErrUnsupportedFeature) || errors.Is(err, ErrCorruptImage) {
		return err
	}
	var (
		pngU  png.UnsupportedError
		jpegU jpeg.UnsupportedError
		tiffU tiff.UnsupportedError
	)
	switch {
	case errors.Is(err, bmp.ErrUnsupported):
		return fmt.Errorf("%w (BMP): compression, header or bit depth", ErrUnsupportedFeature)
	case errors.As(err, &pngU), errors.As(err, &jpegU), errors.As(err, &tiffU):
		return fmt.Errorf("%w (%s): %s", ErrUnsupportedFeature, f.name, plainMessage(err))
	}
	return fmt.Errorf("%w (%s): %s", ErrCorruptImage, f.name, plainMessage(err))
}

// decoderPrefixes are the prefixes Go's decoders put before their messages.
var decoderPrefixes = []string{
	"png: ", "bmp: ", "tiff: ", "zlib: ", "flate: ", "lzw: ",
	"invalid JPEG format: ", "unsupported JPEG feature: ",
	"invalid format: ", "unsupported feature: ",
}

// plainMessage is err's message without decoder prefixes; data that ends
// early is reported as such.
func plainMessage(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "data ends early"
	}
	msg := err.Error()
	for again := true; again; {
		again = false
		for _, p := range decoderPrefixes {
			if strings.HasPrefix(msg, p) {
				msg, again = msg[len(p):], true
			}
		}
	}
	return msg
}
