package ptfile

import (
	"archive/zip"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/internal/fuzzguard"
)

// FuzzLoad feeds arbitrary bytes to LoadReader. Loading must never panic,
// hang or allocate far more than the input; its errors must be typed and
// free of Go internals; what loads must be made of valid views and survive
// a Save and Load round trip. Plain go test runs the seed corpus under
// testdata/fuzz/FuzzLoad (which TestGenerateFuzzCorpus writes).
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.pt"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		recoverHook = func(r any, stack []byte) {
			if culprit := panicCulprit(stack); !strings.HasPrefix(culprit, "github.com/nlpodyssey/gopickle/") {
				t.Fatalf("panic in %s: %v\n%s", culprit, r, stack)
			}
		}
		defer func() { recoverHook = nil }()
		// As a whole file, and as the pickle of a well-formed archive (so
		// that mutations of the pickle are not all stopped by the
		// archive's checksums).
		fuzzguard.Check(t, len(data), func() {
			checkLoad(t, data)
			checkLoad(t, fuzzArchive(data))
		})
	})
}

// panicCulprit returns the function that panicked, from a goroutine stack:
// the first function below the panic call that is not in the runtime.
// Panics inside gopickle are expected (it does not check its stacks
// everywhere); panics anywhere else are bugs.
func panicCulprit(stack []byte) string {
	lines := strings.Split(string(stack), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "panic(") {
			continue
		}
		for _, l := range lines[i+1:] {
			if !strings.HasPrefix(l, "\t") && !strings.HasPrefix(l, "runtime.") && !strings.HasPrefix(l, "internal/runtime") {
				return l
			}
		}
	}
	return "unknown function"
}

// fuzzArchive returns a zip archive with pkl as its data.pkl and storages
// "0" to "15" of 256 bytes each.
func fuzzArchive(pkl []byte) []byte {
	storages := make([]*storageOut, 16)
	for i := range storages {
		b := make([]byte, 256)
		for j := range b {
			b[j] = byte(i + j)
		}
		storages[i] = &storageOut{key: fmt.Sprint(i), data: b}
	}
	var buf bytes.Buffer
	if err := writeArchive(&buf, "archive", pkl, storages); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func checkLoad(t *testing.T, data []byte) {
	v, err := LoadReader(bytes.NewReader(data), int64(len(data)), "fuzz.pt")
	if err != nil {
		if !strings.HasPrefix(err.Error(), "load fuzz.pt: ") {
			t.Fatalf("error does not name the file: %v", err)
		}
		var fe *FormatError
		if !errors.As(err, &fe) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("error is neither a *FormatError nor ErrTooLarge: %v", err)
		}
		if bad := shownInternal(err.Error(), data); bad != "" {
			t.Fatalf("error shows %q: %v", bad, err)
		}
		return
	}
	packedBytes, err := checkLoaded(v, 0)
	if err != nil {
		t.Fatal(err)
	}
	if packedBytes > 1<<22 {
		return
	}
	var buf bytes.Buffer
	if err := SaveWriter(&buf, "", v); err != nil {
		if strings.Contains(err.Error(), "cannot save a value of type") {
			return // for example *big.Int or DType
		}
		t.Fatalf("SaveWriter of a loaded value: %v", err)
	}
	w, err := LoadBytes(buf.Bytes(), "round trip")
	if err != nil {
		t.Fatalf("loading what SaveWriter wrote: %v", err)
	}
	if a, b := summary(v), summary(w); a != b {
		t.Fatalf("round trip changed the value:\n%s\n%s", a, b)
	}
}

// checkLoaded validates every tensor in v and returns the bytes the tensors
// take when packed.
func checkLoaded(v any, depth int) (int64, error) {
	if depth > maxNesting+1 {
		return 0, fmt.Errorf("value nested deeper than the loader allows")
	}
	var total int64
	switch x := v.(type) {
	case *Tensor:
		if err := x.Validate(); err != nil {
			return 0, fmt.Errorf("Load returned an invalid tensor: %v", err)
		}
		n, _ := x.Numel()
		size := n * int64(x.DType.Size())
		if size <= 1<<20 {
			if c := x.Contiguous(); int64(len(c.Storage)) != size {
				return 0, fmt.Errorf("Contiguous gave %d bytes, want %d", len(c.Storage), size)
			}
		}
		return size, nil
	case *OrderedDict:
		if err := x.check(); err != nil {
			return 0, err
		}
		for _, k := range x.Keys {
			n, err := checkLoaded(x.Values[k], depth+1)
			if err != nil {
				return 0, err
			}
			total += n
		}
	case []any:
		for _, e := range x {
			n, err := checkLoaded(e, depth+1)
			if err != nil {
				return 0, err
			}
			total += n
		}
	}
	if total < 0 { // overflow of many huge expanded tensors
		total = 1 << 62
	}
	return total, nil
}

// summary prints a value with its tensors' contents, independent of layout.
func summary(v any) string {
	var b strings.Builder
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case *Tensor:
			c := x.Contiguous()
			fmt.Fprintf(&b, "tensor(%v %v %v %x)", x.DType, x.Shape, x.RequiresGrad, c.Storage)
		case *OrderedDict:
			b.WriteString("{")
			for _, k := range x.Keys {
				fmt.Fprintf(&b, "%q: ", k)
				walk(x.Values[k])
				b.WriteString(", ")
			}
			b.WriteString("}")
		case []any:
			b.WriteString("[")
			for _, e := range x {
				walk(e)
				b.WriteString(", ")
			}
			b.WriteString("]")
		case *big.Int:
			b.WriteString(x.String())
		default:
			fmt.Fprintf(&b, "%T(%v)", v, v)
		}
	}
	walk(v)
	return b.String()
}

var genCorpus = flag.Bool("gen-fuzz-corpus", false, "write the seed corpus of FuzzLoad to testdata/fuzz/FuzzLoad")

// TestGenerateFuzzCorpus writes the committed seed corpus of FuzzLoad: small
// fixtures, truncated and mangled variants, and hand-made pickles that probe
// the unpickler. It only runs with -gen-fuzz-corpus.
func TestGenerateFuzzCorpus(t *testing.T) {
	if !*genCorpus {
		t.Skip("run with -gen-fuzz-corpus to rewrite testdata/fuzz/FuzzLoad")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzLoad")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tensorPt := readTestdata(t, "tensor.pt")
	legacy := readTestdata(t, "tensor_legacy.pt")
	sharedLegacy := readTestdata(t, "shared_legacy.pt")
	write("tensor", tensorPt)
	write("tensor-legacy", legacy)
	write("shared-legacy", sharedLegacy)
	write("tensor-truncated", tensorPt[:len(tensorPt)/2])
	write("legacy-truncated", legacy[:len(legacy)-5])
	for i, pos := range []int{40, 100, 200, 300} {
		if pos < len(legacy) {
			m := append([]byte{}, legacy...)
			m[pos] ^= 0x55
			write(fmt.Sprintf("legacy-mangled-%d", i), m)
		}
	}
	floats8 := make([]byte, 8)
	pickles := map[string][]byte{
		"view-past-end":   tensorPickle("FloatStorage", 2, 1, []int64{4}, []int64{1}),
		"huge-shape":      tensorPickle("FloatStorage", 2, 0, []int64{1 << 40, 1 << 40}, []int64{0, 0}),
		"expanded":        tensorPickle("FloatStorage", 2, 0, []int64{1000, 2}, []int64{0, 1}),
		"half":            tensorPickle("HalfStorage", 4, 0, []int64{2, 2}, []int64{1, 2}),
		"recursive-list":  []byte("\x80\x02]q\x00h\x00a."),
		"odd-dict":        []byte("\x80\x02(K\x01d."),
		"long1-empty":     []byte("\x80\x02\x8a\x00."),
		"bytes-key":       []byte("\x80\x02ccollections\nOrderedDict\n)RC\x01aK\x01s."),
		"huge-unicode":    []byte("\x80\x02X\xff\xff\xff\xffabc."),
		"huge-frame":      []byte("\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7f."),
		"deep-lists":      append(append([]byte("\x80\x02"), bytes.Repeat([]byte("]"), 2000)...), append(bytes.Repeat([]byte("a"), 1999), '.')...),
		"unknown-class":   []byte("\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R."),
		"set":             []byte("\x80\x04\x8f(K\x01\x90."),
		"module-pid":      []byte("\x80\x02(X\x06\x00\x00\x00moduleK\x01tQ."),
		"param-newobj":    []byte("\x80\x02ctorch.nn.parameter\nParameter\nN\x85\x81."),
		"dtype-and-size":  []byte("\x80\x02(ctorch\nfloat32\nctorch\nSize\nK\x02K\x03\x86\x85Rctorch\ndevice\nX\x04\x00\x00\x00cuda\x85Rt."),
		"memo-get-empty":  []byte("\x80\x02h\x05."),
		"pop-mark-empty":  []byte("\x80\x021."),
		"stack-global":    []byte("\x80\x04\x8c\x05torch\x8c\x0cFloatStorage\x93."),
		"reduce-non-call": []byte("\x80\x02K\x01)R."),
	}
	for name, p := range pickles {
		write("zip-"+name, testArchiveBytes(map[string][]byte{"data.pkl": p, "data/0": floats8}))
		write("pkl-"+name, p)
	}
	for _, name := range []string{"student.pt", "shared.pt", "misc.pt", "dtypes.pt", "parameter.pt"} {
		data := readTestdata(t, name)
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		top := strings.TrimSuffix(name, ".pt")
		write("pkl-"+top, readZipFile(t, zr, top+"/data.pkl"))
	}
	crafted := craftedSeeds(t)
	for name, data := range crafted {
		write(name, data)
	}
	write("legacy-big-count", func() []byte {
		m := append([]byte{}, legacy...)
		// The last storage's element count sits 8 bytes before its data.
		m[len(m)-6*4-8+7] = 0x7f
		return m
	}())
}

// testArchiveBytes is testArchive without a *testing.T.
func testArchiveBytes(files map[string][]byte) []byte {
	var t testing.T
	return testArchive(&t, "x", files)
}

// craftedSeeds returns the inputs that once cost quadratic time or inflated
// memory (see crafted_test.go), each small enough to commit.
func craftedSeeds(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"zip-long4-8k":        testArchiveBytes(map[string][]byte{"data.pkl": long4Pickle(8 << 10)}),
		"pkl-long4-8k":        long4Pickle(8 << 10),
		"pkl-long4-65":        long4Pickle(65),
		"pkl-long-text-8k":    longTextPickle(8 << 10),
		"pkl-nested-frames":   nestedFramesPickle(200),
		"pkl-deep-marks":      deepMarksPickle(5000),
		"expanded-mu":         expandedMu(),
		"deflated-zeros-4m":   deflatedZeros(t, 4<<20),
		"overlapping-records": overlappingArchive(1 << 10),
		"pkl-big-int-offset":  bigOffsetPickle(),
	}
}
