package models

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	tb "github.com/puad-go/puad/torchbind"
)

// TeacherLayout names the way a published teacher state dict spells the keys
// of the PDN's convolutions.
type TeacherLayout string

// The teacher layouts LoadTeacher recognises.
const (
	// ReferenceLayout is the reference's PDN_S/PDN_M: conv1.weight,
	// conv1.bias, … conv4 (S) or conv6 (M). anomalib's PDN_S/PDN_M, and so
	// its pretrained_teacher_{small,medium}.pth, use the same names.
	ReferenceLayout TeacherLayout = "reference"
	// SequentialLayout is an nn.Sequential state dict whose convolutions
	// sit at the module indices of get_pdn_small (0, 3, 6, 8) or
	// get_pdn_medium (0, 3, 6, 8, 10, 12), the layout of the
	// teacher_small.pth and teacher_medium.pth files published with the
	// nelson1425/EfficientAD code.
	SequentialLayout TeacherLayout = "sequential"
)

// sequentialConvIndex is the nn.Sequential index of each convolution of a
// PDN, in the order conv1, conv2, …
var sequentialConvIndex = map[Size][]int{
	Small:  {0, 3, 6, 8},
	Medium: {0, 3, 6, 8, 10, 12},
}

// keyMap returns, for each reference key of a teacher PDN of this size, the
// key the layout gives it.
func (l TeacherLayout) keyMap(size Size) (map[string]string, error) {
	ref, err := NewPDN(size, TeacherChannels, false)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, p := range ref.NamedParams() {
		m[p.Name] = p.Name
	}
	if l == ReferenceLayout {
		return m, nil
	}
	for i, idx := range sequentialConvIndex[size] {
		for _, field := range []string{"weight", "bias"} {
			m[fmt.Sprintf("conv%d.%s", i+1, field)] = fmt.Sprintf("%d.%s", idx, field)
		}
	}
	return m, nil
}

// TeacherKeyError reports a teacher state dict that is in no known layout
// for the size asked for, or whose tensors have other shapes than a teacher
// PDN of that size. It lists what each layout expects and what the file
// holds. Callers tell it apart with errors.As.
type TeacherKeyError struct {
	File string
	Size Size
	// Expected are the reference layout's keys with their shapes; Found the
	// file's keys with theirs, in file order.
	Expected, Found []KeyShape
	// Reason says what is wrong, e.g. "unknown key names" or a shape mismatch.
	Reason string
}

// KeyShape is a state-dict key and the shape of its tensor.
type KeyShape struct {
	Key   string
	Shape []int64
}

func (e *TeacherKeyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "teacher %s is not a PDN_%s teacher state dict (%s)", e.File, strings.ToUpper(string(e.Size)), e.Reason)
	fmt.Fprintf(&b, "; expected the keys")
	for _, k := range e.Expected {
		fmt.Fprintf(&b, " %s%v", k.Key, k.Shape)
	}
	seq := sequentialConvIndex[e.Size]
	fmt.Fprintf(&b, " (or, in an nn.Sequential layout, the same tensors under the indices %v)", seq)
	fmt.Fprintf(&b, "; found")
	if len(e.Found) == 0 {
		b.WriteString(" no tensor")
	}
	for _, k := range e.Found {
		fmt.Fprintf(&b, " %s%v", k.Key, k.Shape)
	}
	return b.String()
}

// DetectTeacherLayout returns the layout whose key names are exactly keys
// for a teacher PDN of the given size.
func DetectTeacherLayout(keys []string, size Size) (TeacherLayout, bool) {
	for _, l := range []TeacherLayout{ReferenceLayout, SequentialLayout} {
		m, err := l.keyMap(size)
		if err != nil || len(m) != len(keys) {
			continue
		}
		ok := true
		for _, k := range m {
			if !slices.Contains(keys, k) {
				ok = false
				break
			}
		}
		if ok {
			return l, true
		}
	}
	return "", false
}

// LoadTeacher loads the teacher PDN of the given size from a state dict in
// any TeacherLayout, detected from its keys, onto dev. A file in no known
// layout, or with tensors of other shapes, is a *TeacherKeyError. It returns
// the layout found.
func LoadTeacher(path string, size Size, dev tb.Device) (*PDN, TeacherLayout, error) {
	sd, err := tb.LoadStateDict(path)
	if err != nil {
		return nil, "", fmt.Errorf("teacher %s: %w", path, err)
	}
	defer sd.Close()
	t, err := NewPDN(size, TeacherChannels, false)
	if err != nil {
		return nil, "", err
	}
	keyErr := func(reason string) error {
		return &TeacherKeyError{File: path, Size: size, Expected: keyShapes(t.NamedParams()), Found: stateDictShapes(sd), Reason: reason}
	}
	layout, ok := DetectTeacherLayout(sd.Keys, size)
	if !ok {
		return nil, "", keyErr("unknown key names")
	}
	keys, err := layout.keyMap(size)
	if err != nil {
		return nil, "", err
	}
	ref := tb.NewStateDict()
	for _, p := range t.NamedParams() {
		ref.Keys = append(ref.Keys, p.Name)
		ref.Tensors[p.Name] = sd.Tensors[keys[p.Name]]
	}
	// ref borrows sd's tensors; sd frees them.
	err = LoadStateDict(t, ref, dev, path)
	if err != nil {
		Close(t)
		var se *ShapeError
		if errors.As(err, &se) {
			return nil, "", keyErr(fmt.Sprintf("%s: expected shape %v, found %v", keys[se.Key], se.Want, se.Got))
		}
		return nil, "", err
	}
	return t, layout, nil
}

func keyShapes(ps []Param) []KeyShape {
	out := make([]KeyShape, len(ps))
	for i, p := range ps {
		out[i] = KeyShape{Key: p.Name, Shape: p.Shape}
	}
	return out
}

func stateDictShapes(sd *tb.StateDict) []KeyShape {
	out := make([]KeyShape, 0, len(sd.Keys))
	for _, k := range sd.Keys {
		ks := KeyShape{Key: k}
		if info, err := sd.Tensors[k].Info(); err == nil {
			ks.Shape = info.Shape
		}
		out = append(out, ks)
	}
	return out
}

// SaveTeacher writes the teacher t in the reference layout to path
// (atomically, in the reference's format).
func SaveTeacher(path string, t *PDN) error {
	sd, err := StateDict(t)
	if err != nil {
		return err
	}
	defer sd.Close()
	if err := tb.SaveStateDict(path, sd); err != nil {
		return fmt.Errorf("save teacher %s: %w", path, err)
	}
	return nil
}
