package ptfile

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// The checks here read what Save writes with archive/zip and pklWalker, not
// with Load, and compare every storage and tensor with what was saved:
// torch.load of PyTorch 1.13 accepts a storage record of the wrong size, so
// loading with PyTorch does not prove the file right.

// savedTensor is a tensor given to Save and how it must appear in the file.
type savedTensor struct {
	key  string  // in the saved dict
	t    *Tensor // as given to Save
	view bool    // written as a view of its whole storage, else as a packed copy
}

// storageNames are the storage classes torch.save of PyTorch 1.13 pickles.
var storageNames = map[DType]string{
	Float32: "FloatStorage", Float64: "DoubleStorage", Float16: "HalfStorage",
	BFloat16: "BFloat16Storage", Int64: "LongStorage", Int32: "IntStorage",
	Int16: "ShortStorage", Int8: "CharStorage", Uint8: "ByteStorage", Bool: "BoolStorage",
}

// patterned returns n bytes that differ from one another.
func patterned(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + seed*31 + 1)
	}
	return b
}

// savedTensors returns tensors of every dtype, of several shapes, views
// with offsets, transposes, gaps and zero strides, and storages shared by
// several tensors.
func savedTensors() []savedTensor {
	base := patterned(24*4, 1) // 24 float32, viewed by five tensors
	bools := []byte{1, 0, 1}
	mk := func(dt DType, shape, strides []int64, off int64, storage []byte) *Tensor {
		return &Tensor{DType: dt, Shape: shape, Strides: strides, Offset: off, Storage: storage}
	}
	x := mk(Float32, []int64{2, 3}, []int64{3, 1}, 2, base)
	x.RequiresGrad = true
	return []savedTensor{
		{"x", x, true},
		{"x_t", mk(Float32, []int64{3, 2}, []int64{1, 3}, 2, base), true},
		{"every_fifth", mk(Float32, []int64{4}, []int64{5}, 1, base), true},
		{"expanded", mk(Float32, []int64{3, 4}, []int64{0, 1}, 20, base), true},
		{"all", mk(Float32, []int64{24}, []int64{1}, 0, base), true},
		{"bytes_of_base", mk(Uint8, []int64{8}, []int64{1}, 0, base), false}, // same bytes, other dtype
		{"f64_transposed", mk(Float64, []int64{3, 4}, []int64{1, 3}, 0, patterned(12*8, 2)), false},
		{"i64_offset", mk(Int64, []int64{5}, []int64{1}, 3, patterned(10*8, 3)), false},
		{"f16", mk(Float16, []int64{2, 2}, []int64{2, 1}, 0, patterned(4*2, 4)), false},
		{"bf16_gaps", mk(BFloat16, []int64{3}, []int64{2}, 1, patterned(8*2, 5)), false},
		{"i32_3d", mk(Int32, []int64{2, 1, 3}, []int64{3, 3, 1}, 0, patterned(6*4, 6)), false},
		{"i16", mk(Int16, []int64{4}, []int64{1}, 0, patterned(4*2, 7)), false},
		{"i8_expanded", mk(Int8, []int64{2, 3}, []int64{1, 0}, 0, patterned(2, 8)), false},
		{"u8", mk(Uint8, []int64{6}, []int64{1}, 0, patterned(6, 9)), false},
		{"bool", mk(Bool, []int64{3}, []int64{1}, 0, bools), false},
		{"scalar", mk(Float32, nil, nil, 1, patterned(2*4, 10)), false},
		{"empty", mk(Float32, []int64{0, 3}, []int64{3, 1}, 0, nil), false},
	}
}

// gather returns the elements of t in row-major order, one index at a time.
func gather(t *Tensor) []byte {
	es := int64(t.DType.Size())
	n := int64(1)
	for _, s := range t.Shape {
		n *= s
	}
	out := make([]byte, 0, n*es)
	idx := make([]int64, len(t.Shape))
	for k := int64(0); k < n; k++ {
		pos := t.Offset
		for d := range idx {
			pos += idx[d] * t.Strides[d]
		}
		out = append(out, t.Storage[pos*es:(pos+1)*es]...)
		for d := len(idx) - 1; d >= 0; d-- {
			if idx[d]++; idx[d] < t.Shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out
}

// rowMajor returns the strides of a packed tensor as PyTorch computes them.
func rowMajor(shape []int64) []int64 {
	strides := make([]int64, len(shape))
	acc := int64(1)
	for d := len(shape) - 1; d >= 0; d-- {
		strides[d] = acc
		acc *= max(shape[d], 1)
	}
	return strides
}

// readSaved reads the archive data (top folder top) with archive/zip and
// returns its records by name inside top, checking how they are stored.
func readSaved(data []byte, top string) (map[string][]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	records := map[string][]byte{}
	for _, f := range zr.File {
		name, ok := strings.CutPrefix(f.Name, top+"/")
		if !ok || f.Method != zip.Store || records[name] != nil {
			return nil, fmt.Errorf("record %s: outside %s/, compressed or repeated", f.Name, top)
		}
		if off, err := f.DataOffset(); err != nil || off%64 != 0 {
			return nil, fmt.Errorf("record %s: data at %d (%v), want a multiple of 64", f.Name, off, err)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc) // checks the CRC-32
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", f.Name, err)
		}
		records[name] = b
	}
	if string(records["version"]) != "3\n" || records["data.pkl"] == nil {
		return nil, fmt.Errorf("version record %q and data.pkl of %d bytes", records["version"], len(records["data.pkl"]))
	}
	return records, nil
}

// checkSavedTensor compares one tensor of the pickle with what was saved and
// its storage record with the saved elements.
func checkSavedTensor(got *pyTensor, want savedTensor, records map[string][]byte) error {
	t := want.t
	st := got.storage
	rec, ok := records["data/"+st.key]
	if !ok {
		return fmt.Errorf("storage %s has no record", st.key)
	}
	if st.class != (pyGlobal{"torch", storageNames[t.DType]}) || st.location != "cpu" {
		return fmt.Errorf("storage %s is %v on %q, want torch.%s on cpu", st.key, st.class, st.location, storageNames[t.DType])
	}
	if es := int64(t.DType.Size()); st.numel*es != int64(len(rec)) {
		return fmt.Errorf("storage %s: %d elements of %d bytes in the pickle, %d bytes in its record", st.key, st.numel, es, len(rec))
	}
	wantOff, wantStride, wantData := int64(0), rowMajor(t.Shape), gather(t)
	if want.view {
		wantOff, wantStride, wantData = t.Offset, t.Strides, t.Storage
	}
	if got.offset != wantOff || !reflect.DeepEqual(got.size, append([]int64{}, t.Shape...)) ||
		!reflect.DeepEqual(got.stride, append([]int64{}, wantStride...)) || got.requiresGrad != t.RequiresGrad {
		return fmt.Errorf("offset %d, size %v, stride %v, requires_grad %v; want %d, %v, %v, %v",
			got.offset, got.size, got.stride, got.requiresGrad, wantOff, t.Shape, wantStride, t.RequiresGrad)
	}
	if !bytes.Equal(rec, wantData) {
		return fmt.Errorf("storage %s holds %x, want %x", st.key, rec, wantData)
	}
	return nil
}

// checkSaved checks the archive that Save wrote for the dict of tensors
// (under their keys) followed by the list under "again".
func checkSaved(data []byte, top string, tensors []savedTensor) error {
	records, err := readSaved(data, top)
	if err != nil {
		return err
	}
	root, err := walkPickle(records["data.pkl"])
	if err != nil {
		return err
	}
	d, ok := root.(*pyDict)
	if !ok || !d.ordered || len(d.keys) != len(tensors)+1 {
		return fmt.Errorf("the pickle holds %#v, want an OrderedDict of %d entries", root, len(tensors)+1)
	}
	used := map[string]bool{}
	keyOf := map[*byte]string{} // the storage key of each viewed storage
	for i, want := range tensors {
		got, ok := d.values[i].(*pyTensor)
		if d.keys[i] != want.key || !ok {
			return fmt.Errorf("entry %d is %v: %#v, want %s: a tensor", i, d.keys[i], d.values[i], want.key)
		}
		if err := checkSavedTensor(got, want, records); err != nil {
			return fmt.Errorf("%s: %w", want.key, err)
		}
		k := got.storage.key
		if want.view {
			if first, seen := keyOf[&want.t.Storage[0]]; seen && first != k {
				return fmt.Errorf("%s: storage %s, but the other views of its storage use %s", want.key, k, first)
			}
			keyOf[&want.t.Storage[0]] = k
		}
		if used[k] && !want.view {
			return fmt.Errorf("%s: a packed copy on storage %s, which another tensor uses", want.key, k)
		}
		used[k] = true
	}
	again, ok := d.values[len(tensors)].(*pyList)
	if d.keys[len(tensors)] != "again" || !ok || len(again.items) != 3 || again.items[1] != "s" || again.items[2] != int64(-3) {
		return fmt.Errorf("last entry %v: %#v, want again: [x, 's', -3]", d.keys[len(tensors)], d.values[len(tensors)])
	}
	if x, ok := again.items[0].(*pyTensor); !ok || x.storage.key != keyOf[&tensors[0].t.Storage[0]] {
		return fmt.Errorf("again[0] is %#v, want x on its storage", again.items[0])
	}
	for name := range records {
		if k, ok := strings.CutPrefix(name, "data/"); ok && !used[k] {
			return fmt.Errorf("record %s is used by no tensor", name)
		}
	}
	return nil
}

func TestSavedFileStructure(t *testing.T) {
	tensors := savedTensors()
	d := NewOrderedDict()
	for _, st := range tensors {
		if err := st.t.Validate(); err != nil {
			t.Fatalf("%s: %v", st.key, err)
		}
		d.Set(st.key, st.t)
	}
	d.Set("again", []any{tensors[0].t, "s", int64(-3)})
	var buf bytes.Buffer
	if err := SaveWriter(&buf, "chk", d); err != nil {
		t.Fatal(err)
	}
	if err := checkSaved(buf.Bytes(), "chk", tensors); err != nil {
		t.Fatal(err)
	}
}

// The check notices a storage record whose size disagrees with the pickle,
// which torch.load would accept.
func TestSavedFileCheckCatchesWrongSize(t *testing.T) {
	x := mustTensor(FromFloat32s([]int64{2}, []float32{1, 2}))
	tensors := []savedTensor{{"x", x, false}}
	p := newTestPickler()
	p.emptyOrderedDict()
	p.op('(')
	p.str("x")
	tensorOn(p, "FloatStorage", "0", 3, 0, []int64{2}, []int64{1}) // 3 elements claimed
	p.str("again")
	p.op(']', '(')
	tensorOn(p, "FloatStorage", "0", 3, 0, []int64{2}, []int64{1})
	p.str("s")
	p.int(-3)
	p.op('e', 'u', '.')
	var buf bytes.Buffer
	if err := writeArchive(&buf, "chk", p.buf.Bytes(), []*storageOut{{key: "0", data: x.Storage}}); err != nil {
		t.Fatal(err)
	}
	err := checkSaved(buf.Bytes(), "chk", tensors)
	if err == nil || !strings.Contains(err.Error(), "3 elements of 4 bytes in the pickle, 8 bytes in its record") {
		t.Errorf("error %v, want the wrong size found", err)
	}
}
