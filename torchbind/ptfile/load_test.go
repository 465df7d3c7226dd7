package ptfile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadFixtures(t *testing.T) {
	for _, fx := range readExpected(t) {
		t.Run(fx.File, func(t *testing.T) {
			path := filepath.Join("testdata", fx.File)
			v, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range compareNode(v, fx.Value, fx.File, map[string]*Tensor{}) {
				t.Error(e)
			}

			// LoadReader must give the same result.
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			v, err = LoadReader(bytes.NewReader(data), int64(len(data)), fx.File)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range compareNode(v, fx.Value, fx.File, map[string]*Tensor{}) {
				t.Error(e)
			}
		})
	}
}

func TestLoadStateDict(t *testing.T) {
	wantKeys := "conv.weight conv.bias bn.weight bn.bias bn.running_mean bn.running_var bn.num_batches_tracked fc.weight fc.bias"
	for _, name := range []string{"student.pt", "student_legacy.pt"} {
		sd, err := LoadStateDict(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(sd.Keys, " "); got != wantKeys {
			t.Errorf("%s: keys %q, want %q", name, got, wantKeys)
		}
		n, _ := sd.Tensor("bn.num_batches_tracked")
		if v, err := n.Int64s(); err != nil || len(n.Shape) != 0 || v[0] != 7 {
			t.Errorf("%s: num_batches_tracked = %v %v (shape %v), want 7", name, v, err, n.Shape)
		}
	}
	q, err := LoadStateDict(filepath.Join("testdata", "quantile.pt"))
	if err != nil {
		t.Fatal(err)
	}
	if q.Len() != 4 {
		t.Errorf("quantile.pt has %d entries, want 4", q.Len())
	}

	for _, tc := range []struct{ file, want string }{
		{"tensor.pt", "not a state dict: the file holds a tensor"},
		{"misc.pt", `value of key "list" is a list`},
	} {
		_, err := LoadStateDict(filepath.Join("testdata", tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.file) {
			t.Errorf("LoadStateDict(%s) error = %v, want it to name the file and say %q", tc.file, err, tc.want)
		}
	}
}

func TestSharedStorage(t *testing.T) {
	for _, name := range []string{"shared.pt", "shared_legacy.pt"} {
		sd, err := LoadStateDict(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		x, _ := sd.Tensor("x")
		y, _ := sd.Tensor("y")
		z, _ := sd.Tensor("z")
		other, _ := sd.Tensor("other")
		if !x.SharesStorage(y) || !x.SharesStorage(z) || x.SharesStorage(other) {
			t.Errorf("%s: wrong storage sharing", name)
		}
		if len(x.Storage) != 12*4 || x.Offset != 2 || y.Offset != 6 || z.Strides[0] != 3 {
			t.Errorf("%s: storage %d bytes, offsets %d %d, z strides %v", name, len(x.Storage), x.Offset, y.Offset, z.Strides)
		}
		yv, _ := y.Float32s()
		if want := []float32{6, 7, 8, 9, 10, 11}; !equalSlices(yv, want) {
			t.Errorf("%s: y = %v, want %v", name, yv, want)
		}
		zv, _ := z.Float32s()
		if want := []float32{0, 3, 6, 9}; !equalSlices(zv, want) {
			t.Errorf("%s: z = %v, want %v", name, zv, want)
		}
	}
}

func equalSlices[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// tensorPickle returns a pickle of one tensor on storage "0".
func tensorPickle(storageClass string, numel, offset int64, shape, stride []int64) []byte {
	p := newTestPickler()
	tensorOn(p, storageClass, "0", numel, offset, shape, stride)
	p.op('.')
	return p.buf.Bytes()
}

// tensorOn pushes a tensor on storage key of numel elements.
func tensorOn(p *pickler, storageClass, key string, numel, offset int64, shape, stride []int64) {
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op('(', '(')
	p.str("storage")
	p.global("torch", storageClass)
	p.str(key)
	p.str("cpu")
	p.int(numel)
	p.op('t', 'Q')
	p.int(offset)
	p.intTuple(shape)
	p.intTuple(stride)
	p.bool(false)
	p.emptyOrderedDict()
	p.op('t', 'R')
}

func newTestPickler() *pickler {
	p := &pickler{memo: map[string]uint32{}}
	p.buf.WriteString("\x80\x02")
	return p
}

// testArchive builds a torch.save-like zip archive by hand.
func testArchive(t *testing.T, top string, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range sortedKeys(files) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: top + "/" + name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(files[name])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLoadErrors(t *testing.T) {
	floats8 := make([]byte, 8)
	tensorPt := readTestdata(t, "tensor.pt")
	legacy := readTestdata(t, "tensor_legacy.pt")

	// tensor.pt with one byte of its storage changed.
	corrupt := append([]byte{}, tensorPt...)
	zr, err := zip.NewReader(bytes.NewReader(tensorPt), int64(len(tensorPt)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name == "tensor/data/0" {
			off, _ := f.DataOffset()
			corrupt[off] ^= 0xff
		}
	}

	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "not a PyTorch file: neither a zip archive nor a pickle"},
		{"text", []byte("hello, world\n"), "not a PyTorch file"},
		{"empty", nil, "the file is empty"},
		{"truncated zip", tensorPt[:len(tensorPt)-30], "corrupt or truncated zip archive"},
		{"truncated zip header", tensorPt[:10], "corrupt or truncated zip archive"},
		{"corrupt storage", corrupt, "tensor/data/0: checksum mismatch"},
		{"zip without data.pkl", testArchive(t, "x", map[string][]byte{"version": []byte("3\n")}), "has no x/data.pkl"},
		{"zip without folder", func() []byte {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			zw.Create("data.pkl")
			zw.Close()
			return buf.Bytes()
		}(), `file "data.pkl" in the zip archive is not in a folder`},
		{"torchscript", testArchive(t, "m", map[string][]byte{"data.pkl": nil, "constants.pkl": nil}), "TorchScript archive"},
		{"missing storage", testArchive(t, "x", map[string][]byte{
			"data.pkl": tensorPickle("FloatStorage", 2, 0, []int64{2}, []int64{1}),
		}), "x/data/0 is missing from the archive"},
		{"short storage", testArchive(t, "x", map[string][]byte{
			"data.pkl": tensorPickle("FloatStorage", 100, 0, []int64{2}, []int64{1}),
			"data/0":   floats8,
		}), "x/data/0 has 8 bytes but the pickle expects 400"},
		{"view past end", testArchive(t, "x", map[string][]byte{
			"data.pkl": tensorPickle("FloatStorage", 2, 1, []int64{4}, []int64{1}),
			"data/0":   floats8,
		}), "needs 5 elements but its storage has 2"},
		{"size overflow", testArchive(t, "x", map[string][]byte{
			"data.pkl": tensorPickle("FloatStorage", 2, 0, []int64{1 << 40, 1 << 40}, []int64{1, 1}),
			"data/0":   floats8,
		}), "overflows int64"},
		{"offset overflow", testArchive(t, "x", map[string][]byte{
			"data.pkl": tensorPickle("FloatStorage", 2, 1<<62, []int64{3}, []int64{1 << 62}),
			"data/0":   floats8,
		}), "overflows int64"},
		{"negative stride", testArchive(t, "x", map[string][]byte{
			"data.pkl": tensorPickle("FloatStorage", 2, 1, []int64{2}, []int64{-1}),
			"data/0":   floats8,
		}), "negative stride"},
		{"unsupported dtype", testArchive(t, "x", map[string][]byte{
			"data.pkl": tensorPickle("ComplexFloatStorage", 1, 0, []int64{1}, []int64{1}),
			"data/0":   floats8,
		}), "unsupported dtype complex64 (storage class torch.ComplexFloatStorage)"},
		{"unsupported class", testArchive(t, "x", map[string][]byte{
			"data.pkl": []byte("\x80\x02ctorch.nn.modules.conv\nConv2d\n)\x81."),
		}), "unsupported Python class torch.nn.modules.conv.Conv2d"},
		{"non-string key", testArchive(t, "x", map[string][]byte{
			"data.pkl": []byte("\x80\x02}(K\x01K\x02u."),
		}), "dict key 1 is int; only str keys are supported"},
		{"recursive list", testArchive(t, "x", map[string][]byte{
			"data.pkl": []byte("\x80\x02]q\x00h\x00a."),
		}), "contains itself"},
		{"huge string length", testArchive(t, "x", map[string][]byte{
			"data.pkl": []byte("\x80\x02X\xff\xff\xff\x7fabc."),
		}), "truncated pickle"},
		{"pickle error", testArchive(t, "x", map[string][]byte{
			"data.pkl": []byte("\x80\x02t."),
		}), "pickle:"},
		{"legacy truncated", legacy[:len(legacy)-4], "truncated file: storage"},
		{"legacy truncated pickle", legacy[:40], "truncated pickle"},
		{"legacy wrong magic", []byte("\x80\x02K\x05."), "without the magic number"},
		{"tar", append(make([]byte, 257), []byte("ustar\x0000")...), "tar format"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := LoadBytes(tc.data, "case.pt")
			if err == nil {
				t.Fatalf("got %#v, want an error", v)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "load case.pt: ") || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want it to start with %q and contain %q", msg, "load case.pt: ", tc.want)
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.pt"), "no such file"},
		{dir, "is a directory"},
	} {
		_, err := Load(tc.path)
		if err == nil || err.Error() != "load "+tc.path+": "+errSuffix(err.Error(), tc.want) {
			t.Errorf("Load(%s) error = %v, want %q after the path", tc.path, err, tc.want)
		}
	}
}

// errSuffix returns the part of msg from want on, or "" if want is absent.
func errSuffix(msg, want string) string {
	if i := strings.Index(msg, want); i >= 0 {
		return msg[i:]
	}
	return ""
}

// Every prefix of every fixture must fail cleanly (or load), never panic.
func TestLoadTruncated(t *testing.T) {
	for _, fx := range readExpected(t) {
		data := readTestdata(t, fx.File)
		for n := 0; n < len(data); n++ {
			if v, err := LoadBytes(data[:n], fx.File); err == nil {
				t.Errorf("%s truncated to %d bytes loaded as %#v", fx.File, n, v)
			}
		}
	}
}

// The fixture checks must notice wrong values, layouts and sharing.
func TestCompareNodeCatchesDifferences(t *testing.T) {
	fxs := readExpected(t)
	byFile := map[string]node{}
	for _, fx := range fxs {
		byFile[fx.File] = fx.Value
	}
	shared := mustLoad(t, "shared.pt").(*OrderedDict)
	copies := NewOrderedDict()
	for _, k := range shared.Keys {
		copies.Set(k, shared.Values[k].(*Tensor).Contiguous())
	}
	tn := mustLoad(t, "tensor.pt").(*Tensor)
	changed := tn.Contiguous()
	changed.Storage[5] ^= 1
	for _, tc := range []struct {
		name string
		got  any
		want string
	}{
		{"other file", mustLoad(t, "student.pt"), "tensor.pt"},
		{"changed value", changed, "tensor.pt"},
		{"copies instead of views", copies, "shared.pt"},
	} {
		if errs := compareNode(tc.got, byFile[tc.want], tc.want, map[string]*Tensor{}); len(errs) == 0 {
			t.Errorf("%s: no difference found", tc.name)
		}
	}
}

// Files that PyTorch writes on other machines or that other zip writers
// produce: big-endian data and compressed entries.
func TestLoadVariants(t *testing.T) {
	want := []float32{1.5, -2}
	le := []byte{0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0}
	be := []byte{0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0}
	pkl := tensorPickle("FloatStorage", 2, 0, []int64{2}, []int64{1})

	deflated := func() []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, f := range []struct {
			name string
			data []byte
		}{{"d/data.pkl", pkl}, {"d/data/0", le}, {"d/version", []byte("3\n")}} {
			w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate})
			if err != nil {
				t.Fatal(err)
			}
			w.Write(f.data)
		}
		zw.Close()
		return buf.Bytes()
	}()

	// tensor_legacy.pt as a big-endian machine would write it: sys_info
	// says little_endian=False and the element count and the data (one
	// storage of six floats, at the end) are big-endian.
	legacy := readTestdata(t, "tensor_legacy.pt")
	bigLegacy := append([]byte{}, legacy...)
	i := bytes.Index(bigLegacy, []byte("little_endianq"))
	j := bytes.IndexByte(bigLegacy[i:], 0x88) // NEWTRUE
	bigLegacy[i+j] = 0x89                     // NEWFALSE
	tail := bigLegacy[len(bigLegacy)-32:]
	for k := 0; k < 4; k++ {
		tail[k], tail[7-k] = tail[7-k], tail[k]
	}
	for e := 8; e < 32; e += 4 {
		tail[e], tail[e+1], tail[e+2], tail[e+3] = tail[e+3], tail[e+2], tail[e+1], tail[e]
	}
	legacyWant, err := mustLoad(t, "tensor_legacy.pt").(*Tensor).Float32s()
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		data []byte
		want []float32
	}{
		{"little-endian byteorder record", testArchive(t, "x", map[string][]byte{"data.pkl": pkl, "data/0": le, "byteorder": []byte("little")}), want},
		{"big-endian byteorder record", testArchive(t, "x", map[string][]byte{"data.pkl": pkl, "data/0": be, "byteorder": []byte("big")}), want},
		{"deflated entries", deflated, want},
		{"big-endian legacy", bigLegacy, legacyWant},
	} {
		v, err := LoadBytes(tc.data, tc.name)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got, err := v.(*Tensor).Float32s()
		if err != nil || !equalSlices(got, tc.want) {
			t.Errorf("%s: got %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

// legacyFile builds a file in the legacy format around main, a pickle
// (without PROTO and STOP) that pushes the saved object, with the given
// float32 storages.
func legacyFile(main func(p *pickler), keys []string, storages [][]float32) []byte {
	var out bytes.Buffer
	pick := func(body func(p *pickler)) {
		p := newTestPickler()
		body(p)
		p.op('.')
		out.Write(p.buf.Bytes())
	}
	pick(func(p *pickler) {
		p.op(0x8a, 10)
		p.buf.Write([]byte{0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19})
	})
	pick(func(p *pickler) { p.int(1001) })
	pick(func(p *pickler) { p.op('}') })
	pick(main)
	pick(func(p *pickler) {
		p.op(']', '(')
		for _, k := range keys {
			p.str(k)
		}
		p.op('e')
	})
	for _, s := range storages {
		out.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(s))))
		out.Write(mustTensor(FromFloat32s([]int64{int64(len(s))}, s)).Storage)
	}
	return out.Bytes()
}

// legacyViewTensor pushes a tensor of the given size on a view of storage
// "root" (six floats) that starts at element off and has n elements.
func legacyViewTensor(p *pickler, off, n, size int64) {
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op('(', '(')
	p.str("storage")
	p.global("torch", "FloatStorage")
	p.str("root")
	p.str("cpu")
	p.int(6)
	p.str("view")
	p.int(off)
	p.int(n)
	p.op(0x87, 't', 'Q') // TUPLE3 (view metadata), TUPLE, BINPERSID
	p.int(0)
	p.intTuple([]int64{size})
	p.intTuple([]int64{1})
	p.bool(false)
	p.emptyOrderedDict()
	p.op('t', 'R')
}

// Old PyTorch versions saved storage views in the legacy format.
func TestLegacyStorageViews(t *testing.T) {
	root := [][]float32{{0, 1, 2, 3, 4, 5}}
	ok := legacyFile(func(p *pickler) { legacyViewTensor(p, 2, 3, 3) }, []string{"root"}, root)
	v, err := LoadBytes(ok, "view.pt")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := v.(*Tensor).Float32s(); !equalSlices(got, []float32{2, 3, 4}) {
		t.Errorf("view = %v, want [2 3 4]", got)
	}

	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"view past its root", legacyFile(func(p *pickler) { legacyViewTensor(p, 4, 3, 3) }, []string{"root"}, root),
			"storage view view (bytes 16 to 28) runs past the end of storage root (24 bytes)"},
		{"tensor past its view", legacyFile(func(p *pickler) { legacyViewTensor(p, 0, 2, 3) }, []string{"root"}, root),
			"needs 3 elements but its storage has 2"},
		{"storage not listed", legacyFile(func(p *pickler) { legacyViewTensor(p, 0, 2, 2) }, nil, nil),
			"storage root has no data in the file"},
		{"unknown storage listed", legacyFile(func(p *pickler) { legacyViewTensor(p, 0, 2, 2) }, []string{"root", "x"}, root),
			"storage x is listed but not used"},
		{"wrong element count", legacyFile(func(p *pickler) { legacyViewTensor(p, 0, 2, 2) }, []string{"root"}, [][]float32{{1, 2}}),
			"storage root has 2 elements in the file but 6 in the pickle"},
	} {
		_, err := LoadBytes(tc.data, "view.pt")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestLoadTorchValues(t *testing.T) {
	floats8 := make([]byte, 8)
	param := newTestPickler()
	param.global("torch.nn.parameter", "Parameter")
	tp := tensorPickle("FloatStorage", 2, 0, []int64{2}, []int64{1})
	param.buf.Write(tp[2 : len(tp)-1]) // the tensor, without PROTO and STOP
	param.op(0x85, 0x81, '.')          // TUPLE1, NEWOBJ

	for _, tc := range []struct {
		name string
		pkl  []byte
		want string
	}{
		{"dtype, size, device", []byte("\x80\x02(ctorch\nfloat32\nctorch\nSize\nK\x02K\x03\x86\x85Rctorch\ndevice\nX\x04\x00\x00\x00cuda\x85Rctorch\ndevice\nX\x04\x00\x00\x00cudaK\x01\x86Rt."),
			"[float32 [2 3] cuda cuda:1]"},
		{"parameter via NEWOBJ", param.buf.Bytes(), "tensor float32 [2] requires_grad=true"},
		{"big int", []byte("\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01."), "18446744073709551616"},
	} {
		v, err := LoadBytes(testArchive(t, "x", map[string][]byte{"data.pkl": tc.pkl, "data/0": floats8}), tc.name)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got := fmt.Sprintf("%v", v)
		if tn, ok := v.(*Tensor); ok {
			got = fmt.Sprintf("tensor %v %v requires_grad=%v", tn.DType, tn.Shape, tn.RequiresGrad)
		}
		if b, ok := v.(*big.Int); ok {
			got = b.String()
		}
		if got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}
