package synth

// rgb is a colour with channels in [0, 255].
type rgb struct{ r, g, b float64 }

func (c rgb) scale(f float64) rgb { return rgb{c.r * f, c.g * f, c.b * f} }

func (c rgb) add(d rgb) rgb { return rgb{c.r + d.r, c.g + d.g, c.b + d.b} }

// mix returns (1-t)*c + t*d.
func (c rgb) mix(d rgb, t float64) rgb {
	return rgb{c.r + (d.r-c.r)*t, c.g + (d.g-c.g)*t, c.b + (d.b-c.b)*t}
}

// rect is an axis-aligned rectangle in unit scene coordinates.
type rect struct{ x0, y0, x1, y1 float64 }

func (r rect) contains(x, y float64) bool {
	return x >= r.x0 && x <= r.x1 && y >= r.y0 && y <= r.y1
}

// shrink returns r moved inwards by m on every side.
func (r rect) shrink(m float64) rect { return rect{r.x0 + m, r.y0 + m, r.x1 - m, r.y1 - m} }

type shapeKind int

const (
	shapeDisc shapeKind = iota // disc of radius hx
	shapeBox                   // rounded rectangle of half extents hx, hy
	shapePin                   // disc of radius hx with a highlight
)

// objectSpec is a kind of object of a layout.
type objectSpec struct {
	name   string
	shape  shapeKind
	hx, hy float64 // half extents in unit coordinates
	corner float64 // corner radius of boxes
	color  rgb
	accent rgb     // highlight colour of pins
	maxRot float64 // rotation jitter in radians; a negative value means any angle
}

// slot is the nominal place of one object of a normal scene.
type slot struct {
	spec int // index into layout.specs
	comp int // index into layout.comps
	x, y float64
}

// layout is the fixed composition of a variant. All geometry is in unit
// scene coordinates: x and y in [0, 1] span the image width and height.
type layout struct {
	table, tray, wall rgb
	trayRect          rect
	trayCorner        float64
	rim               float64 // width of the raised tray border
	walls             []rect  // dividers between compartments
	comps             []rect  // free area of each compartment
	specs             []objectSpec
	slots             []slot
	posJitter         float64
	sizeJitter        float64
	wrongColors       []rgb
	logical           []string // logical anomaly kinds that apply
}

var (
	trayRed    = rgb{200, 45, 40}
	trayBlue   = rgb{40, 80, 180}
	trayYellow = rgb{235, 195, 40}
	pinGreen   = rgb{40, 150, 70}
)

// accentOf returns the highlight colour used for pins of colour c.
func accentOf(c rgb) rgb { return c.mix(rgb{255, 255, 255}, 0.45) }

var layouts = map[Variant]*layout{
	VariantTray: {
		table:      rgb{95, 98, 104},
		tray:       rgb{225, 220, 208},
		wall:       rgb{196, 190, 178},
		trayRect:   rect{0.04, 0.05, 0.96, 0.95},
		trayCorner: 0.04,
		rim:        0.012,
		walls: []rect{
			{0.343, 0.062, 0.357, 0.938},
			{0.643, 0.062, 0.657, 0.938},
		},
		comps: []rect{
			{0.052, 0.062, 0.343, 0.938},
			{0.357, 0.062, 0.643, 0.938},
			{0.657, 0.062, 0.948, 0.938},
		},
		specs: []objectSpec{
			{name: "red disc", shape: shapeDisc, hx: 0.075, hy: 0.075, color: trayRed, maxRot: -1},
			{name: "blue square", shape: shapeBox, hx: 0.06, hy: 0.06, corner: 0.015, color: trayBlue, maxRot: 0.2},
			{name: "yellow bar", shape: shapeBox, hx: 0.05, hy: 0.27, corner: 0.03, color: trayYellow, maxRot: 0.06},
		},
		slots: []slot{
			{spec: 0, comp: 0, x: 0.1975, y: 0.36},
			{spec: 0, comp: 0, x: 0.1975, y: 0.64},
			{spec: 1, comp: 1, x: 0.5, y: 0.22},
			{spec: 1, comp: 1, x: 0.5, y: 0.5},
			{spec: 1, comp: 1, x: 0.5, y: 0.78},
			{spec: 2, comp: 2, x: 0.8025, y: 0.5},
		},
		posJitter:   0.015,
		sizeJitter:  0.06,
		wrongColors: []rgb{{60, 160, 70}, {140, 60, 170}},
		logical:     []string{AnomalyMissing, AnomalyExtra, AnomalyWrongColor, AnomalySwapped, AnomalyMisplaced},
	},
	VariantPins: {
		table:      rgb{70, 72, 78},
		tray:       rgb{200, 210, 220},
		wall:       rgb{168, 178, 192},
		trayRect:   rect{0.04, 0.1, 0.96, 0.9},
		trayCorner: 0.03,
		rim:        0.012,
		walls: []rect{
			{0.343, 0.112, 0.357, 0.888},
			{0.643, 0.112, 0.657, 0.888},
			{0.052, 0.493, 0.948, 0.507},
		},
		comps: []rect{
			{0.052, 0.112, 0.343, 0.493},
			{0.357, 0.112, 0.643, 0.493},
			{0.657, 0.112, 0.948, 0.493},
			{0.052, 0.507, 0.343, 0.888},
			{0.357, 0.507, 0.643, 0.888},
			{0.657, 0.507, 0.948, 0.888},
		},
		specs: []objectSpec{
			{name: "green pin", shape: shapePin, hx: 0.055, hy: 0.055, color: pinGreen, accent: accentOf(pinGreen)},
		},
		slots: []slot{
			{spec: 0, comp: 0, x: 0.1975, y: 0.3025},
			{spec: 0, comp: 1, x: 0.5, y: 0.3025},
			{spec: 0, comp: 2, x: 0.8025, y: 0.3025},
			{spec: 0, comp: 3, x: 0.1975, y: 0.6975},
			{spec: 0, comp: 4, x: 0.5, y: 0.6975},
			{spec: 0, comp: 5, x: 0.8025, y: 0.6975},
		},
		posJitter:   0.035,
		sizeJitter:  0.06,
		wrongColors: []rgb{{230, 120, 30}, {50, 90, 200}},
		logical:     []string{AnomalyMissing, AnomalyExtra, AnomalyWrongColor, AnomalyMisplaced},
	},
}

// structuralKinds lists the structural anomaly kinds in the order they are
// cycled through.
var structuralKinds = []string{AnomalyScratch, AnomalyHole, AnomalyBlot, AnomalyBrokenEdge}
