package datasets

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/png"
	"io"
)

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

func isPNG(data []byte) bool { return bytes.HasPrefix(data, pngSignature) }

// pngInfo is what Pillow's conversion needs from the PNG header that Go's
// decoder does not report.
type pngInfo struct {
	width, height    int
	depth, colorType int
	paletteLen       int // entries in PLTE, -1 when absent
}

// readPNGInfo reads IHDR and the length of PLTE.
func readPNGInfo(data []byte) (pngInfo, error) {
	info := pngInfo{paletteLen: -1}
	if !isPNG(data) {
		return info, errors.New("no PNG signature")
	}
	p := data[len(pngSignature):]
	first := true
	for len(p) >= 8 {
		n := int(binary.BigEndian.Uint32(p[:4]))
		typ := string(p[4:8])
		if n < 0 || len(p) < 12+n {
			break
		}
		body := p[8 : 8+n]
		switch {
		case first && typ != "IHDR":
			return info, errors.New("first chunk is not IHDR")
		case typ == "IHDR":
			if n < 13 {
				return info, errors.New("short IHDR chunk")
			}
			info.width = int(binary.BigEndian.Uint32(body[0:4]))
			info.height = int(binary.BigEndian.Uint32(body[4:8]))
			info.depth = int(body[8])
			info.colorType = int(body[9])
		case typ == "PLTE":
			info.paletteLen = n / 3
		case typ == "IDAT" || typ == "IEND":
			return info, nil
		}
		first = false
		p = p[12+n:]
	}
	if first {
		return info, io.ErrUnexpectedEOF
	}
	return info, nil
}

// pngSize returns the dimensions IHDR announces.
func pngSize(data []byte) (w, h int, err error) {
	info, err := readPNGInfo(data)
	return info.width, info.height, err
}

// decodePNG decodes a PNG as described in Decode.
func decodePNG(data []byte, o DecodeOptions) (RGB, error) {
	info, err := readPNGInfo(data)
	if err != nil {
		return RGB{}, err
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return RGB{}, err
	}
	grey16 := info.colorType == 0 && info.depth == 16
	switch m := img.(type) {
	case *image.Gray16:
		if grey16 {
			return grey16ToRGB(m, o.Grey16), nil
		}
	case *image.NRGBA64:
		// 16-bit grey with tRNS arrives here too, with R = G = B.
		if grey16 {
			return greyNRGBA64ToRGB(m, o.Grey16), nil
		}
		return nrgba64ToRGB(m), nil
	case *image.RGBA64:
		return rgba64ToRGB(m), nil
	case *image.Paletted:
		n := len(m.Palette)
		if info.paletteLen >= 0 && info.paletteLen < n {
			n = info.paletteLen
		}
		return palettedToRGB(m, n), nil
	}
	return fromGeneric(img), nil
}
