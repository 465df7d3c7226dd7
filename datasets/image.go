// Package datasets reads anomaly-detection image datasets — categories laid
// out like MVTec AD and MVTec LOCO AD (Open) and plain folders of good images
// (OpenPlain; OpenFor tells the two apart) — and turns their images into the
// float32 CHW tensors the PUAD / EfficientAD networks consume.
//
// Every step reproduces the Python reference pipeline
// (Pillow 9.4 + torchvision 0.14):
//
//	Image.open(p).convert("RGB")          -> Decode, DecodeFile
//	transforms.Resize((size, size))       -> Resize (Pillow BILINEAR, antialiased)
//	transforms.ToTensor()                 -> ToTensor
//	transforms.Normalize(mean, std)       -> Normalize
//
// PNG, BMP and TIFF decoding, resizing, ToTensor and Normalize agree bit for
// bit with the reference; JPEG decoding agrees to within a few levels (see
// Decode). Decoding refuses decompression bombs (images whose header
// announces more pixels than MaxImagePixels) and files that are not regular
// or longer than MaxFileBytes.
package datasets

// RGB is an 8-bit RGB image stored as interleaved R, G, B bytes, row by row,
// without padding: the pixel (x, y) starts at Pix[3*(y*W+x)].
type RGB struct {
	W, H int
	Pix  []uint8
}

// NewRGB returns a black w×h image.
func NewRGB(w, h int) RGB {
	return RGB{W: w, H: h, Pix: make([]uint8, 3*w*h)}
}

// At returns the colour of the pixel (x, y).
func (m RGB) At(x, y int) (r, g, b uint8) {
	i := 3 * (y*m.W + x)
	return m.Pix[i], m.Pix[i+1], m.Pix[i+2]
}

// DecodeFile reads and decodes the PNG, JPEG, BMP or TIFF file at path like
// Pillow's Image.open(path).convert("RGB"), with the default DecodeOptions.
// Only regular files (or links to them) are read, at most MaxFileBytes
// bytes; directories, pipes and devices are refused with ErrNotRegularFile
// without blocking. Errors name the file.
func DecodeFile(path string) (RGB, error) {
	return DecodeOptions{}.DecodeFile(path)
}

// Decode decodes a PNG, JPEG, BMP or TIFF image held in data into 8-bit RGB
// the way Pillow 9.4's Image.open(...).convert("RGB") does, with the default
// DecodeOptions: 16-bit greyscale clipped, images over MaxImagePixels
// refused with an *ImageTooLargeError before they are decoded.
//
// PNG (exact, every colour type and bit depth):
//   - 8-bit RGB, RGBA, grey, grey+alpha, paletted (1/2/4/8-bit) images keep
//     their stored colour values; alpha and tRNS transparency are dropped,
//     never composited (the non-premultiplied values are used).
//   - 16-bit RGB, RGBA and grey+alpha keep the high byte of each sample.
//   - 16-bit greyscale is clipped, not scaled: Pillow opens it in mode "I"
//     and its I→RGB conversion saturates, so a sample v becomes min(v, 255)
//     in all three channels (Grey16Scale scales instead).
//   - 1, 2 and 4-bit grey are scaled to 0..255 (0x00/0xff, ×0x55, ×0x11).
//   - Palette indices past the end of the PLTE chunk map to (i, i, i), the
//     grey ramp Pillow initialises its palettes with.
//
// BMP (exact, uncompressed): 1, 4 and 8-bit paletted (indices past the
// palette map to (i, i, i) as for PNG), 16-bit 5-5-5 or 5-6-5 RGB (each
// field f scaled to f·255/31 or f·255/63, truncated), 24-bit RGB and 32-bit
// RGB or RGBA (alpha dropped), bottom-up or top-down, with a
// BITMAPINFOHEADER, BITMAPV4HEADER or BITMAPV5HEADER. RLE compression,
// other bit-field masks and OS/2 headers are refused with
// ErrUnsupportedFeature.
//
// TIFF (exact, first page only): 1-bit bilevel, 8 and 16-bit grey (black
// or white is zero), 8-bit paletted, 8 and 16-bit RGB and RGBA, in either
// byte order, uncompressed or LZW, Deflate or PackBits-compressed, and
// bilevel CCITT group 3/4 data; all of these are compared with Pillow in the
// tests. Tiles and the horizontal predictor are read too (by
// golang.org/x/image/tiff, without a Pillow comparison). Unassociated alpha
// is dropped; associated (premultiplied) alpha is divided out first, as
// Pillow does (v·255/a truncated, 0 where a is 0). 16-bit colour keeps the
// high byte; 16-bit grey is clipped as for PNG (and, like Pillow, not
// inverted when white is zero). Separate sample planes, JPEG and other
// compressions, CMYK, YCbCr, Lab, floating-point samples, 2 and 4-bit
// samples, grey with alpha and tiles much larger than the image are refused
// with ErrUnsupportedFeature. A compressed strip or tile is inflated to at
// most 8 bytes per pixel of its extent (strips no taller than the image,
// tiles no larger than the image's sides rounded up to 16, or 1024), and a
// PackBits one to at most 64 times its size.
//
// JPEG (close, not exact): the coefficients are decoded by Go's image/jpeg,
// then chroma is upsampled with libjpeg's "fancy" triangular filter (h2v1,
// h2v2, h1v2) and converted with libjpeg's fixed-point YCbCr→RGB tables, as
// libjpeg-turbo does for Pillow. Go's integer IDCT is not libjpeg's
// JDCT_ISLOW, so some samples differ slightly: on the test fixtures (121×89,
// quality 85-95) 1.4-3.6% of the bytes differ, by at most 1 level for grey
// and CMYK JPEGs and at most 3 levels for colour ones (the colour conversion
// amplifies ±1 chroma errors); see TestDecodeJPEG. Go's own YCbCr→RGB path,
// which replicates chroma instead, would differ by up to 118 levels. Grey
// JPEGs are replicated to three channels, CMYK JPEGs are converted with
// Pillow's cmyk2rgb formula.
//
// Data that is none of the four formats gives ErrUnsupportedFormat; broken
// data gives ErrCorruptImage.
func Decode(data []byte) (RGB, error) {
	return DecodeOptions{}.Decode(data)
}
