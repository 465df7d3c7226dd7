package torchbind

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// callsPerOp is the number of calls one iteration of BenchmarkCgoCall
// makes, so that `make bench`'s -benchtime 3x still times thousands.
const callsPerOp = 10000

// BenchmarkCgoCall measures the cost of crossing into the shim: a call that
// does almost nothing (NumThreads), one that reads a tensor's metadata
// (Info), and the smallest real operation (a 0-d add, created and freed).
// ns/call is the figure to read; ns/op is for callsPerOp calls.
func BenchmarkCgoCall(b *testing.B) {
	x, err := Scalar(1, Float32, CPU)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"NumThreads", func() error { NumThreads(); return nil }},
		{"Info", func() error { _, err := x.Info(); return err }},
		{"AddScalar0d", func() error {
			y, err := AddScalar(x, 1)
			y.Close()
			return err
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			if err := c.call(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := 0; j < callsPerOp; j++ {
					if err := c.call(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*callsPerOp), "ns/call")
		})
	}
}

// pdnS is the PDN-S-shaped conv stack with random weights: conv 3→128 k4,
// relu, avgpool 2, conv 128→256 k4, relu, avgpool 2, conv 256→256 k3, relu,
// conv 256→384 k4.
type pdnS struct {
	w, b []*Tensor
	x    *Tensor
}

func newPDNS(batch, size int64) (*pdnS, error) {
	g, err := NewGenerator(0, CPU)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	s := NewScope()
	defer s.Close()
	n := &pdnS{}
	for _, l := range [][3]int64{{3, 128, 4}, {128, 256, 4}, {256, 256, 3}, {256, 384, 4}} {
		ci, co, k := l[0], l[1], l[2]
		n.w = append(n.w, s.Keep(s.T(MulScalar(s.T(Randn(g, []int64{co, ci, k, k}, Float32, CPU)), 0.05))))
		n.b = append(n.b, s.Keep(s.T(MulScalar(s.T(Randn(g, []int64{co}, Float32, CPU)), 0.05))))
	}
	n.x = s.Keep(s.T(Randn(g, []int64{batch, 3, size, size}, Float32, CPU)))
	if err := s.Err(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *pdnS) Close() {
	closeAll(n.w...)
	closeAll(n.b...)
	n.x.Close()
}

func (n *pdnS) forward() error {
	s := NewScope()
	defer s.Close()
	pool := PoolOptions{Kernel: [2]int64{2, 2}}
	h := s.T(Conv2d(n.x, n.w[0], n.b[0], ConvOptions{}))
	h = s.T(AvgPool2d(s.T(Relu(h)), pool))
	h = s.T(Conv2d(h, n.w[1], n.b[1], ConvOptions{}))
	h = s.T(AvgPool2d(s.T(Relu(h)), pool))
	h = s.T(Relu(s.T(Conv2d(h, n.w[2], n.b[2], ConvOptions{}))))
	s.T(Conv2d(h, n.w[3], n.b[3], ConvOptions{}))
	return s.Err()
}

// benchThreads are the intra-op thread counts BenchmarkPDNSForward runs
// with: $PUAD_BENCH_THREADS (comma-separated) or 1 and 2.
func benchThreads(b *testing.B) []int {
	spec := os.Getenv("PUAD_BENCH_THREADS")
	if spec == "" {
		spec = "1,2"
	}
	var out []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("PUAD_BENCH_THREADS=%q: bad thread count %q", spec, f)
		}
		out = append(out, n)
	}
	return out
}

var (
	pythonOnce sync.Once
	pythonErr  error
)

// pythonTorch reports whether /usr/bin/python3 can import torch.
func pythonTorch() error {
	pythonOnce.Do(func() {
		out, err := exec.Command("/usr/bin/python3", "-c", "import torch").CombinedOutput()
		if err != nil {
			pythonErr = fmt.Errorf("/usr/bin/python3 with torch: %v %s", err, bytes.TrimSpace(out))
		}
	})
	return pythonErr
}

// pythonPDNS times the same stack in PyTorch with the same thread count and
// returns the mean, the fastest and the process CPU milliseconds per forward.
func pythonPDNS(threads, batch, size, iters int) (mean, fastest, cpu float64, err error) {
	cmd := exec.Command("/usr/bin/python3", filepath.Join("testdata", "bench_pdn.py"),
		"--threads", strconv.Itoa(threads), "--batch", strconv.Itoa(batch),
		"--size", strconv.Itoa(size), "--iters", strconv.Itoa(iters))
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS="+strconv.Itoa(threads))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("bench_pdn.py: %v: %s", err, bytes.TrimSpace(out))
	}
	fields := strings.Fields(string(out))
	if len(fields) != 6 || fields[0] != "ms/iter" || fields[2] != "min" || fields[4] != "cpu" {
		return 0, 0, 0, fmt.Errorf("bench_pdn.py printed %q", out)
	}
	var v [3]float64
	for i := range v {
		if v[i], err = strconv.ParseFloat(fields[1+2*i], 64); err != nil {
			return 0, 0, 0, fmt.Errorf("bench_pdn.py printed %q", out)
		}
	}
	return v[0], v[1], v[2], nil
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPDNSForward runs the PDN-S-shaped stack forward at 256×256 without
// autograd, for batch 1 and 8 and each thread count, and then the same stack
// in PyTorch on this machine: go-ms/op and py-ms/op are the mean times per
// forward, ratio is Go's mean over Python's (the binding's overhead; 1.00 is
// none), min-ratio the same for the fastest forward of each and cpu-ratio for
// the process CPU time per forward; the last two are the figures other load
// on the machine disturbs least.
func BenchmarkPDNSForward(b *testing.B) {
	const size = 256
	prev := NumThreads()
	defer SetNumThreads(prev)
	nets := map[int64]*pdnS{}
	defer func() {
		for _, n := range nets {
			n.Close()
		}
	}()
	for _, threads := range benchThreads(b) {
		for _, batch := range []int64{1, 8} {
			b.Run(fmt.Sprintf("threads=%d/batch=%d", threads, batch), func(b *testing.B) {
				SetNumThreads(threads)
				net, ok := nets[batch]
				if !ok {
					var err error
					if net, err = newPDNS(batch, size); err != nil {
						b.Fatal(err)
					}
					nets[batch] = net
				}
				var elapsed, fastest, cpu time.Duration
				err := NoGrad(func() error { // also keeps the loop on one OS thread
					if NumThreads() != threads {
						return fmt.Errorf("NumThreads() = %d, want %d", NumThreads(), threads)
					}
					if err := net.forward(); err != nil { // warm-up, as the Python side does
						return err
					}
					b.ResetTimer()
					cpu0 := processCPU()
					for i := 0; i < b.N; i++ {
						start := time.Now()
						if err := net.forward(); err != nil {
							return err
						}
						d := time.Since(start)
						elapsed += d
						if i == 0 || d < fastest {
							fastest = d
						}
					}
					cpu = processCPU() - cpu0
					b.StopTimer()
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				goMs := float64(elapsed.Microseconds()) / 1e3 / float64(b.N)
				goMin := float64(fastest.Microseconds()) / 1e3
				goCPU := float64(cpu.Microseconds()) / 1e3 / float64(b.N)
				if err := pythonTorch(); err != nil {
					b.Logf("Go only (no Python comparison): %v", err)
					return
				}
				pyMs, pyMin, pyCPU, err := pythonPDNS(threads, int(batch), size, b.N)
				if err != nil {
					b.Logf("Go only: %v", err)
					return
				}
				b.ReportMetric(pyMs, "py-ms/op")
				b.ReportMetric(goMs, "go-ms/op")
				b.ReportMetric(goMs/pyMs, "ratio")
				b.ReportMetric(goMin/pyMin, "min-ratio")
				b.ReportMetric(goCPU/pyCPU, "cpu-ratio")
				b.Logf("%d forwards: Go mean %.1f ms, fastest %.1f ms, CPU %.1f ms; Python mean %.1f ms, fastest %.1f ms, CPU %.1f ms",
					b.N, goMs, goMin, goCPU, pyMs, pyMin, pyCPU)
			})
		}
	}
}
