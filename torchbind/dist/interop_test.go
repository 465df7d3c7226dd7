package dist

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/puad-go/puad/internal/pyref"
	"github.com/puad-go/puad/torchbind"
)

// interopResult is what testdata/gen_interop_rank.py prints, and what the
// Go rank computes in the same group.
type interopResult struct {
	Rank      int       `json:"rank"`
	WorldSize int       `json:"world_size"`
	Sum32     []float64 `json:"sum32"` // the float32 bucket: a then b, flattened
	Sum64     []float64 `json:"sum64"` // the float64 bucket: c
	Inexact   []float64 `json:"inexact"`
	From1     []int64   `json:"from1"`
	From0     []float64 `json:"from0"`
}

// TestPyTorchInterop: a Go rank and a PyTorch rank (torch.distributed with
// Gloo, joined through env:// as torchrun starts it) form one group on one
// TCPStore, either of them serving it, and run all-reduces, broadcasts and a
// barrier together. Both must end with the same values, and those must be
// the exact sums.
func TestPyTorchInterop(t *testing.T) {
	pyref.Require(t)
	const timeout = 30 * time.Second
	for _, goRank := range []int{0, 1} {
		t.Run(fmt.Sprintf("go-rank%d", goRank), func(t *testing.T) {
			port := freePort(t)
			py := exec.Command(pyref.Python, "testdata/gen_interop_rank.py", strconv.Itoa(int(timeout.Seconds())))
			py.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "RANK="+strconv.Itoa(1-goRank), "WORLD_SIZE=2",
				"LOCAL_RANK="+strconv.Itoa(1-goRank), "MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port))
			var stdout, stderr bytes.Buffer
			py.Stdout, py.Stderr = &stdout, &stderr
			if err := py.Start(); err != nil {
				t.Fatal(err)
			}
			done := false
			defer func() {
				if !done {
					_ = py.Process.Kill()
					_ = py.Wait()
					t.Logf("python rank: %s", stderr.String())
				}
			}()
			got := goInteropRank(t, Env{Rank: goRank, WorldSize: 2, LocalRank: goRank, MasterAddr: "127.0.0.1", MasterPort: port}, timeout)
			err := py.Wait()
			done = true
			if err != nil {
				t.Fatalf("python rank: %v\n%s", err, stderr.String())
			}
			var want interopResult
			if err := json.Unmarshal(stdout.Bytes(), &want); err != nil {
				t.Fatalf("python rank's output: %v\n%s", err, stdout.String())
			}
			want.Rank = goRank // the only field that differs
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Go rank:     %+v\nPython rank: %+v", got, want)
			}
		})
	}
}

// goInteropRank runs the Go rank's side: the collectives of
// gen_interop_rank.py, in the same order; it checks the sums exactly.
func goInteropRank(t *testing.T, env Env, timeout time.Duration) interopResult {
	g, err := Init(env, Gloo, timeout)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	r := float64(env.Rank)
	a := fill32(t, 12, func(i float64) float64 { return i + 100*r }, 3, 4)
	c := fill64(t, 6, func(i float64) float64 { return i*1000 + 0.25*r }, 2, 3)
	b := fill32(t, 5, func(i float64) float64 { return i*0.5 - r }, 5)
	inexact := fill32(t, 101, func(i float64) float64 { return float64(i*0.1) + 0.7*r }, 101)
	ints, err := torchbind.FromSlice([]int64{10 * int64(env.Rank), 10*int64(env.Rank) + 1, 10*int64(env.Rank) + 2, 10*int64(env.Rank) + 3}, 4)
	if err != nil {
		t.Fatal(err)
	}
	from0 := fill64(t, 3, func(i float64) float64 { return i + 10*r }, 3)
	all := []*torchbind.Tensor{a, c, b, inexact, ints, from0}
	defer closeAll(all)

	must(t, g.AllReduce([]*torchbind.Tensor{a, c, b}, Sum)) // a float32 bucket (a, b), then a float64 one (c)
	must(t, g.AllReduce([]*torchbind.Tensor{inexact}, Sum))
	must(t, g.Broadcast([]*torchbind.Tensor{ints}, 1))
	must(t, g.Broadcast([]*torchbind.Tensor{from0}, 0))
	must(t, g.Barrier())

	res := interopResult{Rank: env.Rank, WorldSize: g.WorldSize()}
	res.Sum32 = append(values(t, a), values(t, b)...)
	res.Sum64 = values(t, c)
	res.Inexact = values(t, inexact)
	if res.From1, err = ints.Int64s(); err != nil {
		t.Fatal(err)
	}
	res.From0 = values(t, from0)
	checkInteropSums(t, res)
	return res
}

// checkInteropSums compares the Go rank's results with sums computed here.
func checkInteropSums(t *testing.T, res interopResult) {
	for i, v := range res.Sum32[:12] {
		if want := 2*float64(i) + 100; v != want {
			t.Errorf("a[%d] = %v, want %v", i, v, want)
		}
	}
	for i, v := range res.Sum32[12:] {
		if want := float64(i) - 1; v != want {
			t.Errorf("b[%d] = %v, want %v", i, v, want)
		}
	}
	for i, v := range res.Sum64 {
		if want := 2000*float64(i) + 0.25; v != want {
			t.Errorf("c[%d] = %v, want %v", i, v, want)
		}
	}
	for i, v := range res.Inexact {
		x0, x1 := float32(float64(i)*0.1), float32(float64(float64(i)*0.1)+0.7)
		if want := float64(x0 + x1); v != want {
			t.Errorf("inexact[%d] = %v, want %v", i, v, want)
		}
	}
	if fmt.Sprint(res.From1) != "[10 11 12 13]" || fmt.Sprint(res.From0) != "[0 1 2]" {
		t.Errorf("broadcasts: from rank 1 %v, from rank 0 %v", res.From1, res.From0)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fill32 is a float32 tensor whose element i is float32(f(i)).
func fill32(t *testing.T, n int, f func(float64) float64, shape ...int64) *torchbind.Tensor {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(f(float64(i)))
	}
	x, err := torchbind.FromSlice(v, shape...)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// fill64 is a float64 tensor whose element i is f(i).
func fill64(t *testing.T, n int, f func(float64) float64, shape ...int64) *torchbind.Tensor {
	v := make([]float64, n)
	for i := range v {
		v[i] = f(float64(i))
	}
	x, err := torchbind.FromSlice(v, shape...)
	if err != nil {
		t.Fatal(err)
	}
	return x
}
