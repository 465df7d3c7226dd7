package synth

import (
	"image"
	"math"
)

// superSample is the number of samples per pixel along each axis; edges are
// anti-aliased by averaging superSample² samples.
const superSample = 3

// grainAmplitude is the amplitude of the per-pixel sensor noise, in grey
// levels.
const grainAmplitude = 2.5

// render rasterises the scene. With withDefect set and a defect present it
// also returns the binary mask of the pixels whose samples are at least half
// covered by the defect; otherwise the mask is nil.
func (sc *scene) render(withDefect bool) (*image.RGBA, *image.Gray) {
	useDefect := withDefect && sc.defect != nil
	img := image.NewRGBA(image.Rect(0, 0, sc.w, sc.h))
	var mask *image.Gray
	if useDefect {
		mask = image.NewGray(img.Rect)
	}
	const n = superSample * superSample
	invW, invH := 1/float64(sc.w), 1/float64(sc.h)
	l := sc.light
	for y := range sc.h {
		v0 := (float64(y) + 0.5) * invH
		for x := range sc.w {
			u0 := (float64(x) + 0.5) * invW
			// The texture is smooth at the pixel scale: evaluate it once
			// per pixel.
			tex := sc.texture(u0, v0)
			var acc rgb
			hits := 0
			for sy := range superSample {
				v := (float64(y) + (float64(sy)+0.5)/superSample) * invH
				for sx := range superSample {
					u := (float64(x) + (float64(sx)+0.5)/superSample) * invW
					c, hit := sc.sample(u, v, tex, useDefect)
					acc = acc.add(c)
					if hit {
						hits++
					}
				}
			}
			g := l.gain * (1 + l.gradX*(u0-0.5) + l.gradY*(v0-0.5)) / n
			gr := grainAmplitude * grain(sc.grainSeed, x, y)
			off := img.PixOffset(x, y)
			img.Pix[off+0] = toByte(acc.r*g*l.tint.r + gr)
			img.Pix[off+1] = toByte(acc.g*g*l.tint.g + gr)
			img.Pix[off+2] = toByte(acc.b*g*l.tint.b + gr)
			img.Pix[off+3] = 255
			if mask != nil && 2*hits >= n {
				mask.Pix[mask.PixOffset(x, y)] = 255
			}
		}
	}
	return img, mask
}

// renderStructural renders the scene with its defect. Should the defect be
// too small to cover a single pixel (at tiny image sizes), it is drawn anew,
// a bounded number of times.
func (sc *scene) renderStructural() (*image.RGBA, *image.Gray) {
	img, mask := sc.render(true)
	for range 8 {
		if maskArea(mask) > 0 {
			break
		}
		sc.newDefect(sc.anomaly)
		img, mask = sc.render(true)
	}
	return img, mask
}

// maskArea counts the set pixels of a mask.
func maskArea(m *image.Gray) int {
	if m == nil {
		return 0
	}
	n := 0
	for _, p := range m.Pix {
		if p != 0 {
			n++
		}
	}
	return n
}

// sample returns the colour at scene point (u, v), where the background
// texture is tex, and whether the defect covers it.
func (sc *scene) sample(u, v, tex float64, withDefect bool) (rgb, bool) {
	for i := range sc.objects {
		o := &sc.objects[i]
		dx, dy := u-o.cx, v-o.cy
		if math.Abs(dx) > o.bound || math.Abs(dy) > o.bound {
			continue
		}
		qx, qy := o.toLocal(dx, dy)
		d := o.sdf(qx, qy)
		if d > 0 {
			continue
		}
		c := sc.shade(o, qx, qy, dx, dy, d)
		if withDefect && sc.defect.obj == i {
			if dc, ok := sc.defect.apply(qx, qy, c, sc.background(u, v, tex, false)); ok {
				return dc, true
			}
		}
		return c, false
	}
	return sc.background(u, v, tex, true), false
}

// shade returns the colour of object o at object coordinates (qx, qy),
// offset (dx, dy) from its centre, at signed distance d from its edge: a
// darker rim, light from the top left and, for pins, a highlight.
func (sc *scene) shade(o *object, qx, qy, dx, dy, d float64) rgb {
	c := o.color
	if o.shape == shapePin {
		hx, hy := qx+0.22*o.hx, qy+0.22*o.hx
		if hr := 0.38 * o.hx; hx*hx+hy*hy < hr*hr {
			c = o.accent
		}
	}
	f := 1.0
	if rim := 0.15 * o.minHalf(); -d < rim {
		f = 0.8 + 0.2*(-d/rim)
	}
	f *= 1 - 0.08*(dx+dy)/(math.Sqrt2*o.bound)
	return c.scale(f)
}

// background returns the colour of the tray, its walls and the table at
// (u, v), with texture tex (from texture) and, if shadows is set, the
// shadows of the objects.
// Holes and broken edges show the background without shadows: they are
// small and lit through the gap.
func (sc *scene) background(u, v, tex float64, shadows bool) rgb {
	L := sc.lay
	n := tex
	t := L.trayRect
	ds := sdRoundBox(u-(t.x0+t.x1)/2, v-(t.y0+t.y1)/2, (t.x1-t.x0)/2, (t.y1-t.y0)/2, L.trayCorner)
	if ds > 0 {
		c := L.table.add(gray(7 * n))
		// The tray casts a shadow on the table.
		sd := sdRoundBox(u-sc.light.shadowX-(t.x0+t.x1)/2, v-sc.light.shadowY-(t.y0+t.y1)/2,
			(t.x1-t.x0)/2, (t.y1-t.y0)/2, L.trayCorner)
		return c.scale(1 - 0.35*smoothstep(0.01, -0.005, sd))
	}
	c := L.tray
	if -ds < L.rim {
		c = L.wall.mix(L.tray, 0.5*(-ds/L.rim))
	}
	for _, w := range L.walls {
		if w.contains(u, v) {
			c = L.wall
			break
		}
	}
	c = c.add(gray(5 * n))
	if !shadows {
		return c
	}
	sh := 0.0
	sx, sy := u-sc.light.shadowX, v-sc.light.shadowY
	for i := range sc.objects {
		o := &sc.objects[i]
		if math.Abs(sx-o.cx) > o.bound+0.02 || math.Abs(sy-o.cy) > o.bound+0.02 {
			continue
		}
		sh = math.Max(sh, smoothstep(0.012, -0.004, o.sdWorld(sx, sy)))
	}
	return c.scale(1 - sc.light.shadowDensity*sh)
}

// texture returns the smooth background texture in [-1, 1] at (u, v).
func (sc *scene) texture(u, v float64) float64 {
	return 0.65*sc.noise[0].at(u, v) + 0.35*sc.noise[1].at(u, v)
}

func gray(v float64) rgb { return rgb{v, v, v} }

// smoothstep is 0 at e0, 1 at e1 and smooth in between (e0 may exceed e1).
func smoothstep(e0, e1, x float64) float64 {
	t := math.Max(0, math.Min(1, (x-e0)/(e1-e0)))
	return t * t * (3 - 2*t)
}

// grain returns deterministic per-pixel noise in [-1, 1) with a triangular
// distribution.
func grain(seed uint64, x, y int) float64 {
	h := mix64(seed ^ uint64(y)<<32 ^ uint64(x))
	a := float64(h>>40) / (1 << 24)
	b := float64(h&0xffffff) / (1 << 24)
	return a + b - 1
}

func toByte(v float64) uint8 {
	v = math.Round(v)
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// regionMasks returns the ground truth of a logical anomaly, one binary
// mask (0 or 255) per object in sc.regions: the pixels whose samples lie
// at least half inside the object's outline. An object too small to cover
// half of any pixel marks the pixel at its centre, so that no mask is
// empty.
func (sc *scene) regionMasks() []*image.Gray {
	masks := make([]*image.Gray, len(sc.regions))
	for i := range sc.regions {
		masks[i] = sc.objectMask(&sc.regions[i])
	}
	return masks
}

func (sc *scene) objectMask(o *object) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, sc.w, sc.h))
	const n = superSample * superSample
	invW, invH := 1/float64(sc.w), 1/float64(sc.h)
	for y := range sc.h {
		for x := range sc.w {
			hits := 0
			for sy := range superSample {
				v := (float64(y) + (float64(sy)+0.5)/superSample) * invH
				for sx := range superSample {
					u := (float64(x) + (float64(sx)+0.5)/superSample) * invW
					if o.sdWorld(u, v) <= 0 {
						hits++
					}
				}
			}
			if 2*hits >= n {
				m.Pix[m.PixOffset(x, y)] = 255
			}
		}
	}
	if maskArea(m) == 0 {
		x := min(max(int(o.cx*float64(sc.w)), 0), sc.w-1)
		y := min(max(int(o.cy*float64(sc.h)), 0), sc.h-1)
		m.Pix[m.PixOffset(x, y)] = 255
	}
	return m
}

// unionMask is the pixelwise union of binary masks (nil for none).
func unionMask(masks []*image.Gray) *image.Gray {
	if len(masks) == 0 {
		return nil
	}
	u := image.NewGray(masks[0].Rect)
	for _, m := range masks {
		for i, p := range m.Pix {
			if p != 0 {
				u.Pix[i] = 255
			}
		}
	}
	return u
}
