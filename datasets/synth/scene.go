package synth

import "math"

// object is one placed object of a scene.
type object struct {
	spec      int
	shape     shapeKind
	comp      int // compartment the object lies in
	cx, cy    float64
	hx, hy    float64
	corner    float64
	angle     float64
	cos, sin  float64
	bound     float64 // radius of a circle around the centre that holds the object
	color     rgb
	accent    rgb
	edgePts   [][2]float64 // boundary points in local coordinates
	recolored bool
}

const edgeSamples = 48

func newObject(spec objectSpec, specIdx, comp int, cx, cy, scale, angle float64) object {
	o := object{
		spec:   specIdx,
		shape:  spec.shape,
		comp:   comp,
		cx:     cx,
		cy:     cy,
		hx:     spec.hx * scale,
		hy:     spec.hy * scale,
		corner: spec.corner * scale,
		color:  spec.color,
		accent: spec.accent,
	}
	o.setAngle(angle)
	o.bound = math.Hypot(o.hx, o.hy)
	o.edgePts = make([][2]float64, edgeSamples)
	for i := range o.edgePts {
		t := 2 * math.Pi * float64(i) / edgeSamples
		x, y := o.edgePoint(t)
		o.edgePts[i] = [2]float64{x, y}
	}
	return o
}

func (o *object) setAngle(a float64) {
	o.angle = a
	o.sin, o.cos = math.Sincos(a)
}

// toLocal maps an offset from the object centre into object coordinates.
func (o *object) toLocal(dx, dy float64) (float64, float64) {
	return o.cos*dx + o.sin*dy, -o.sin*dx + o.cos*dy
}

// toWorld maps object coordinates to scene coordinates.
func (o *object) toWorld(qx, qy float64) (float64, float64) {
	return o.cx + o.cos*qx - o.sin*qy, o.cy + o.sin*qx + o.cos*qy
}

// sdf is the signed distance from the boundary of the object, in object
// coordinates: negative inside, positive outside.
func (o *object) sdf(qx, qy float64) float64 {
	switch o.shape {
	case shapeBox:
		return sdRoundBox(qx, qy, o.hx, o.hy, o.corner)
	default:
		return math.Sqrt(qx*qx+qy*qy) - o.hx
	}
}

// sdWorld is sdf at a point in scene coordinates.
func (o *object) sdWorld(x, y float64) float64 {
	qx, qy := o.toLocal(x-o.cx, y-o.cy)
	return o.sdf(qx, qy)
}

func sdRoundBox(qx, qy, hx, hy, r float64) float64 {
	dx := math.Abs(qx) - hx + r
	dy := math.Abs(qy) - hy + r
	var outside, inside float64
	switch {
	case dx > 0 && dy > 0:
		outside = math.Sqrt(dx*dx + dy*dy)
	case dx > 0:
		outside = dx
	case dy > 0:
		outside = dy
	default:
		inside = max(dx, dy)
	}
	return outside + inside - r
}

// edgePoint returns the boundary point in direction t (object coordinates),
// found by bisection on the signed distance.
func (o *object) edgePoint(t float64) (float64, float64) {
	ux, uy := math.Cos(t), math.Sin(t)
	lo, hi := 0.0, 2*math.Hypot(o.hx, o.hy)
	for range 30 {
		mid := (lo + hi) / 2
		if o.sdf(mid*ux, mid*uy) < 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	r := (lo + hi) / 2
	return r * ux, r * uy
}

// minHalf returns the smaller half extent.
func (o *object) minHalf() float64 { return math.Min(o.hx, o.hy) }

// fitsIn reports whether the object lies inside r (shrunk by margin).
func (o *object) fitsIn(r rect, margin float64) bool {
	in := r.shrink(margin)
	for _, p := range o.edgePts {
		x, y := o.toWorld(p[0], p[1])
		if !in.contains(x, y) {
			return false
		}
	}
	return true
}

// clearOf reports whether the objects o and p are at least gap apart,
// checked on their sampled boundaries.
func (o *object) clearOf(p *object, gap float64) bool {
	if math.Hypot(o.cx-p.cx, o.cy-p.cy) > o.bound+p.bound+gap {
		return true
	}
	if o.sdWorld(p.cx, p.cy) < gap || p.sdWorld(o.cx, o.cy) < gap {
		return false
	}
	for _, e := range o.edgePts {
		x, y := o.toWorld(e[0], e[1])
		if p.sdWorld(x, y) < gap {
			return false
		}
	}
	for _, e := range p.edgePts {
		x, y := p.toWorld(e[0], e[1])
		if o.sdWorld(x, y) < gap {
			return false
		}
	}
	return true
}

// Placement tolerances in unit coordinates.
const (
	placeGap    = 0.025 // between objects
	placeMargin = 0.012 // between an object and a compartment border
	placeTries  = 80
)

// lighting describes the illumination of one image.
type lighting struct {
	gain          float64
	gradX, gradY  float64
	tint          rgb
	shadowX       float64
	shadowY       float64
	shadowDensity float64
}

// defect is a local damage of one object, in its object coordinates.
type defect struct {
	kind   string
	obj    int
	ax, ay float64 // scratch segment
	bx, by float64
	width  float64  // scratch half width
	discs  []circle // hole, blot and broken edge regions
	stain  rgb      // blot colour
	dark   float64  // scratch darkening factor
}

type circle struct{ x, y, r float64 }

// scene is everything needed to render one image.
type scene struct {
	w, h      int
	px        float64 // size of one pixel in unit coordinates (of the shorter side)
	lay       *layout
	rnd       *rng
	light     lighting
	noise     [2]noiseGrid
	grainSeed uint64
	objects   []object
	defect    *defect
	anomaly   string
	// regions are the objects a logical anomaly concerns, where the
	// ground truth marks it: the removed object at its old place, the
	// extra or recoloured one, both swapped ones, the moved one at its new
	// and its old place.
	regions []object
}

// newScene builds the scene of image index of set s. All random draws come
// from one stream in a fixed order: first the normal scene, then the
// anomaly, so an anomalous image is a normal scene plus one change.
func newScene(cfg Config, s Set, index int) *scene {
	r := newRNG(cfg.Seed, streamID(cfg.Variant, s, index))
	sc := &scene{
		w:   cfg.Width,
		h:   cfg.Height,
		px:  1 / float64(min(cfg.Width, cfg.Height)),
		lay: layouts[cfg.Variant],
		rnd: r,
	}
	ga := r.angle()
	gs := r.uniform(0, 0.12)
	sc.light = lighting{
		gain:          r.uniform(0.92, 1.06),
		gradX:         gs * math.Cos(ga),
		gradY:         gs * math.Sin(ga),
		tint:          rgb{1 + r.sym(0.012), 1 + r.sym(0.012), 1 + r.sym(0.012)},
		shadowX:       0.010 + r.sym(0.003),
		shadowY:       0.014 + r.sym(0.003),
		shadowDensity: r.uniform(0.16, 0.26),
	}
	sc.noise[0] = newNoiseGrid(r, 7)
	sc.noise[1] = newNoiseGrid(r, 29)
	sc.grainSeed = r.u64()
	for _, sl := range sc.lay.slots {
		sp := sc.lay.specs[sl.spec]
		x := sl.x + r.sym(sc.lay.posJitter)
		y := sl.y + r.sym(sc.lay.posJitter)
		scale := 1 + r.sym(sc.lay.sizeJitter)
		sc.objects = append(sc.objects, newObject(sp, sl.spec, sl.comp, x, y, scale, sc.rotation(sp)))
	}
	switch s {
	case SetTestLogical:
		sc.makeLogical(index)
	case SetTestStructural:
		sc.makeStructural(index)
	}
	return sc
}

func (sc *scene) rotation(sp objectSpec) float64 {
	if sp.maxRot < 0 {
		return sc.rnd.angle()
	}
	return sc.rnd.sym(sp.maxRot)
}

// placeable reports whether o fits in compartment comp without touching the
// objects of the scene other than those at the indices in skip.
func (sc *scene) placeable(o *object, comp int, skip ...int) bool {
	if !o.fitsIn(sc.lay.comps[comp], placeMargin) {
		return false
	}
outer:
	for i := range sc.objects {
		for _, k := range skip {
			if i == k {
				continue outer
			}
		}
		if !o.clearOf(&sc.objects[i], placeGap) {
			return false
		}
	}
	return true
}

// findSpot moves o to a random free place in compartment comp. It reports
// whether one was found; o is unchanged otherwise.
func (sc *scene) findSpot(o *object, comp int, skip ...int) bool {
	r := sc.lay.comps[comp]
	cand := *o
	cand.comp = comp
	for range placeTries {
		cand.cx = sc.rnd.uniform(r.x0, r.x1)
		cand.cy = sc.rnd.uniform(r.y0, r.y1)
		if sc.placeable(&cand, comp, skip...) {
			*o = cand
			return true
		}
	}
	return false
}

// makeLogical applies a logical anomaly. The kind cycles with the index so
// that a test set holds every kind; a kind that cannot be realised in this
// scene (no free space) falls through to the next one.
func (sc *scene) makeLogical(index int) {
	kinds := sc.lay.logical
	for k := range kinds {
		kind := kinds[(index+k)%len(kinds)]
		if sc.tryLogical(kind) {
			sc.anomaly = kind
			return
		}
	}
	// Removing an object always works; it is the last resort.
	sc.tryLogical(AnomalyMissing)
	sc.anomaly = AnomalyMissing
}

func (sc *scene) tryLogical(kind string) bool {
	r := sc.rnd
	n := len(sc.objects)
	switch kind {
	case AnomalyMissing:
		i := r.intn(n)
		sc.regions = []object{sc.objects[i]}
		sc.objects = append(sc.objects[:i], sc.objects[i+1:]...)
		return true

	case AnomalyExtra:
		// A copy of a random object, preferably in its own compartment.
		start := r.intn(n)
		for k := range n {
			tmpl := sc.objects[(start+k)%n]
			sp := sc.lay.specs[tmpl.spec]
			o := newObject(sp, tmpl.spec, tmpl.comp, tmpl.cx, tmpl.cy,
				1+r.sym(sc.lay.sizeJitter), sc.rotation(sp))
			comps := len(sc.lay.comps)
			for c := range comps {
				comp := (tmpl.comp + c) % comps
				if sc.findSpot(&o, comp) {
					sc.objects = append(sc.objects, o)
					sc.regions = []object{o}
					return true
				}
			}
		}
		return false

	case AnomalyWrongColor:
		i := r.intn(n)
		c := sc.lay.wrongColors[r.intn(len(sc.lay.wrongColors))]
		sc.objects[i].color = c
		sc.objects[i].accent = accentOf(c)
		sc.objects[i].recolored = true
		sc.regions = []object{sc.objects[i]}
		return true

	case AnomalySwapped:
		// Exchange two objects of different kinds in different compartments.
		for range 4 * n {
			i, j := r.intn(n), r.intn(n)
			a, b := sc.objects[i], sc.objects[j]
			if a.spec == b.spec || a.comp == b.comp {
				continue
			}
			a.cx, a.cy, a.comp, b.cx, b.cy, b.comp = b.cx, b.cy, b.comp, a.cx, a.cy, a.comp
			if !sc.placeable(&a, a.comp, i, j) || !sc.placeable(&b, b.comp, i, j) || !a.clearOf(&b, placeGap) {
				continue
			}
			sc.objects[i], sc.objects[j] = a, b
			sc.regions = []object{a, b}
			return true
		}
		return false

	case AnomalyMisplaced:
		// Move one object into another compartment.
		start := r.intn(n)
		comps := len(sc.lay.comps)
		for k := range n {
			i := (start + k) % n
			o := sc.objects[i]
			cstart := r.intn(comps)
			for c := range comps {
				comp := (cstart + c) % comps
				if comp == o.comp {
					continue
				}
				if sc.findSpot(&o, comp, i) {
					sc.regions = []object{o, sc.objects[i]}
					sc.objects[i] = o
					return true
				}
			}
		}
		return false
	}
	return false
}

// makeStructural attaches a defect to one object. The kind cycles with the
// index.
func (sc *scene) makeStructural(index int) {
	kind := structuralKinds[index%len(structuralKinds)]
	sc.anomaly = kind
	sc.newDefect(kind)
}

// newDefect draws the geometry of a defect of the given kind on a random
// object. Sizes are relative to the object but never below a pixel or two,
// so the damage stays visible at small image sizes.
func (sc *scene) newDefect(kind string) {
	r := sc.rnd
	i := r.intn(len(sc.objects))
	o := &sc.objects[i]
	m := o.minHalf()
	px := sc.px
	d := &defect{kind: kind, obj: i}
	switch kind {
	case AnomalyScratch:
		t := r.angle()
		cx, cy := r.sym(0.3*o.hx), r.sym(0.3*o.hy)
		l := r.uniform(0.7, 1.1) * math.Max(o.hx, o.hy)
		if o.hx != o.hy {
			// Across the long side of a bar the scratch would be too short.
			l = r.uniform(0.5, 0.9) * math.Max(o.hx, o.hy)
		}
		d.ax, d.ay = cx-l*math.Cos(t), cy-l*math.Sin(t)
		d.bx, d.by = cx+l*math.Cos(t), cy+l*math.Sin(t)
		d.width = math.Max(r.uniform(0.005, 0.009), 0.8*px)
		d.dark = r.uniform(0.25, 0.4)
	case AnomalyHole:
		rad := math.Max(r.uniform(0.3, 0.5)*m, 1.6*px)
		d.discs = []circle{{r.sym(0.35 * o.hx), r.sym(0.35 * o.hy), rad}}
	case AnomalyBlot:
		cx, cy := r.sym(0.4*o.hx), r.sym(0.4*o.hy)
		lobes := 3 + r.intn(3)
		for range lobes {
			rad := math.Max(r.uniform(0.2, 0.35)*m, 1.2*px)
			d.discs = append(d.discs, circle{cx + r.sym(0.25*m), cy + r.sym(0.25*m), rad})
		}
		stains := []rgb{{110, 70, 35}, {55, 55, 60}, {238, 236, 226}}
		d.stain = stains[r.intn(len(stains))]
	case AnomalyBrokenEdge:
		t := r.angle()
		bx, by := o.edgePoint(t)
		rad := math.Max(r.uniform(0.4, 0.6)*m, 2*px)
		// A second, smaller bite next to the first makes the edge jagged.
		tx, ty := -math.Sin(t), math.Cos(t)
		off := r.sym(0.8 * rad)
		d.discs = []circle{
			{bx, by, rad},
			{bx + off*tx, by + off*ty, 0.6 * rad},
		}
	}
	sc.defect = d
}

// apply returns the colour of the defect at object coordinates (qx, qy) of
// an object pixel of colour c over background base, and whether the defect
// covers the point.
func (d *defect) apply(qx, qy float64, c, base rgb) (rgb, bool) {
	switch d.kind {
	case AnomalyScratch:
		if segDist(qx, qy, d.ax, d.ay, d.bx, d.by) <= d.width {
			return c.scale(d.dark), true
		}
	case AnomalyHole:
		// The inner wall of the hole shows as a dark ring around the
		// background seen through it.
		c0 := d.discs[0]
		if dist := math.Hypot(qx-c0.x, qy-c0.y); dist <= c0.r {
			if dist > 0.7*c0.r {
				return c.scale(0.45), true
			}
			return base, true
		}
	case AnomalyBrokenEdge:
		if inDiscs(d.discs, qx, qy) {
			return base, true
		}
	case AnomalyBlot:
		if inDiscs(d.discs, qx, qy) {
			return c.mix(d.stain, 0.85), true
		}
	}
	return c, false
}

func inDiscs(ds []circle, x, y float64) bool {
	for _, c := range ds {
		dx, dy := x-c.x, y-c.y
		if dx*dx+dy*dy <= c.r*c.r {
			return true
		}
	}
	return false
}

// segDist is the distance from (px, py) to the segment from a to b.
func segDist(px, py, ax, ay, bx, by float64) float64 {
	vx, vy := bx-ax, by-ay
	wx, wy := px-ax, py-ay
	t := (wx*vx + wy*vy) / (vx*vx + vy*vy)
	t = math.Max(0, math.Min(1, t))
	return math.Hypot(wx-t*vx, wy-t*vy)
}

// noiseGrid is smooth value noise over the unit square.
type noiseGrid struct {
	n    int
	vals []float64
}

func newNoiseGrid(r *rng, n int) noiseGrid {
	g := noiseGrid{n: n, vals: make([]float64, (n+1)*(n+1))}
	for i := range g.vals {
		g.vals[i] = r.sym(1)
	}
	return g
}

// at returns the noise value in [-1, 1] at (x, y) in [0, 1]².
func (g *noiseGrid) at(x, y float64) float64 {
	fx := math.Max(0, math.Min(1, x)) * float64(g.n)
	fy := math.Max(0, math.Min(1, y)) * float64(g.n)
	ix, iy := min(int(fx), g.n-1), min(int(fy), g.n-1)
	tx, ty := smooth(fx-float64(ix)), smooth(fy-float64(iy))
	row := g.n + 1
	v00 := g.vals[iy*row+ix]
	v10 := g.vals[iy*row+ix+1]
	v01 := g.vals[(iy+1)*row+ix]
	v11 := g.vals[(iy+1)*row+ix+1]
	a := v00 + (v10-v00)*tx
	b := v01 + (v11-v01)*tx
	return a + (b-a)*ty
}

func smooth(t float64) float64 { return t * t * (3 - 2*t) }
