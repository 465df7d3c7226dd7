package ptfile

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/puad-go/puad/internal/pyref"
)

func mustLoad(t *testing.T, name string) any {
	t.Helper()
	v, err := Load(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustTensor(tn *Tensor, err error) *Tensor {
	if err != nil {
		panic(err)
	}
	return tn
}

func quantileDict(t *testing.T) map[string]*Tensor {
	m := map[string]*Tensor{}
	for k, v := range map[string]float32{
		"q_a_student": 0.25, "q_b_student": 1.75, "q_a_autoencoder": -0.5, "q_b_autoencoder": 1e-3,
	} {
		m[k] = mustTensor(FromFloat32s(nil, []float32{v}))
	}
	return m
}

// saveCases are the values the round trip and the PyTorch check write. The
// function returns the value and the value PyTorch should see (the same
// unless a view is written as a packed copy).
func saveCases(t *testing.T) []struct {
	file   string
	value  any
	want   any
	module string
} {
	transposed := mustLoad(t, "transposed.pt").(*Tensor)
	param := mustLoad(t, "parameter.pt").(*Tensor)
	shared := mustLoad(t, "shared.pt").(*OrderedDict)
	containers := NewOrderedDict()
	containers.Set("list", []any{int64(1), "s", nil, true, false, int64(-5), int64(1 << 40), int64(math.MinInt64)})
	inner := NewOrderedDict()
	inner.Set("t", mustTensor(FromInt64s([]int64{2}, []int64{3, -4})))
	inner.Set("b", mustTensor(FromBools([]int64{3}, []bool{true, false, true})))
	containers.Set("inner", inner)
	containers.Set("empty", NewOrderedDict())
	containers.Set("f64", mustTensor(FromFloat64s([]int64{1, 2}, []float64{math.Pi, -1e300})))

	type tc = struct {
		file   string
		value  any
		want   any
		module string
	}
	return []tc{
		{"student_go.pt", mustLoad(t, "student.pt"), nil, "TinyNet"},
		{"student_legacy_go.pt", mustLoad(t, "student_legacy.pt"), nil, "TinyNet"},
		{"quantile.pt", quantileDict(t), nil, ""},
		{"tensor_go.pt", mustTensor(FromFloat32s([]int64{2, 3}, []float32{1, -2, 3.5, 0, 1e-30, 7})), nil, ""},
		{"dtypes_go.pt", mustLoad(t, "dtypes.pt"), nil, ""},
		{"transposed_go.pt", transposed, transposed.Contiguous(), ""},
		{"shared_go.pt", shared, nil, ""},
		{"param_go.pt", param, nil, ""},
		{"containers_go.pt", containers, nil, ""},
	}
}

func TestSaveRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, c := range saveCases(t) {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join(dir, c.file)
			if err := Save(path, c.value); err != nil {
				t.Fatal(err)
			}
			got, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			want := c.want
			if want == nil {
				want = c.value
			}
			desc := describeValue(want, map[*byte]string{})
			raw := mustMarshal(desc)
			var n node
			mustUnmarshal(raw, &n)
			for _, e := range compareNode(got, n, c.file, map[string]*Tensor{}) {
				t.Error(e)
			}
		})
	}
}

// weightsOnlyOps are the opcodes that torch.load(..., weights_only=True)
// of PyTorch 1.13 accepts (torch/_weights_only_unpickler.py).
var weightsOnlyOps = []byte("aehJKMQqXb}])c\x8ajr(\x89\x81\x88N\x80RsuU.t\x85\x86\x87\x8f")

func TestSaveFormat(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "my.model.pt")
	if err := Save(path, mustLoad(t, "shared.pt")); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		off, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		if off%64 != 0 {
			t.Errorf("%s: data at offset %d, want a multiple of 64", f.Name, off)
		}
		if f.Method != zip.Store {
			t.Errorf("%s: compression method %d, want stored", f.Name, f.Method)
		}
	}
	// x, y and z share one storage; "other" has its own.
	if got, want := strings.Join(names, " "), "my.model/data.pkl my.model/data/0 my.model/data/1 my.model/version"; got != want {
		t.Errorf("archive entries %q, want %q", got, want)
	}
	version := readZipFile(t, zr, "my.model/version")
	if string(version) != "3\n" {
		t.Errorf("version record %q, want %q", version, "3\n")
	}

	pkl := readZipFile(t, zr, "my.model/data.pkl")
	allowedGlobals := map[string]bool{
		"collections\nOrderedDict":         true,
		"torch._utils\n_rebuild_tensor_v2": true,
		"torch\nFloatStorage":              true,
		"torch\nLongStorage":               true,
		"torch\nBoolStorage":               true,
		"torch._utils\n_rebuild_parameter": true,
	}
	for pos := 0; pos < len(pkl); {
		op := pkl[pos]
		if bytes.IndexByte(weightsOnlyOps, op) < 0 {
			t.Fatalf("opcode 0x%02x at %d is not accepted by weights_only loading", op, pos)
		}
		if op == 'c' {
			rest := pkl[pos+1:]
			lines := bytes.SplitN(rest, []byte("\n"), 3)
			if g := string(lines[0]) + "\n" + string(lines[1]); !allowedGlobals[g] {
				t.Errorf("global %q is not accepted by weights_only loading", g)
			}
		}
		n, err := opLen(pkl[pos:])
		if err != nil {
			t.Fatal(err)
		}
		pos += n
	}
}

// opLen returns the length of the opcode at the start of p, with its
// argument.
func opLen(p []byte) (int, error) {
	a := opArgs[p[0]]
	switch a.kind {
	case argNone:
		return 1, nil
	case argFixed:
		return 1 + a.n, nil
	case argLines2:
		i := bytes.IndexByte(p[1:], '\n')
		j := bytes.IndexByte(p[2+i:], '\n')
		return 3 + i + j, nil
	case argLen1:
		return 2 + int(p[1]), nil
	case argLen4:
		return 5 + int(uint32(p[1])|uint32(p[2])<<8|uint32(p[3])<<16|uint32(p[4])<<24), nil
	}
	return 0, errors.New("unexpected opcode in written pickle")
}

func readZipFile(t *testing.T, zr *zip.Reader, name string) []byte {
	t.Helper()
	f, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestArchiveName(t *testing.T) {
	for _, tc := range []struct{ base, want string }{
		{"student.pt", "student"},
		{"a.b.pth", "a.b"},
		{"noext", "noext"},
		{".pt", "archive"},
	} {
		if got := archiveName(tc.base); got != tc.want {
			t.Errorf("archiveName(%q) = %q, want %q", tc.base, got, tc.want)
		}
	}
}

func TestSaveWriter(t *testing.T) {
	var buf bytes.Buffer
	tn := mustTensor(FromFloat32s([]int64{2}, []float32{1, 2}))
	if err := SaveWriter(&buf, "", tn); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte("archive/data.pkl")) {
		t.Error("SaveWriter with no name does not use the folder name archive")
	}
	if err := SaveWriter(io.Discard, "a/b", tn); err == nil {
		t.Error("SaveWriter accepted an archive name with a slash")
	}
}

func TestSaveAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "q.pt")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, quantileDict(t)); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode after Save = %v, %v; want the old mode 0600 kept", st.Mode(), err)
	}
	before, _ := os.ReadFile(path)

	// A bad value fails and leaves the old file alone.
	bad := &Tensor{DType: Float32, Shape: []int64{3}, Strides: []int64{1}, Storage: make([]byte, 8)}
	for _, v := range []any{bad, map[string]*Tensor{"x": bad}, struct{}{}, []any{1.5, make(chan int)}} {
		err := Save(path, v)
		if err == nil || !strings.HasPrefix(err.Error(), "write "+path+": ") {
			t.Errorf("Save(%T) error = %v, want one naming the file", v, err)
		}
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("a failed Save changed the file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after Save, want 1 (temporary files left?)", len(entries))
	}
	// Missing folders are made, as for every file puad writes.
	if err := Save(filepath.Join(dir, "missing", "x.pt"), quantileDict(t)); err != nil {
		t.Errorf("Save into a missing directory: %v", err)
	}
	if err := Save(dir, quantileDict(t)); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Save over a directory: %v, want a refusal", err)
	}
}

// TestTorchLoadsSaved checks with PyTorch itself that files written by Save
// load with torch.load, with weights_only=True, and into a module with
// load_state_dict(strict=True).
func TestTorchLoadsSaved(t *testing.T) {
	const python = "/usr/bin/python3"
	unavailable := func(why string) {
		msg := "PyTorch check skipped: " + why + "; `make setup` installs python3-torch"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := os.Stat(python); err != nil {
		unavailable(python + " is missing")
	}
	pyref.SkipShort(t, "PyTorch check")
	dir := t.TempDir()
	type entry struct {
		Path   string `json:"path"`
		Value  node   `json:"value"`
		Module string `json:"module,omitempty"`
	}
	var spec struct {
		Files []entry `json:"files"`
	}
	for _, c := range saveCases(t) {
		path := filepath.Join(dir, c.file)
		if err := Save(path, c.value); err != nil {
			t.Fatal(err)
		}
		want := c.want
		if want == nil {
			want = c.value
		}
		spec.Files = append(spec.Files, entry{path, describeValue(want, map[*byte]string{}), c.module})
	}
	specPath := filepath.Join(dir, "spec.json")
	if err := os.WriteFile(specPath, mustMarshal(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, filepath.Join("testdata", "check_saved.py"), specPath)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == 77:
		unavailable("PyTorch is not installed for " + python + " (" + strings.TrimSpace(string(out)) + ")")
	case err != nil:
		t.Fatalf("PyTorch rejected files written by Save: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}
