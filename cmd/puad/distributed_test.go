package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/internal/launch"
	"github.com/puad-go/puad/internal/pyref"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// distFixture writes a tiny wide ResNet and uses a category's training
// images as an ImageNet folder (one class); it returns the arguments of a
// 2-iteration teacher distillation on them, without MODELS.
func distFixture(t *testing.T, name string) (root string, args func(modelDir string) []string) {
	t.Helper()
	root = filepath.Join(testRoot, name)
	data := testtree.Category(t, filepath.Join(root, "data"), loco, "tray", synth.VariantTray, 9)
	wrn := filepath.Join(root, "wrn.pth")
	testtree.WriteTinyWRN(t, wrn, 5)
	return root, func(modelDir string) []string {
		return []string{"train", "teacher", filepath.Join(data, "train"), modelDir, "--wrn-weights", wrn,
			"--iterations", "2", "--batch-size", "4", "--stat-samples", "4", "--img-size", "64", "--device", "cpu",
			"--quiet", "--dist-timeout", "60s"}
	}
}

// runPuadEnv runs the test binary as puad with extra environment variables.
func runPuadEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "PUAD_TEST_MAIN_ARGS="+strings.Join(args, "\x1f")), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestTrainTeacherNprocMatchesTorchrun distils with --nproc-per-node 2 and
// under torchrun with 2 processes: the same files, bit for bit.
func TestTrainTeacherNprocMatchesTorchrun(t *testing.T) {
	pyref.Require(t)
	root, args := distFixture(t, "dist-torchrun")
	own := filepath.Join(root, "own")
	stdout, stderr, code := runPuad(t, append(args(own), "--nproc-per-node", "2")...)
	if code != 0 {
		t.Fatalf("--nproc-per-node 2: exit %d\n%s", code, stderr)
	}
	if strings.Count(stdout, "teacher saved to") != 1 {
		t.Errorf("stdout %q: want one line from rank 0", stdout)
	}
	viaTorchrun := filepath.Join(root, "torchrun")
	port, err := launch.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// Debian's torch 1.13 on Python 3.11 reads the default --redirects 0
	// and --tee 0 as None and fails (enum iteration skips a zero flag):
	// stdout is redirected to torchrun's log files and teed back instead.
	cmd := exec.Command(pyref.Python, "-m", "torch.distributed.run", "--no_python", "--nproc_per_node", "2",
		"--redirects", "1", "--tee", "1",
		"--master_addr", "127.0.0.1", "--master_port", strconv.Itoa(port), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PUAD_TEST_MAIN_ARGS="+strings.Join(args(viaTorchrun), "\x1f"), "OMP_NUM_THREADS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("torchrun: %v\n%s", err, out)
	}
	a, b := models.Layout{Root: own, Size: models.Small}.TeacherDir(), models.Layout{Root: viaTorchrun, Size: models.Small}.TeacherDir()
	for _, f := range []string{"teacher.pt", "mu.pt", "sigma.pt", "train_loss.csv"} {
		da, err := os.ReadFile(filepath.Join(a, f))
		if err != nil {
			t.Fatal(err)
		}
		db, err := os.ReadFile(filepath.Join(b, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(da, db) {
			t.Errorf("%s differs between --nproc-per-node and torchrun", f)
		}
	}
}

// TestTrainTeacherDistErrors: an unreachable rendezvous fails within the
// timeout, saying where it looked; NCCL without CUDA is refused with a
// hint; a worker's failure makes the launcher fail naming the rank and its
// error.
func TestTrainTeacherDistErrors(t *testing.T) {
	root, args := distFixture(t, "dist-errors")
	port, err := launch.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	env := []string{"RANK=1", "WORLD_SIZE=2", "LOCAL_RANK=1", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + strconv.Itoa(port)}
	_, stderr, code := runPuadEnv(t, env, append(args(filepath.Join(root, "a")), "--dist-timeout", "3s")...)
	took := time.Since(start)
	if code == 0 || !strings.Contains(stderr, "127.0.0.1:"+strconv.Itoa(port)) || !strings.Contains(stderr, "rank 1 of 2") {
		t.Errorf("unreachable rendezvous: exit %d, stderr %q", code, stderr)
	}
	if took > 30*time.Second {
		t.Errorf("unreachable rendezvous: failed after %v with a 3 s timeout", took)
	}
	t.Logf("unreachable rendezvous after %v: %s", took.Round(time.Millisecond), strings.TrimSpace(stderr))

	port, err = launch.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	env = []string{"RANK=0", "WORLD_SIZE=1", "LOCAL_RANK=0", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + strconv.Itoa(port)}
	_, stderr, code = runPuadEnv(t, env, append(args(filepath.Join(root, "c")), "--dist-backend", "nccl")...)
	if !tb.CUDAAvailable() && (code == 0 || !strings.Contains(stderr, "use --dist-backend gloo")) {
		t.Errorf("nccl without CUDA: exit %d, stderr %q", code, stderr)
	}

	_, stderr, code = runPuad(t, append(args(filepath.Join(root, "b")), "--nproc-per-node", "2", "--batch-size", "3")...)
	if code == 0 || !regexpRank.MatchString(stderr) || !strings.Contains(stderr, "does not split evenly over 2") {
		t.Errorf("batch 3 over 2 workers: exit %d, stderr %q", code, stderr)
	}
}

var regexpRank = regexp.MustCompile(`rank [01] failed`)
