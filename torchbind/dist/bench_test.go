package dist

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/puad-go/puad/torchbind"
)

func init() {
	workerRoles["bench-peer"] = benchPeer
}

// benchCases are the tensors one all-reduce carries: one flat 8 MiB float32
// tensor, and the gradients of the small teacher PDN (four convolutions,
// about 10 MiB in one bucket).
var benchCases = map[string][][]int64{
	"flat-8MiB": {{2 << 20}},
	"pdn-small": {{128, 3, 4, 4}, {128}, {256, 128, 4, 4}, {256}, {256, 256, 3, 3}, {256}, {384, 256, 4, 4}, {384}},
}

// BenchmarkAllReduce: time per all-reduce (Sum) between this process and a
// second one, over Gloo on the loopback device.
func BenchmarkAllReduce(b *testing.B) {
	for _, name := range []string{"flat-8MiB", "pdn-small"} {
		b.Run(name, func(b *testing.B) {
			port := freePort(b)
			peer := startPeer(b, name, port)
			g, err := Init(Env{WorldSize: 2, MasterAddr: "127.0.0.1", MasterPort: port}, Gloo, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			ts := benchTensors(b, name)
			defer closeAll(ts)
			var bytes int64
			for _, t := range ts {
				bytes += t.Numel() * 4
			}
			b.SetBytes(bytes)
			if err := g.AllReduce(ts, Sum); err != nil { // warm-up: connections, buffers
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := g.AllReduce(ts, Sum); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := peer.cmd.Wait(); err != nil {
				b.Fatalf("peer: %v\n%s", err, peer.out.String())
			}
		})
	}
}

// startPeer starts rank 1 of the benchmark, doing b.N+1 all-reduces.
func startPeer(b *testing.B, name string, port int) *worker {
	w := &worker{rank: 1}
	w.cmd = exec.Command(os.Args[0], "-test.run=^TestWorker$", "-test.count=1")
	w.cmd.Env = append(os.Environ(), roleVar+"=bench-peer", "RANK=1", "WORLD_SIZE=2", "LOCAL_RANK=1",
		"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port),
		"PUAD_DIST_BENCH_CASE="+name, "PUAD_DIST_BENCH_N="+strconv.Itoa(b.N+1))
	w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
	if err := w.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return w
}

func benchPeer(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("PUAD_DIST_BENCH_N"))
	if err != nil {
		t.Fatal(err)
	}
	g := joinFromEnv(t, time.Minute)
	defer g.Close()
	ts := benchTensors(t, os.Getenv("PUAD_DIST_BENCH_CASE"))
	defer closeAll(ts)
	for i := 0; i < n; i++ {
		if err := g.AllReduce(ts, Sum); err != nil {
			t.Fatal(err)
		}
	}
}

func benchTensors(tb testing.TB, name string) []*torchbind.Tensor {
	shapes, ok := benchCases[name]
	if !ok {
		tb.Fatalf("unknown benchmark case %q", name)
	}
	ts := make([]*torchbind.Tensor, len(shapes))
	for i, s := range shapes {
		x, err := torchbind.Full(s, 0.5, torchbind.Float32, torchbind.CPU)
		if err != nil {
			closeAll(ts)
			tb.Fatal(err)
		}
		ts[i] = x
	}
	return ts
}
