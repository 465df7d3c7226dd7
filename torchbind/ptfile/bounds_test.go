package ptfile

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// loadCost loads data and returns the error, the time taken and the bytes
// allocated meanwhile.
func loadCost(o LoadOptions, data []byte) (any, error, time.Duration, uint64) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	v, err := o.LoadBytes(context.Background(), data, "crafted.pt")
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	return v, err, took, after.TotalAlloc - before.TotalAlloc
}

// Every crafted input fails fast, with a *FormatError that says why, and
// without allocating more than a small multiple of its size.
func TestCraftedInputsFailFast(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"LONG4 of 1 MiB", testArchiveBytes(map[string][]byte{"data.pkl": long4Pickle(1 << 20)}), "integer of 1048576 bytes in the pickle; at most 64 are supported"},
		{"LONG4 of 16 MiB", testArchiveBytes(map[string][]byte{"data.pkl": long4Pickle(16 << 20)}), "integer of 16777216 bytes"},
		{"LONG4 of 65 bytes", testArchiveBytes(map[string][]byte{"data.pkl": long4Pickle(65)}), "integer of 65 bytes"},
		{"LONG of 1 MiB digits", testArchiveBytes(map[string][]byte{"data.pkl": longTextPickle(1 << 20)}), "number of 1048577 characters in the pickle; at most 64"},
		{"nested frames", testArchiveBytes(map[string][]byte{"data.pkl": nestedFramesPickle(10000)}), "a frame starts inside another frame"},
		{"deep marks", testArchiveBytes(map[string][]byte{"data.pkl": deepMarksPickle(100000)}), "marks nested more than 1000 deep"},
		{"deflated zeros", deflatedZeros(t, 64<<20), "expand to 67108864, more than 16 times"},
		{"overlapping records", overlappingArchive(1 << 16), "x/data/1: entry overlaps other entries"},
		{"legacy LONG4", long4Pickle(1 << 20), "magic number: opcode at byte 2: integer of 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err, took, alloc := loadCost(LoadOptions{}, tc.data)
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a *FormatError saying %q", err, tc.want)
			}
			if took > time.Second {
				t.Errorf("took %v", took)
			}
			if limit := 4*uint64(len(tc.data)) + 1<<20; alloc > limit {
				t.Errorf("allocated %d bytes for %d bytes of input", alloc, len(tc.data))
			}
			t.Logf("%d bytes: %v, %d bytes allocated: %v", len(tc.data), took, alloc, err)
		})
	}
}

// A 2 KB file whose one tensor has zero strides expands to 1.3 GB: Load
// refuses it unless the caller allows the expansion, and never materialises
// it.
func TestExpandedTensorBounded(t *testing.T) {
	data := expandedMu()
	_, err, took, alloc := loadCost(LoadOptions{}, data)
	var le *LimitError
	if !errors.As(err, &le) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error %v, want a *LimitError", err)
	}
	if want := int64(384 * 928 * 928 * 4); le.Size != want || le.Limit != int64(len(data))+DefaultMaxExpansion {
		t.Errorf("LimitError %+v, want size %d and limit %d", le, want, int64(len(data))+DefaultMaxExpansion)
	}
	if alloc > 1<<20 {
		t.Errorf("refusing %d bytes allocated %d bytes", len(data), alloc)
	}
	t.Logf("%d bytes: %v, %d bytes allocated: %v", len(data), took, alloc, err)

	for _, o := range []LoadOptions{{MaxExpansion: -1}, {MaxExpansion: 2 << 30}} {
		v, err, _, alloc := loadCost(o, data)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		tn := v.(*Tensor)
		if n, _ := tn.Numel(); n != 384*928*928 || len(tn.Storage) != 384*4 || alloc > 1<<20 {
			t.Errorf("%+v: %d elements on %d bytes, %d bytes allocated", o, n, len(tn.Storage), alloc)
		}
	}
	if _, err := (LoadOptions{MaxExpansion: 1 << 30}).LoadBytes(context.Background(), data, "mu.pt"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("explicit 1 GiB bound: error %v, want ErrTooLarge", err)
	}
}

// The bound counts each tensor once, and views that together cover their
// storage once are within it whatever its size.
func TestExpansionCountsViews(t *testing.T) {
	v, err := (LoadOptions{MaxExpansion: 1}).LoadBytes(context.Background(), readTestdata(t, "shared.pt"), "shared.pt")
	if err != nil {
		t.Fatal(err)
	}
	if v.(*OrderedDict).Len() != 4 {
		t.Errorf("shared.pt has %d entries", v.(*OrderedDict).Len())
	}
	// Two tensors each viewing the whole storage need twice its bytes.
	p := newTestPickler()
	p.op(']', '(')
	tensorOn(p, "FloatStorage", "0", 1024, 0, []int64{1024}, []int64{1})
	tensorOn(p, "FloatStorage", "0", 1024, 0, []int64{32, 32}, []int64{32, 1})
	p.op('e', '.')
	data := testArchiveBytes(map[string][]byte{"data.pkl": p.buf.Bytes(), "data/0": make([]byte, 4096)})
	_, err = (LoadOptions{MaxExpansion: 2048}).LoadBytes(context.Background(), data, "twice.pt")
	var le *LimitError
	if !errors.As(err, &le) || le.Size != 8192 {
		t.Errorf("error %v, want a *LimitError of 8192 bytes", err)
	}
}

// A deflated archive within the ratio still loads.
func TestDeflatedWithinRatio(t *testing.T) {
	if _, err := LoadBytes(deflatedZeros(t, 64<<10), "zeros.pt"); err != nil {
		t.Errorf("64 KiB of deflated zeros: %v", err)
	}
	if _, err := LoadBytes(deflatedZeros(t, 256<<10), "zeros.pt"); err == nil || !strings.Contains(err.Error(), "more than 16 times") {
		t.Errorf("256 KiB of deflated zeros: error %v, want the ratio refused", err)
	}
}

// cancellingReader cancels its context when it is first read.
type cancellingReader struct {
	r      *bytes.Reader
	cancel context.CancelFunc
}

func (c *cancellingReader) ReadAt(p []byte, off int64) (int, error) {
	c.cancel()
	return c.r.ReadAt(p, off)
}

func TestLoadContext(t *testing.T) {
	path := filepath.Join("testdata", "student.pt")
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := LoadContext(ctx, path); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err := LoadContext(ctx, path)
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "load "+path+": ") {
		t.Errorf("cancelled: error %v, want one that names the file and wraps context.Canceled", err)
	}
	var fe *FormatError
	if errors.As(err, &fe) {
		t.Errorf("a cancelled load is a *FormatError: %v", err)
	}

	// Cancelled while the file is read: the decoding stops too.
	for _, name := range []string{"student.pt", "student_legacy.pt"} {
		data := readTestdata(t, name)
		ctx, cancel := context.WithCancel(context.Background())
		_, err = LoadOptions{}.LoadReader(ctx, &cancellingReader{bytes.NewReader(data), cancel}, int64(len(data)), name)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s cancelled during the read: error %v", name, err)
		}
	}

	// The unpickler stops between opcodes.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	l := &loader{ctx: ctx, storages: map[string]*storageRec{}}
	if _, err := l.unpickle([]byte("\x80\x02]q\x00.")); !errors.Is(err, context.Canceled) {
		t.Errorf("unpickle with a cancelled context: error %v", err)
	}
}

func TestErrorKinds(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pt")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var fe *FormatError
	if _, err := Load(empty); !errors.Is(err, ErrNotPTFile) || !errors.As(err, &fe) {
		t.Errorf("empty file: error %v, want a *FormatError for ErrNotPTFile", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.pt")); !errors.Is(err, fs.ErrNotExist) || errors.As(err, &fe) {
		t.Errorf("missing file: error %v, want fs.ErrNotExist and no *FormatError", err)
	}
	if _, err := LoadBytes(readTestdata(t, "tensor.pt")[:100], "cut.pt"); !errors.As(err, &fe) || errors.Is(err, ErrNotPTFile) || errors.Is(err, ErrTooLarge) {
		t.Errorf("truncated file: error %v, want a *FormatError only", err)
	}
	if _, err := LoadStateDict(filepath.Join("testdata", "tensor.pt")); !errors.As(err, &fe) {
		t.Errorf("state dict of a tensor: error %v, want a *FormatError", err)
	}
	short := &LimitError{What: "x", Size: 3 << 30, Limit: 1 << 30}
	if got := short.Error(); got != "x would take 3221225472 bytes (3.0 GiB), more than the limit of 1073741824 bytes (1.0 GiB)" {
		t.Errorf("LimitError message %q", got)
	}
}

// goInternals are fragments that show a Go value or type in a message.
var goInternals = []string{"*types.", "types.", "&{", "&[", "0xc000", "[]interface", "map[", "*big.Int", "*ptfile", "runtime error", "%!", "nlpodyssey", "<nil>", "Callable", "PyNewable", "DictSetter", "ListAppender", "Class.", "PyDictSet", "Reconstructor"}

// shownInternal returns the first fragment of goInternals that msg, an
// error about input, shows ("" when none). A fragment the input itself
// holds is let pass: the message may quote the input (the first bytes of a
// file it cannot read, a class name).
func shownInternal(msg string, input []byte) string {
	for _, bad := range goInternals {
		if strings.Contains(msg, bad) && !bytes.Contains(input, []byte(bad)) {
			return bad
		}
	}
	return ""
}

// No error of the loader prints Go internals, whatever the input.
func TestErrorsShowNoGoInternals(t *testing.T) {
	check := func(name string, data []byte) {
		for _, d := range [][]byte{data, fuzzArchive(data)} {
			_, err := LoadBytes(d, "f.pt")
			if err == nil {
				continue
			}
			if bad := shownInternal(err.Error(), d); bad != "" {
				t.Errorf("%s: error shows %q: %v", name, bad, err)
			}
		}
	}
	for name, data := range corpus(t) {
		check(name, data)
	}
	for name, p := range map[string][]byte{
		"reduce non-callable": []byte("\x80\x02K\x01)R."),
		"reduce non-tuple":    []byte("\x80\x02ctorch\nSize\nK\x01R."),
		"newobj non-class":    []byte("\x80\x02K\x01)\x81."),
		"build":               []byte("\x80\x02K\x01}b."),
		"setitems on int":     []byte("\x80\x02K\x01(K\x01K\x02u."),
		"appends on dict":     []byte("\x80\x02}(K\x01e."),
		"odd dict":            []byte("\x80\x02(K\x01d."),
		"big int offset":      bigOffsetPickle(),
		"list as key":         []byte("\x80\x02}]K\x01s."),
		"object class":        []byte("\x80\x02c__builtin__\nobject\n."),
		"obj of a tuple":      []byte("\x80\x02(X\x07\x00\x00\x00storage\x85o."),
		"object.__new__":      []byte("\x80\x02c__builtin__\nobject\nK\x01\x85\x81."),
		"reconstructor":       []byte("\x80\x02ccopy_reg\n_reconstructor\nK\x01K\x02\x86R."),
		"OrderedDict(1)":      []byte("\x80\x02ccollections\nOrderedDict\nK\x01\x85R."),
		"OrderedDict BUILD":   []byte("\x80\x02ccollections\nOrderedDict\n)R}K\x01K\x02sb."),
		"bytes storage key":   []byte("\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nC\x010X\x03\x00\x00\x00cpuK\x02tQ."),
	} {
		check(name, p)
	}
}

// bigOffsetPickle returns a pickle of a tensor whose storage offset is
// 2**64.
func bigOffsetPickle() []byte {
	p := newTestPickler()
	p.global("torch._utils", "_rebuild_tensor")
	p.op('(', '(')
	p.str("storage")
	p.global("torch", "FloatStorage")
	p.str("0")
	p.str("cpu")
	p.int(2)
	p.op('t', 'Q')
	p.op(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1) // LONG1 2**64
	p.intTuple([]int64{1})
	p.intTuple([]int64{1})
	p.op('t', 'R', '.')
	return p.buf.Bytes()
}

func TestIntOutOfRange(t *testing.T) {
	_, err := LoadBytes(fuzzArchive(bigOffsetPickle()), "big.pt")
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "storage offset: integer out of range in pickle") {
		t.Errorf("error %v, want a *FormatError saying the storage offset is out of range", err)
	}
}

// corpus returns the seed corpus of FuzzLoad by file name.
func corpus(t *testing.T) map[string][]byte {
	t.Helper()
	dirs := []string{filepath.Join("testdata", "fuzz", "FuzzLoad")}
	if extra := os.Getenv("PTFILE_EXTRA_CORPUS"); extra != "" {
		dirs = append(dirs, extra) // for example the fuzzing cache, after a -fuzz run
	}
	out := map[string][]byte{}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			data, err := corpusBytes(raw)
			if err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			out[e.Name()] = data
		}
	}
	return out
}

// corpusBytes decodes a corpus file of one []byte value.
func corpusBytes(raw []byte) ([]byte, error) {
	text, ok := strings.CutPrefix(string(raw), "go test fuzz v1\n[]byte(")
	text, ok2 := strings.CutSuffix(strings.TrimSpace(text), ")")
	if !ok || !ok2 {
		return nil, errors.New("not a corpus file of one []byte")
	}
	s, err := strconv.Unquote(text)
	return []byte(s), err
}

// No input of the corpus (under 1 MB) takes over 5 s or allocates over
// 1 GiB, as a whole file or as the pickle of an archive.
func TestCorpusBounded(t *testing.T) {
	var worstTime time.Duration
	var worstAlloc uint64
	for name, data := range corpus(t) {
		if len(data) >= 1<<20 {
			continue
		}
		for _, d := range [][]byte{data, fuzzArchive(data)} {
			_, _, took, alloc := loadCost(LoadOptions{}, d)
			if took > 5*time.Second || alloc > 1<<30 {
				t.Errorf("%s: %v and %d bytes allocated", name, took, alloc)
			}
			worstTime, worstAlloc = max(worstTime, took), max(worstAlloc, alloc)
		}
	}
	t.Logf("slowest load %v, largest allocation %d bytes", worstTime, worstAlloc)
}
