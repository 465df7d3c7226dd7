package ptfile

import (
	"archive/zip"
	"bytes"
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
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op('(', '(')
	p.str("storage")
	p.global("torch", storageClass)
	p.str("0")
	p.str("cpu")
	p.int(numel)
	p.op('t', 'Q')
	p.int(offset)
	p.intTuple(shape)
	p.intTuple(stride)
	p.bool(false)
	p.emptyOrderedDict()
	p.op('t', 'R', '.')
	return p.buf.Bytes()
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
