package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// DefectConfig is one entry of an MVTec LOCO AD category's
// defects_config.json: a defect type, the pixel value its ground-truth
// channels carry, and its saturation threshold for the sPRO.
type DefectConfig struct {
	// Name is the defect type (defect_name).
	Name string
	// PixelValue (1..255) marks the defect's pixels in a channel PNG.
	PixelValue uint8
	// Relative tells whether Saturation is a fraction of the defect's
	// area (relative_saturation true) or an absolute pixel count.
	Relative bool
	// Saturation is the saturation_threshold: a fraction in (0, 1] when
	// Relative, otherwise a whole number of pixels ≥ 1.
	Saturation float64
}

// SaturationArea returns the number of true-positive pixels at which a
// channel of this defect with the given area is fully detected: the
// fraction of the area rounded down when relative, otherwise the absolute
// threshold capped at the area, as the official evaluation computes it.
func (d DefectConfig) SaturationArea(area int) int {
	if d.Relative {
		return int(d.Saturation * float64(area))
	}
	return min(int(d.Saturation), area)
}

// DefectsConfig is a parsed defects_config.json, indexed by pixel value.
type DefectsConfig struct {
	// Defects lists the entries in file order.
	Defects []DefectConfig
	byValue [256]int // index+1 into Defects, 0 = no entry
}

// Lookup returns the defect whose channels carry pixel value v.
func (c *DefectsConfig) Lookup(v uint8) (DefectConfig, bool) {
	i := c.byValue[v]
	if i == 0 {
		return DefectConfig{}, false
	}
	return c.Defects[i-1], true
}

// DefectsConfigError reports a defects_config.json that cannot be used.
type DefectsConfigError struct {
	// File is the file's name as given to ParseDefectsConfig.
	File string
	// Err says what is wrong.
	Err error
}

func (e *DefectsConfigError) Error() string {
	return fmt.Sprintf("metrics: defects config %s: %v", e.File, e.Err)
}

func (e *DefectsConfigError) Unwrap() error { return e.Err }

// ReadDefectsConfig reads and parses a defects_config.json.
func ReadDefectsConfig(path string) (*DefectsConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("metrics: reading defects config: %w", err)
	}
	return ParseDefectsConfig(data, path)
}

// sproCfgEntry is one entry as written in the file; nil tells a missing
// field, and the numbers stay raw so that their JSON type can be checked.
type sproCfgEntry struct {
	DefectName          *string         `json:"defect_name"`
	PixelValue          json.RawMessage `json:"pixel_value"`
	SaturationThreshold json.RawMessage `json:"saturation_threshold"`
	RelativeSaturation  *bool           `json:"relative_saturation"`
}

// ParseDefectsConfig parses the contents of a defects_config.json (a JSON
// list of objects with defect_name, pixel_value, saturation_threshold and
// relative_saturation), checking what the official evaluation asserts: a
// pixel value in 1..255, a relative threshold in (0, 1], an absolute one a
// whole number (here also ≥ 1, so that no saturation area is zero), and,
// beyond it, no pixel value twice. file names the input in errors, which
// are *DefectsConfigError.
func ParseDefectsConfig(data []byte, file string) (*DefectsConfig, error) {
	fail := func(format string, args ...any) (*DefectsConfig, error) {
		return nil, &DefectsConfigError{File: file, Err: fmt.Errorf(format, args...)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var entries []sproCfgEntry
	if err := dec.Decode(&entries); err != nil {
		return fail("not a JSON list of defect entries: %w", err)
	}
	if dec.More() {
		return fail("unexpected data after the JSON list")
	}
	if len(entries) == 0 {
		return fail("%w", errors.New("no defect entries"))
	}
	cfg := &DefectsConfig{}
	for i, e := range entries {
		d, err := sproEntry(e)
		if err != nil {
			return fail("entry %d: %w", i, err)
		}
		if j := cfg.byValue[d.PixelValue]; j != 0 {
			return fail("entry %d (%q): pixel_value %d already used by %q", i, d.Name, d.PixelValue, cfg.Defects[j-1].Name)
		}
		cfg.Defects = append(cfg.Defects, d)
		cfg.byValue[d.PixelValue] = len(cfg.Defects)
	}
	return cfg, nil
}

// sproEntry validates one entry of defects_config.json.
func sproEntry(e sproCfgEntry) (DefectConfig, error) {
	switch {
	case e.DefectName == nil:
		return DefectConfig{}, errors.New("missing defect_name")
	case e.PixelValue == nil || string(e.PixelValue) == "null":
		return DefectConfig{}, fmt.Errorf("%q: missing pixel_value", *e.DefectName)
	case e.SaturationThreshold == nil || string(e.SaturationThreshold) == "null":
		return DefectConfig{}, fmt.Errorf("%q: missing saturation_threshold", *e.DefectName)
	case e.RelativeSaturation == nil:
		return DefectConfig{}, fmt.Errorf("%q: missing relative_saturation", *e.DefectName)
	}
	name := *e.DefectName
	pv, err := sproNumber(e.PixelValue).Int64()
	if err != nil || pv < 1 || pv > 255 {
		return DefectConfig{}, fmt.Errorf("%q: pixel_value %s is not a whole number in 1..255", name, e.PixelValue)
	}
	sat := sproNumber(e.SaturationThreshold)
	d := DefectConfig{Name: name, PixelValue: uint8(pv), Relative: *e.RelativeSaturation}
	if d.Relative {
		t, err := sat.Float64()
		if err != nil || !(t > 0 && t <= 1) {
			return DefectConfig{}, fmt.Errorf("%q: relative saturation_threshold %s is not a number in (0, 1]", name, e.SaturationThreshold)
		}
		d.Saturation = t
		return d, nil
	}
	t, err := sat.Int64()
	if err != nil || t < 1 {
		return DefectConfig{}, fmt.Errorf("%q: absolute saturation_threshold %s is not a whole number of pixels ≥ 1", name, e.SaturationThreshold)
	}
	d.Saturation = float64(t)
	return d, nil
}

// sproNumber returns a JSON value's text as a number; anything but a JSON
// number literal (a string, a boolean, an object) gives a json.Number
// whose conversions fail.
func sproNumber(raw json.RawMessage) json.Number {
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return ""
	}
	return json.Number(raw)
}
