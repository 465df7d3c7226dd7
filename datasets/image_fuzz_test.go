package datasets

import (
	"errors"
	"testing"

	"github.com/puad-go/puad/internal/fuzzguard"
)

// The fuzz tests feed each decoder's entry point (header check, pixel
// limit, decoding, conversion) arbitrary bytes. Their seed corpora in
// testdata/fuzz are written by testdata/gen_fixtures.py; plain go test runs
// them. To fuzz one: go test -run '^$' -fuzz FuzzDecodePNG ./datasets/

func FuzzDecodePNG(f *testing.F) {
	f.Add(bombPNG(f))
	fuzzDecoder(f, formatPNG)
}

func FuzzDecodeJPEG(f *testing.F) { fuzzDecoder(f, formatJPEG) }

func FuzzDecodeBMP(f *testing.F) { fuzzDecoder(f, formatBMP) }

func FuzzDecodeTIFF(f *testing.F) { fuzzDecoder(f, formatTIFF) }

// fuzzMaxPixels keeps the fuzzer's images small enough to decode quickly.
const fuzzMaxPixels = 1 << 20

// fuzzDecoder checks that format's decoder, under both 16-bit modes, either
// returns an image of consistent size within the pixel limit or one of the
// package's classified errors; it must never panic nor go over fuzzguard's
// limits of time and memory.
func fuzzDecoder(f *testing.F, format int) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzguard.Check(t, len(data), func() {
			for _, mode := range []Grey16Mode{Grey16Clip, Grey16Scale} {
				if !checkDecode(t, format, mode, data) {
					return
				}
			}
		})
	})
}

// checkDecode decodes data as format under mode and checks the result; it
// reports whether the data decoded.
func checkDecode(t *testing.T, format int, mode Grey16Mode, data []byte) bool {
	o := DecodeOptions{Grey16: mode, MaxPixels: fuzzMaxPixels}
	img, err := o.decodeAs(&formats[format], data)
	if err != nil {
		var big *ImageTooLargeError
		if !errors.Is(err, ErrCorruptImage) && !errors.Is(err, ErrUnsupportedFeature) && !errors.As(err, &big) {
			t.Fatalf("unclassified error %q", err)
		}
		return false
	}
	if img.W < 0 || img.H < 0 || int64(img.W)*int64(img.H) > fuzzMaxPixels || len(img.Pix) != 3*img.W*img.H {
		t.Fatalf("%dx%d image with %d bytes", img.W, img.H, len(img.Pix))
	}
	return true
}
