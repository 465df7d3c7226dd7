package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/puad-go/puad/internal/launch"
	tb "github.com/puad-go/puad/torchbind"
	"github.com/puad-go/puad/torchbind/dist"
	"github.com/puad-go/puad/training"
)

// defaultDistTimeout is how long a rank waits for the others (torch's default).
const defaultDistTimeout = 30 * time.Minute

// distFlags are the flags of data-parallel teacher training.
func distFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "nproc-per-node", Usage: "start `N` worker processes on this machine, one rank each (as torchrun --nproc-per-node; 0: none)"},
		&cli.IntFlag{Name: "nnodes", Value: 1, Usage: "machines of the run, each started with the same --nproc-per-node"},
		&cli.IntFlag{Name: "node-rank", Usage: "this machine's index among --nnodes (0 serves the rendezvous)"},
		&cli.StringFlag{Name: "master-addr", Usage: "`HOST` of the machine of rank 0 (default 127.0.0.1 on one machine)"},
		&cli.IntFlag{Name: "master-port", Usage: "`PORT` of the rendezvous on --master-addr (default: a free port on one machine)"},
		&cli.StringFlag{Name: "dist-backend", Usage: "collective backend of a data-parallel run: gloo or nccl (default: gloo on the CPU, nccl on CUDA)"},
		&cli.DurationFlag{Name: "dist-timeout", Value: defaultDistTimeout, Usage: "how long a rank waits for the others before it fails"},
	}
}

// launchWorkers starts --nproc-per-node workers running this command
// line and waits for them; started is false when the command is to run
// in this process (no --nproc-per-node, or this is one of the workers).
func launchWorkers(c *cli.Context) (started bool, err error) {
	n := c.Int("nproc-per-node")
	if n <= 0 || os.Getenv(launch.WorkerEnv) == "1" {
		return false, nil
	}
	if _, ok := os.LookupEnv("WORLD_SIZE"); ok {
		return true, errors.New("--nproc-per-node starts the workers itself: it cannot run under torchrun or another launcher (WORLD_SIZE is set)")
	}
	exe, err := os.Executable()
	if err != nil {
		return true, err
	}
	err = launch.Run(c.Context, launch.Config{
		Exe: exe, Args: os.Args[1:], NProc: n, NNodes: c.Int("nnodes"), NodeRank: c.Int("node-rank"),
		MasterAddr: c.String("master-addr"), MasterPort: c.Int("master-port"),
	})
	if errors.Is(err, launch.ErrConfig) {
		return true, usageError(c, "%v (--nproc-per-node, --nnodes, --node-rank, --master-addr, --master-port)", err)
	}
	return true, err
}

// joinGroup joins the process group that torchrun's variables (or
// --nproc-per-node's) describe, and returns it with its release and the
// device of this rank: a CUDA device given without an index becomes
// cuda:LOCAL_RANK. It returns a nil group outside a data-parallel run.
func joinGroup(c *cli.Context, dev tb.Device) (*dist.Group, func(), tb.Device, error) {
	env, present, err := dist.EnvFromOS()
	if err != nil || !present {
		return nil, func() {}, dev, err
	}
	if dev.IsCUDA() && !strings.Contains(c.String("device"), ":") {
		dev = tb.CUDA(env.LocalRank)
	}
	backend := dist.Backend(c.String("dist-backend"))
	switch {
	case backend == "" && dev.IsCUDA():
		backend = "nccl"
	case backend == "":
		backend = "gloo"
	case backend != "gloo" && backend != "nccl":
		return nil, nil, dev, usageError(c, "--dist-backend must be gloo or nccl, got %q", backend)
	}
	g, release, err := initGroup(env, backend, c.Duration("dist-timeout"))
	if err != nil {
		return nil, nil, dev, fmt.Errorf("rank %d of %d: joining the process group at %s:%d: %w", env.Rank, env.WorldSize, env.MasterAddr, env.MasterPort, err)
	}
	return g, release, dev, nil
}

// initGroup joins the process group env describes; release frees it.
func initGroup(env dist.Env, backend dist.Backend, timeout time.Duration) (*dist.Group, func(), error) {
	g, err := dist.Init(env, backend, timeout)
	if err != nil {
		return nil, nil, err
	}
	return g, func() { g.Close() }, nil
}

// distHints say what to check after a failure of a data-parallel run.
var distHints = []struct {
	err  error
	hint string
}{
	{dist.ErrTimeout, " (a rank did not answer within --dist-timeout: check that every rank started and that MASTER_ADDR:MASTER_PORT is reachable)"},
	{dist.ErrPeerFailed, " (another rank stopped: its own error says why)"},
	{dist.ErrBackendUnavailable, " (this libtorch lacks the backend: use --dist-backend gloo)"},
	{training.ErrGroupSettings, " (start every rank with the same settings; --batch-size must be a multiple of the number of processes)"},
}

// withDistHint appends the hint of err's kind to its message.
func withDistHint(err error) error {
	for _, h := range distHints {
		if errors.Is(err, h.err) {
			return fmt.Errorf("%w%s", err, h.hint)
		}
	}
	return err
}
