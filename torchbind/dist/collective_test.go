package dist

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/puad-go/puad/torchbind"
)

func init() {
	workerRoles["collectives"] = collectivesWorker
}

// TestCollectives runs AllReduce, Broadcast and Barrier in 2 and 3
// processes, meeting through a FileStore and through a TCPStore.
func TestCollectives(t *testing.T) {
	for _, ws := range []int{2, 3} {
		for _, store := range []string{"file", "tcp"} {
			t.Run(fmt.Sprintf("%s/%d", store, ws), func(t *testing.T) {
				dir := t.TempDir()
				env := []string{"PUAD_DIST_DIR=" + dir}
				if store == "file" {
					env = append(env, "PUAD_DIST_FILE="+filepath.Join(dir, "store"))
				} else {
					env = append(env, "MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(freePort(t)))
				}
				waitWorkers(t, startWorkers(t, "collectives", ws, env...), 2*time.Minute)
			})
		}
	}
}

// collectivesWorker checks each collective's results on one rank.
func collectivesWorker(t *testing.T) {
	tensorsBefore := torchbind.LiveTensors()
	g := joinFromEnv(t, 20*time.Second)
	rank, ws := g.Rank(), g.WorldSize()
	checkExactAllReduce(t, g, Sum)
	checkExactAllReduce(t, g, Avg)
	checkFloat32AllReduce(t, g)
	checkNonContiguous(t, g)
	for root := 0; root < 2; root++ {
		checkBroadcast(t, g, root)
	}
	checkBarrier(t, g, os.Getenv("PUAD_DIST_DIR"))
	checkSecondGroup(t, g)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if LiveGroups() != 0 || LiveStores() != 0 {
		t.Errorf("rank %d: %d groups and %d stores still open after Close", rank, LiveGroups(), LiveStores())
	}
	if n := torchbind.LiveTensors(); n != tensorsBefore {
		t.Errorf("rank %d/%d: live tensors %d -> %d", rank, ws, tensorsBefore, n)
	}
}

// checkSecondGroup opens a second group on g's store, as torch.distributed's
// new_group does (keys of its own), and uses both in turn.
func checkSecondGroup(t *testing.T, g *Group) {
	g2, err := NewGroup(g.store, Gloo, g.Rank(), g.WorldSize(), 20*time.Second)
	if err != nil {
		t.Fatalf("rank %d: second group: %v", g.Rank(), err)
	}
	defer g2.Close()
	checkExactAllReduce(t, g2, Sum)
	checkExactAllReduce(t, g, Sum)
	checkBroadcast(t, g2, g.WorldSize()-1)
}

// exactCase is a tensor whose element i on rank r is value(r, i): values
// and their sums over ranks are exact in binary floating point.
type exactCase struct {
	dtype torchbind.DType
	shape []int64
	value func(r, i int) float64
}

var exactCases = []exactCase{
	{torchbind.Float32, []int64{3, 4}, func(r, i int) float64 { return float64(100*r + i) }},
	{torchbind.Float64, []int64{5}, func(r, i int) float64 { return float64(1000*r) - 0.5*float64(i) }},
	{torchbind.Float64, nil, func(r, i int) float64 { return float64(r + 1) }},
	{torchbind.Float32, []int64{2, 1, 3}, func(r, i int) float64 { return 0.25*float64(r) + float64(i) }},
	{torchbind.Float64, []int64{2, 2}, func(r, i int) float64 { return -float64(r*r) + float64(i)/8 }},
}

// newCase makes the tensor of c on rank.
func newCase(t *testing.T, c exactCase, rank int) *torchbind.Tensor {
	t.Helper()
	n := int(numel(c.shape))
	var x *torchbind.Tensor
	var err error
	if c.dtype == torchbind.Float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(c.value(rank, i))
		}
		x, err = torchbind.FromSlice(v, c.shape...)
	} else {
		v := make([]float64, n)
		for i := range v {
			v[i] = c.value(rank, i)
		}
		x, err = torchbind.FromSlice(v, c.shape...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// values reads a float32 or float64 tensor as float64s.
func values(t *testing.T, x *torchbind.Tensor) []float64 {
	t.Helper()
	info, err := x.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.DType == torchbind.Float32 {
		v, err := x.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, len(v))
		for i, f := range v {
			out[i] = float64(f)
		}
		return out
	}
	v, err := x.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkExactAllReduce reduces all exact cases in one call and compares
// with the sums computed here, divided by the world size in the tensor's
// dtype for Avg: equality, with no tolerance.
func checkExactAllReduce(t *testing.T, g *Group, op ReduceOp) {
	ts := make([]*torchbind.Tensor, len(exactCases))
	for k, c := range exactCases {
		ts[k] = newCase(t, c, g.Rank())
	}
	defer closeAll(ts)
	if err := g.AllReduce(ts, op); err != nil {
		t.Fatalf("rank %d: AllReduce %v: %v", g.Rank(), op, err)
	}
	for k, c := range exactCases {
		got := values(t, ts[k])
		for i, v := range got {
			want := 0.0
			for r := 0; r < g.WorldSize(); r++ {
				want += c.value(r, i)
			}
			if op == Avg {
				want = divide(c.dtype, want, g.WorldSize())
			}
			if v != want {
				t.Errorf("rank %d: AllReduce %v case %d [%d] = %v, want %v", g.Rank(), op, k, i, v, want)
			}
		}
	}
}

// checkNonContiguous reduces transposed views, alone (the shim's own
// contiguous copy) and beside another tensor (a bucket), and compares them
// with the sums computed here.
func checkNonContiguous(t *testing.T, g *Group) {
	c := exactCases[0] // float32 [3, 4]
	for _, alone := range []bool{true, false} {
		x := newCase(t, c, g.Rank())
		other := newCase(t, c, g.Rank())
		xt, err := torchbind.Transpose(x, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		ts := []*torchbind.Tensor{xt, other}
		if alone {
			ts = ts[:1]
		}
		if err := g.AllReduce(ts, Avg); err != nil {
			t.Fatal(err)
		}
		for i, v := range values(t, x) { // x sees what was written through xt
			want := 0.0
			for r := 0; r < g.WorldSize(); r++ {
				want += c.value(r, i)
			}
			if want = divide(c.dtype, want, g.WorldSize()); v != want {
				t.Errorf("rank %d: AllReduce of a transposed view (alone %v) [%d] = %v, want %v", g.Rank(), alone, i, v, want)
			}
		}
		closeAll([]*torchbind.Tensor{x, other, xt})
	}
}

// divide is sum/n rounded as in a tensor of dtype.
func divide(dtype torchbind.DType, sum float64, n int) float64 {
	if dtype == torchbind.Float32 {
		return float64(float32(sum) / float32(n))
	}
	return sum / float64(n)
}

// float32Values are rank r's values for the inexact float32 case.
func float32Values(r, n int) []float32 {
	rng := rand.New(rand.NewSource(int64(7*r + 1)))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * 3)
	}
	return v
}

// checkFloat32AllReduce sums values whose float32 sum depends on the order
// of the additions. Gloo's ring adds the ranks' values in an order that
// varies between chunks of the tensor, so each element must equal the
// float32 sum in one of the orders of the ranks, exactly (no tolerance).
func checkFloat32AllReduce(t *testing.T, g *Group) {
	const n = 1001
	x, err := torchbind.FromSlice(float32Values(g.Rank(), n), n)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if err := g.AllReduce([]*torchbind.Tensor{x}, Sum); err != nil {
		t.Fatal(err)
	}
	got, err := x.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	all := make([][]float32, g.WorldSize())
	for r := range all {
		all[r] = float32Values(r, n)
	}
	orders := permutations(g.WorldSize())
	inexact := 0
	for i, v := range got {
		match := false
		for _, order := range orders {
			var s float32
			for _, r := range order {
				s += all[r][i]
			}
			match = match || s == v
			if s != got[i] {
				inexact++
			}
		}
		if !match {
			t.Fatalf("rank %d: element %d = %v is the float32 sum in no order of the ranks", g.Rank(), i, v)
		}
	}
	if g.WorldSize() > 2 && inexact == 0 {
		t.Errorf("no element's sum depends on the order: the case tests nothing")
	}
}

// permutations lists every order of 0..n-1.
func permutations(n int) [][]int {
	if n == 1 {
		return [][]int{{0}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for at := 0; at <= len(p); at++ {
			q := append(append(append([]int{}, p[:at]...), n-1), p[at:]...)
			out = append(out, q)
		}
	}
	return out
}

// checkBroadcast broadcasts float32, float64 and int64 tensors from root.
func checkBroadcast(t *testing.T, g *Group, root int) {
	value := func(r, i int) float64 { return float64(10*r + i) }
	f32 := newCase(t, exactCase{torchbind.Float32, []int64{4}, value}, g.Rank())
	f64 := newCase(t, exactCase{torchbind.Float64, []int64{3, 1}, value}, g.Rank())
	i64, err := torchbind.FromSlice([]int64{int64(7 * g.Rank()), 1, 2, 3}, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	ts := []*torchbind.Tensor{f32, i64, f64}
	defer closeAll(ts)
	if err := g.Broadcast(ts, root); err != nil {
		t.Fatalf("rank %d: Broadcast from %d: %v", g.Rank(), root, err)
	}
	for k, x := range []*torchbind.Tensor{f32, f64} {
		for i, v := range values(t, x) {
			if v != value(root, i) {
				t.Errorf("rank %d: Broadcast from %d: tensor %d [%d] = %v, want %v", g.Rank(), root, k, i, v, value(root, i))
			}
		}
	}
	got, err := i64.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{int64(7 * root), 1, 2, 3}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rank %d: Broadcast from %d: int64 tensor %v, want %v", g.Rank(), root, got, want)
	}
}

// checkBarrier: ranks arrive at different times, each marking its arrival
// with a file; after the barrier every rank must see all the files.
func checkBarrier(t *testing.T, g *Group, dir string) {
	time.Sleep(time.Duration(g.Rank()) * 150 * time.Millisecond)
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("arrived-%d", g.Rank())), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.Barrier(); err != nil {
		t.Fatal(err)
	}
	for r := 0; r < g.WorldSize(); r++ {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("arrived-%d", r))); err != nil {
			t.Errorf("rank %d after the barrier: rank %d has not arrived: %v", g.Rank(), r, err)
		}
	}
}
