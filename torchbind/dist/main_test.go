package dist

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/puad-go/puad/internal/gcsettle"
	"github.com/puad-go/puad/torchbind"
)

// roleVar selects, in a re-executed test binary, the worker role that
// TestWorker plays; the rank and world size come in RANK and WORLD_SIZE.
const roleVar = "PUAD_DIST_TEST_ROLE"

// TestMain fails the run when a test left stores, groups or tensors to the
// finalizers.
func TestMain(m *testing.M) {
	code := m.Run()
	gcsettle.Settle()
	if n, nt := Leaked(), torchbind.LeakedTensors(); (n != 0 || nt != 0) && code == 0 {
		fmt.Fprintf(os.Stderr, "dist: %d stores or groups and %d tensors were never closed\n", n, nt)
		code = 1
	}
	os.Exit(code)
}

// worker is one process of a multi-process test, started by startWorkers.
type worker struct {
	rank int
	cmd  *exec.Cmd
	out  strings.Builder
}

// startWorkers re-executes the test binary worldSize times, running
// TestWorker in role with RANK, WORLD_SIZE and the extra variables env.
func startWorkers(t *testing.T, role string, worldSize int, env ...string) []*worker {
	t.Helper()
	ws := make([]*worker, worldSize)
	for r := range ws {
		w := &worker{rank: r}
		w.cmd = exec.Command(os.Args[0], "-test.run=^TestWorker$", "-test.count=1", "-test.v")
		w.cmd.Env = append(os.Environ(), roleVar+"="+role, "RANK="+strconv.Itoa(r),
			"WORLD_SIZE="+strconv.Itoa(worldSize), "LOCAL_RANK="+strconv.Itoa(r))
		w.cmd.Env = append(w.cmd.Env, env...)
		w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
		if err := w.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ws[r] = w
	}
	return ws
}

// waitWorkers waits for every worker (killing them all after limit) and
// fails the test for each one that did not pass.
func waitWorkers(t *testing.T, ws []*worker, limit time.Duration) {
	t.Helper()
	timer := time.AfterFunc(limit, func() {
		for _, w := range ws {
			_ = w.cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	for _, w := range ws {
		if err := w.cmd.Wait(); err != nil {
			t.Errorf("rank %d: %v\n%s", w.rank, err, w.out.String())
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// workerEnv is the rank and world size of a worker process.
func workerEnv(t *testing.T) (rank, worldSize int) {
	t.Helper()
	rank, err1 := strconv.Atoi(os.Getenv("RANK"))
	worldSize, err2 := strconv.Atoi(os.Getenv("WORLD_SIZE"))
	if err1 != nil || err2 != nil {
		t.Fatalf("worker environment: %v, %v", err1, err2)
	}
	return rank, worldSize
}

// TestWorker is the body of the worker processes; it is skipped when the
// test binary runs normally.
func TestWorker(t *testing.T) {
	role := os.Getenv(roleVar)
	if role == "" {
		t.Skip("runs only in processes started by the multi-process tests")
	}
	f, ok := workerRoles[role]
	if !ok {
		t.Fatalf("unknown role %q", role)
	}
	f(t)
}

// workerRoles maps a role name to what the worker does.
var workerRoles = map[string]func(t *testing.T){}

// joinFromEnv joins the test's group: a FileStore at $PUAD_DIST_FILE or a
// TCPStore at MASTER_ADDR:MASTER_PORT.
func joinFromEnv(t *testing.T, timeout time.Duration) *Group {
	t.Helper()
	if path := os.Getenv("PUAD_DIST_FILE"); path != "" {
		rank, ws := workerEnv(t)
		s, err := NewFileStore(path, ws)
		if err != nil {
			t.Fatal(err)
		}
		g, err := NewGroup(s, Gloo, rank, ws, timeout)
		if err != nil {
			s.Close()
			t.Fatal(err)
		}
		g.store = s // closed with the group, as Init's store
		return g
	}
	env, _, err := EnvFromOS()
	if err != nil {
		t.Fatal(err)
	}
	g, err := Init(env, Gloo, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return g
}
