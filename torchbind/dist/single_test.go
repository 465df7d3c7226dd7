package dist

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/puad-go/puad/torchbind"
)

// TestWorldSizeOne: one process is a group of its own, through a FileStore
// and through Init's TCPStore; AllReduce leaves the values (Avg divides by
// one), Broadcast and Barrier return at once.
func TestWorldSizeOne(t *testing.T) {
	s, err := NewFileStore(filepath.Join(t.TempDir(), "store"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	g, err := NewGroup(s, Gloo, 0, 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkSingle(t, g)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}

	g, err = Init(Env{Rank: 0, WorldSize: 1, MasterAddr: "127.0.0.1", MasterPort: freePort(t)}, Gloo, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkSingle(t, g)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := g.Barrier(); err == nil {
		t.Error("Barrier on a closed group succeeded")
	}
}

func checkSingle(t *testing.T, g *Group) {
	t.Helper()
	if g.Rank() != 0 || g.WorldSize() != 1 {
		t.Fatalf("rank %d of %d", g.Rank(), g.WorldSize())
	}
	checkExactAllReduce(t, g, Sum)
	checkExactAllReduce(t, g, Avg)
	checkBroadcast(t, g, 0)
	if err := g.Barrier(); err != nil {
		t.Fatal(err)
	}
	if err := g.AllReduce(nil, Avg); err != nil {
		t.Errorf("AllReduce of no tensors: %v", err)
	}
}

// TestArgumentErrors: bad arguments are refused before anything reaches c10d.
func TestArgumentErrors(t *testing.T) {
	s, err := NewFileStore(filepath.Join(t.TempDir(), "store"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := NewGroup(s, "mpi", 0, 1, time.Second); !errors.Is(err, ErrBackendUnavailable) {
		t.Errorf("unknown backend: %v, want ErrBackendUnavailable", err)
	}
	if _, err := NewGroup(s, Gloo, 1, 1, time.Second); err == nil {
		t.Error("rank 1 of 1 accepted")
	}
	if _, err := NewGroup(s, Gloo, 0, 1, 0); err == nil {
		t.Error("zero timeout accepted")
	}
	if _, err := NewTCPStore("127.0.0.1", 70000, 1, true, time.Second); err == nil {
		t.Error("port 70000 accepted")
	}
	g, err := NewGroup(s, Gloo, 0, 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ints, err := torchbind.FromSlice([]int64{1, 2}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer ints.Close()
	if err := g.AllReduce([]*torchbind.Tensor{ints}, Avg); err == nil {
		t.Error("Avg of int64 values accepted")
	}
	if err := g.AllReduce([]*torchbind.Tensor{ints}, Sum); err != nil {
		t.Errorf("Sum of int64 values: %v", err)
	}
	if err := g.Broadcast([]*torchbind.Tensor{ints}, 1); err == nil {
		t.Error("broadcast from rank 1 of 1 accepted")
	}
	var closed torchbind.Tensor
	if err := g.AllReduce([]*torchbind.Tensor{&closed}, Sum); err == nil {
		t.Error("AllReduce of a closed tensor accepted")
	}
}

// TestNCCLUnavailable: without a CUDA libtorch built with NCCL, asking for
// NCCL is a typed refusal.
func TestNCCLUnavailable(t *testing.T) {
	if torchbind.CUDAAvailable() {
		t.Skip("CUDA libtorch: NCCL may be built in")
	}
	s, err := NewFileStore(filepath.Join(t.TempDir(), "store"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	g, err := NewGroup(s, NCCL, 0, 1, time.Second)
	if !errors.Is(err, ErrBackendUnavailable) {
		g.Close()
		t.Fatalf("NCCL: %v, want ErrBackendUnavailable", err)
	}
}
