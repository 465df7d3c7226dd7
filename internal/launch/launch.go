// Package launch starts the local worker processes of a data-parallel run,
// as torchrun does: it re-executes a program once per local rank with the
// variables torch.distributed reads (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), forwards SIGINT and SIGTERM
// to them, waits for all, and when one fails stops the others and reports
// which rank failed and how.
package launch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// WorkerEnv marks a process started by Run: its value is "1".
const WorkerEnv = "PUAD_LAUNCH_WORKER"

// DefaultGrace is how long Run waits for the other workers to stop after
// one failed before it kills them.
const DefaultGrace = 10 * time.Second

// Config describes the workers of one machine.
type Config struct {
	// Exe and Args are the program each worker runs (Args without the
	// program's name).
	Exe  string
	Args []string
	// NProc is the number of workers on this machine; NNodes the number of
	// machines (1 when 0) and NodeRank this machine's index: worker i here
	// has the global rank NodeRank·NProc + i.
	NProc, NNodes, NodeRank int
	// MasterAddr and MasterPort are where rank 0 serves the store; with one
	// machine they default to 127.0.0.1 and a free port.
	MasterAddr string
	MasterPort int
	// Env is the workers' environment before the variables above
	// (os.Environ() when nil); Stdout and Stderr receive their output
	// (os.Stdout and os.Stderr when nil).
	Env            []string
	Stdout, Stderr io.Writer
	// Grace is the time the others get to stop after a failure (DefaultGrace when 0).
	Grace time.Duration
}

// WorkerError is the failure of one worker: its global rank, how it ended
// and the last line it wrote on stderr.
type WorkerError struct {
	Rank int
	Err  error
	Last string
}

func (e *WorkerError) Error() string {
	if e.Last == "" {
		return fmt.Sprintf("rank %d failed: %v", e.Rank, e.Err)
	}
	return fmt.Sprintf("rank %d failed (%v): %s", e.Rank, e.Err, e.Last)
}

func (e *WorkerError) Unwrap() error { return e.Err }

// ErrConfig is a configuration Run refuses.
var ErrConfig = errors.New("launch: invalid configuration")

func (c *Config) fill() error {
	if c.NNodes == 0 {
		c.NNodes = 1
	}
	if c.NProc < 1 || c.NNodes < 1 || c.NodeRank < 0 || c.NodeRank >= c.NNodes {
		return fmt.Errorf("%w: %d workers per machine, machine %d of %d", ErrConfig, c.NProc, c.NodeRank, c.NNodes)
	}
	if c.NNodes > 1 && (c.MasterAddr == "" || c.MasterPort == 0) {
		return fmt.Errorf("%w: a run on %d machines needs the address and port of rank 0's machine", ErrConfig, c.NNodes)
	}
	if c.MasterAddr == "" {
		c.MasterAddr = "127.0.0.1"
	}
	if c.MasterPort == 0 {
		p, err := FreePort()
		if err != nil {
			return err
		}
		c.MasterPort = p
	}
	if c.Env == nil {
		c.Env = os.Environ()
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	return nil
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("launch: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// workerEnv is the environment of local worker i.
func (c *Config) workerEnv(i int) []string {
	set := map[string]string{
		"RANK":             strconv.Itoa(c.NodeRank*c.NProc + i),
		"WORLD_SIZE":       strconv.Itoa(c.NNodes * c.NProc),
		"LOCAL_RANK":       strconv.Itoa(i),
		"LOCAL_WORLD_SIZE": strconv.Itoa(c.NProc),
		"GROUP_RANK":       strconv.Itoa(c.NodeRank),
		"MASTER_ADDR":      c.MasterAddr,
		"MASTER_PORT":      strconv.Itoa(c.MasterPort),
		WorkerEnv:          "1",
	}
	var env []string
	for _, kv := range c.Env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			env = append(env, kv)
		}
	}
	for _, k := range []string{"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT", WorkerEnv} {
		env = append(env, k+"="+set[k])
	}
	return env
}

// worker is one started process.
type worker struct {
	rank int
	cmd  *exec.Cmd
	tail *lastLine
}

// exit is how a worker ended.
type exit struct {
	w   *worker
	err error
}

// Run starts the workers and waits for them. It returns nil when every
// worker succeeded; otherwise the *WorkerError of the first that failed,
// after stopping the others (SIGTERM, then SIGKILL after the grace time).
// A SIGINT or SIGTERM received while they run is forwarded to every worker,
// which then stop on their own: Run waits for them all; cancelling ctx
// sends them SIGTERM.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.fill(); err != nil {
		return err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	workers, exits, err := start(&cfg)
	if err != nil {
		return err
	}
	var first error
	left := len(workers)
	var kill <-chan time.Time
	// Once a signal is forwarded, the workers stop on their own (rank 0
	// may still be saving a checkpoint): a failure no longer stops the others.
	signalled := false
	stopAll := func(sig os.Signal) {
		for _, w := range workers {
			w.cmd.Process.Signal(sig)
		}
	}
	done := ctx.Done()
	for left > 0 {
		select {
		case s := <-sigs:
			signalled = true
			stopAll(s)
		case <-done:
			done = nil
			stopAll(syscall.SIGTERM)
			if kill == nil {
				kill = time.After(cfg.Grace)
			}
		case e := <-exits:
			left--
			if e.err != nil && first == nil {
				first = &WorkerError{Rank: e.w.rank, Err: e.err, Last: e.w.tail.String()}
				if !signalled {
					stopAll(syscall.SIGTERM)
					kill = time.After(cfg.Grace)
				}
			}
		case <-kill:
			stopAll(syscall.SIGKILL)
		}
	}
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// start starts the workers; each one's end is sent on the returned channel.
// When one cannot start, those started are killed and waited for.
func start(cfg *Config) ([]*worker, <-chan exit, error) {
	exits := make(chan exit, cfg.NProc)
	var workers []*worker
	for i := 0; i < cfg.NProc; i++ {
		w := &worker{rank: cfg.NodeRank*cfg.NProc + i, tail: &lastLine{}}
		w.cmd = exec.Command(cfg.Exe, cfg.Args...)
		w.cmd.Env = cfg.workerEnv(i)
		w.cmd.Stdout = cfg.Stdout
		w.cmd.Stderr = io.MultiWriter(cfg.Stderr, w.tail)
		// Own process group: a terminal's Ctrl-C reaches the workers once,
		// through Run; and they die with the launcher.
		w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := w.cmd.Start(); err != nil {
			for _, o := range workers {
				o.cmd.Process.Kill()
				<-exits
			}
			return nil, nil, fmt.Errorf("launch: starting rank %d: %w", w.rank, err)
		}
		workers = append(workers, w)
		go func() { exits <- exit{w, w.cmd.Wait()} }()
	}
	return workers, exits, nil
}

// lastLine keeps the last non-empty line written to it.
type lastLine struct {
	mu   sync.Mutex
	line []byte
	cur  []byte
}

func (l *lastLine) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range p {
		if b == '\n' {
			if len(bytes.TrimSpace(l.cur)) > 0 {
				l.line = append(l.line[:0], l.cur...)
			}
			l.cur = l.cur[:0]
			continue
		}
		if len(l.cur) < 4096 {
			l.cur = append(l.cur, b)
		}
	}
	return len(p), nil
}

func (l *lastLine) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(bytes.TrimSpace(l.cur)) > 0 {
		return string(bytes.TrimSpace(l.cur))
	}
	return string(bytes.TrimSpace(l.line))
}
