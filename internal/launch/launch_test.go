package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the worker program: with LAUNCH_TEST_MODE set
// it acts as a worker instead of running the tests.
func TestMain(m *testing.M) {
	switch os.Getenv("LAUNCH_TEST_MODE") {
	case "":
		os.Exit(m.Run())
	case "env":
		// Writes its variables to <dir>/<rank>.
		var b strings.Builder
		for _, k := range []string{"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", WorkerEnv} {
			fmt.Fprintf(&b, "%s=%s\n", k, os.Getenv(k))
		}
		os.WriteFile(filepath.Join(os.Getenv("LAUNCH_TEST_DIR"), os.Getenv("RANK")), []byte(b.String()), 0o644)
		os.Exit(0)
	case "interrupt":
		// On SIGINT rank 1 fails at once; rank 0 takes a while to finish
		// (as a checkpoint is saved), then writes <dir>/done.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		<-sig
		if os.Getenv("RANK") == "1" {
			os.Exit(1)
		}
		time.Sleep(time.Second)
		os.WriteFile(filepath.Join(os.Getenv("LAUNCH_TEST_DIR"), "done"), nil, 0o644)
		os.Exit(0)
	case "fail-rank-1":
		// Rank 1 fails at once; the others wait to be stopped.
		if os.Getenv("RANK") == "1" {
			fmt.Fprintln(os.Stderr, "something went wrong on rank 1")
			os.Exit(3)
		}
		time.Sleep(time.Minute)
		os.Exit(0)
	}
}

func testConfig(t *testing.T, mode string, n int) Config {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return Config{
		Exe: exe, NProc: n,
		Env:    append(os.Environ(), "LAUNCH_TEST_MODE="+mode, "LAUNCH_TEST_DIR="+dir, "RANK=99"),
		Stdout: &strings.Builder{}, Stderr: &strings.Builder{}, Grace: 5 * time.Second,
	}
}

func TestRunSetsVariables(t *testing.T) {
	cfg := testConfig(t, "env", 3)
	dir := strings.TrimPrefix(cfg.Env[len(cfg.Env)-2], "LAUNCH_TEST_DIR=")
	if err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	var port string
	for r := 0; r < 3; r++ {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprint(r)))
		if err != nil {
			t.Fatal(err)
		}
		got := string(data)
		for _, want := range []string{
			fmt.Sprintf("RANK=%d\n", r), "WORLD_SIZE=3\n", fmt.Sprintf("LOCAL_RANK=%d\n", r),
			"LOCAL_WORLD_SIZE=3\n", "MASTER_ADDR=127.0.0.1\n", WorkerEnv + "=1\n",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("rank %d: %q lacks %q", r, got, want)
			}
		}
		p := got[strings.Index(got, "MASTER_PORT="):]
		if port == "" {
			port = p
		} else if p != port {
			t.Errorf("rank %d: %s, rank 0: %s", r, p, port)
		}
	}
}

func TestRunStopsOthersWhenOneFails(t *testing.T) {
	cfg := testConfig(t, "fail-rank-1", 3)
	start := time.Now()
	err := Run(context.Background(), cfg)
	var we *WorkerError
	if !errors.As(err, &we) || we.Rank != 1 || !strings.Contains(err.Error(), "something went wrong on rank 1") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("got %v, want rank 1's failure with its last line", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the others took %v to stop", d)
	}
}

func TestRunCancelStopsWorkers(t *testing.T) {
	cfg := testConfig(t, "fail-rank-1", 1) // rank 0 only: waits to be stopped
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := Run(ctx, cfg); err == nil {
		t.Fatal("a cancelled run succeeded")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stopping took %v", d)
	}
}

func TestConfigRefused(t *testing.T) {
	for _, c := range []Config{{NProc: 0}, {NProc: 2, NNodes: 2}, {NProc: 1, NNodes: 2, NodeRank: 2, MasterAddr: "h", MasterPort: 1}} {
		if err := Run(context.Background(), c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", c, err)
		}
	}
}

// TestRunForwardsInterrupt: a SIGINT reaches every worker once, and a
// worker that fails after it does not make Run stop the others.
func TestRunForwardsInterrupt(t *testing.T) {
	cfg := testConfig(t, "interrupt", 2)
	dir := strings.TrimPrefix(cfg.Env[len(cfg.Env)-2], "LAUNCH_TEST_DIR=")
	go func() {
		time.Sleep(time.Second)
		syscall.Kill(os.Getpid(), syscall.SIGINT)
	}()
	err := Run(context.Background(), cfg)
	var we *WorkerError
	if !errors.As(err, &we) || we.Rank != 1 {
		t.Errorf("got %v, want rank 1's failure", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "done")); err != nil {
		t.Errorf("rank 0 did not finish after the interrupt: %v", err)
	}
}
