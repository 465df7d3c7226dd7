package torchbind

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/puad-go/puad/internal/gcsettle"
	"github.com/puad-go/puad/internal/pyref"
)

// TestMain fails the run when a test left tensors to the finalizers: every
// tensor must be closed by its owner.
func TestMain(m *testing.M) {
	code := m.Run()
	if n := settledLeaks(); n != 0 && code == 0 {
		fmt.Fprintf(os.Stderr, "torchbind: %d tensors were never closed (freed by the garbage collector)\n", n)
		code = 1
	}
	os.Exit(code)
}

// settledLeaks collects garbage, waits until the finalizers queued by the
// collection have run, and returns LeakedTensors.
func settledLeaks() int64 {
	gcsettle.Settle()
	return LeakedTensors()
}

// rssBytes reads the resident set size of this process from /proc.
func rssBytes(t testing.TB) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		pyref.Unavailable(t, "no /proc/self/status: "+err.Error())
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(rest)
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil || len(fields) < 2 || fields[1] != "kB" {
				t.Fatalf("VmRSS line %q", sc.Text())
			}
			return kb * 1024
		}
	}
	pyref.Unavailable(t, "no VmRSS in /proc/self/status")
	return 0
}

// tinyNet is conv(3→8, k3, p1) relu conv(8→4, k3, p1), trained with MSE.
type tinyNet struct {
	params []*Tensor
	opt    *Adam
}

func newTinyNet(t testing.TB) *tinyNet {
	t.Helper()
	g, err := NewGenerator(1, CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	m := musts(t)
	shapes := [][]int64{{8, 3, 3, 3}, {8}, {4, 8, 3, 3}, {4}}
	n := &tinyNet{}
	for _, sh := range shapes {
		r := m(Randn(g, sh, Float32, CPU))
		p := m(MulScalar(r, 0.2))
		r.Close()
		if err := p.SetRequiresGrad(true); err != nil {
			t.Fatal(err)
		}
		n.params = append(n.params, p)
	}
	n.opt = NewAdam(n.params, 1e-3, 1e-5)
	return n
}

func (n *tinyNet) Close() {
	n.opt.Close()
	closeAll(n.params...)
}

// step runs one forward, backward and Adam step; every temporary lives in a scope.
func (n *tinyNet) step(x, y *Tensor) (float64, error) {
	s := NewScope()
	defer s.Close()
	if err := n.opt.ZeroGrad(); err != nil {
		return 0, err
	}
	h := s.T(Conv2d(x, n.params[0], n.params[1], ConvOptions{Padding: [2]int64{1, 1}}))
	h = s.T(Relu(h))
	h = s.T(Conv2d(h, n.params[2], n.params[3], ConvOptions{Padding: [2]int64{1, 1}}))
	loss := s.T(MSELoss(h, y, ReduceMean))
	if err := s.Err(); err != nil {
		return 0, err
	}
	if err := loss.Backward(); err != nil {
		return 0, err
	}
	if err := n.opt.Step(); err != nil {
		return 0, err
	}
	return loss.Item()
}

// A long training loop frees what it makes: resident memory stays flat and
// every tensor is released.
func TestTrainingLoopMemory(t *testing.T) {
	const warmup, iters = 100, 1000
	settledLeaks()
	leaked0, live0 := LeakedTensors(), LiveTensors()
	m := musts(t)

	g, err := NewGenerator(2, CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	x := m(Randn(g, []int64{2, 3, 16, 16}, Float32, CPU))
	y := m(Randn(g, []int64{2, 4, 16, 16}, Float32, CPU))
	net := newTinyNet(t)

	var first, last float64
	var rss0 int64
	for i := 0; i < warmup+iters; i++ {
		if i == warmup {
			runtime.GC()
			rss0 = rssBytes(t)
		}
		l, err := net.step(x, y)
		if err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		if i == 0 {
			first = l
		}
		last = l
	}
	runtime.GC()
	rss1 := rssBytes(t)
	net.Close()
	closeAll(x, y)
	leaked := settledLeaks() - leaked0

	growth := rss1 - rss0
	t.Logf("%d iterations: loss %.4f -> %.4f; VmRSS %.1f MB after warm-up, %.1f MB at the end (%+.2f MB); live tensors %d -> %d; leaked %d",
		iters, first, last, float64(rss0)/(1<<20), float64(rss1)/(1<<20), float64(growth)/(1<<20), live0, LiveTensors(), leaked)
	if growth > 20<<20 {
		t.Errorf("resident memory grew by %.1f MB over %d iterations", float64(growth)/(1<<20), iters)
	}
	if LiveTensors() != live0 {
		t.Errorf("live tensors %d, want %d", LiveTensors(), live0)
	}
	if leaked != 0 {
		t.Errorf("%d tensors freed by the garbage collector", leaked)
	}
	if !(last < first) {
		t.Errorf("loss did not decrease: %g -> %g", first, last)
	}
}

// The finalizer frees a forgotten tensor and counts it.
func TestFinalizerCountsLeaks(t *testing.T) {
	settledLeaks()
	before, live := LeakedTensors(), LiveTensors()
	func() {
		x, err := Zeros([]int64{4}, Float32, CPU)
		if err != nil {
			t.Fatal(err)
		}
		_ = x // dropped without Close
	}()
	n := settledLeaks() - before
	if n != 1 || LiveTensors() != live {
		t.Fatalf("leaked %d (want 1), live %d (want %d)", n, LiveTensors(), live)
	}
	// This leak is deliberate: take it back out of the count for TestMain.
	leakedTensors.Add(-1)
}
