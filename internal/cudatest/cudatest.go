// Package cudatest gives tests the CUDA device they compare on, and says
// how to treat its absence.
package cudatest

import (
	"errors"
	"fmt"
	"os"
	"testing"

	tb "github.com/puad-go/puad/torchbind"
)

// Device returns the first CUDA device. Without one (CI machines have no
// GPU) it checks instead that asking for CUDA is refused with tb.ErrNoCUDA,
// and reports false: the caller then has nothing more to compare.
// tools/gpu-check.sh sets PUAD_REQUIRE_CUDA=1, which makes a missing device
// a failure.
func Device(t testing.TB) (tb.Device, bool) {
	t.Helper()
	if tb.CUDAAvailable() {
		return tb.CUDA(0), true
	}
	msg := fmt.Sprintf("no CUDA device (libtorch %s sees %d devices)", tb.TorchVersion(), tb.CUDADeviceCount())
	if os.Getenv("PUAD_REQUIRE_CUDA") == "1" {
		t.Fatal(msg)
	}
	if _, err := tb.ParseDevice("cuda"); !errors.Is(err, tb.ErrNoCUDA) {
		t.Fatalf("%s, yet asking for CUDA gave %v, want ErrNoCUDA", msg, err)
	}
	t.Logf("%s: checked that CUDA is refused; the CUDA comparison runs on a GPU machine (tools/gpu-check.sh)", msg)
	return tb.CPU, false
}
