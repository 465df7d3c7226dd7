package training

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"

	"github.com/puad-go/puad/internal/atomicfile"
	"github.com/puad-go/puad/internal/prefetch"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// resumeFrom decides, before a run does any work, whether it resumes from
// the checkpoint in dir: when asked to and there is one. Without resume, a
// checkpoint there is an error (ErrCheckpointExists).
func resumeFrom(dir string, resume bool, log io.Writer) (bool, error) {
	path := filepath.Join(dir, CheckpointFile)
	has := exists(path)
	switch {
	case resume && !has:
		fmt.Fprintf(log, "no checkpoint in %s: starting from the beginning\n", dir)
	case !resume && has:
		return false, newRunError(ErrCheckpointExists, "an interrupted run left %s", path)
	}
	return has, nil
}

// runSetup describes a training run to openRun.
type runSetup struct {
	// dir is the output folder: the checkpoint and the loss log go there.
	dir string
	// resume continues from the checkpoint in dir (see resumeFrom).
	resume bool
	// config holds the settings a checkpoint must agree on to be resumed
	// (stored as JSON).
	config any
	// modules are the networks trained, stored in checkpoints under their prefixes.
	modules []namedModule
	// params gives the optimiser's parameters, in its order; it is called
	// once the networks are loaded.
	params func() []*tb.Tensor
	// data is the stream drawn ahead of the steps by the prefetch pipeline
	// (checkpoints keep its state as of the last step done); streams are
	// used by the steps themselves (checkpoints keep their current state).
	// data is nil when every draw comes from one stream the steps share
	// (the reference random stream, in streams).
	data    *tb.Generator
	streams map[string]*tb.Generator
	// logHeader is the loss log's header; each row is the iteration, the
	// step's losses and the learning rate.
	logHeader string
	// total is the run's number of iterations: a checkpoint beyond it is refused.
	total int
	dev   tb.Device
	log   io.Writer
	// replica marks a rank of a data-parallel run other than rank 0: it
	// writes no files (no lock, loss log or checkpoint) and starts from
	// rank 0's state, received by broadcast.
	replica bool
}

// run is a training run in progress. It owns the optimiser, the loss log
// and the tensors read from a checkpoint that nobody took; Close frees them.
type run struct {
	runSetup
	ckptPath string
	config   string
	unlock   func()
	opt      *tb.Adam
	lossLog  *lossLog
	// loaded are the extra tensors of the checkpoint resumed from (see take);
	// extra are the tensors saved with each checkpoint (borrowed).
	loaded, extra map[string]*tb.Tensor
	// start is the first iteration to run; resumed says whether the run
	// continues from a checkpoint; savedAt is the iteration of the last
	// checkpoint written or resumed from (-1: none).
	start   int
	savedAt int
	resumed bool
	logAt   int64
	// lastLoss is the total loss of the last iteration done (NaN: none) and
	// dataState the data stream's state after that iteration's draws.
	lastLoss  float64
	dataState []byte
}

// openRun prepares a run in s.dir: it resumes from the checkpoint there
// when asked (loading the networks, the optimiser's state and the random
// streams), makes the networks trainable and creates the optimiser.
func openRun(s runSetup) (_ *run, err error) {
	cfg, err := json.Marshal(s.config)
	if err != nil {
		return nil, err
	}
	r := &run{runSetup: s, ckptPath: filepath.Join(s.dir, CheckpointFile), config: string(cfg), logAt: -1, lastLoss: math.NaN(), savedAt: -1}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	var ck *checkpointFile
	if !s.replica {
		if r.unlock, err = lockDir(s.dir); err != nil {
			return nil, err
		}
		if err := atomicfile.RemoveTemps(s.dir, runFiles...); err != nil {
			return nil, err
		}
	}
	if s.resume && !s.replica {
		if ck, err = openCheckpoint(r.ckptPath); err != nil {
			return nil, err
		}
		defer ck.Close()
		if err := r.restore(ck); err != nil {
			return nil, err
		}
	}
	for _, nm := range s.modules {
		if err := models.SetRequiresGrad(nm.m, true); err != nil {
			return nil, err
		}
	}
	r.opt = tb.NewAdam(s.params(), learningRate, weightDecay)
	if ck != nil {
		if err := ck.loadOptimizer(r.opt, s.dev); err != nil {
			return nil, err
		}
		fmt.Fprintf(s.log, "resuming from %s at iteration %d\n", r.ckptPath, r.start)
	}
	if s.data != nil {
		if r.dataState, err = s.data.State(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// restore takes the run's state, random streams and networks from a checkpoint.
func (r *run) restore(ck *checkpointFile) error {
	st, err := ck.state(r.dev)
	if err != nil {
		return err
	}
	r.loaded = st.Extra
	if st.Config != r.config {
		return newRunError(ErrCheckpointMismatch, "checkpoint %s was written by a run with other settings (%s, now %s)", r.ckptPath, st.Config, r.config)
	}
	if st.Iteration < 0 || st.Iteration > r.total || st.LogOffset < 0 {
		return newRunError(ErrCheckpointMismatch, "checkpoint %s records iteration %d (log offset %d), outside a run of %d iterations", r.ckptPath, st.Iteration, st.LogOffset, r.total)
	}
	streams := map[string]*tb.Generator{}
	if r.data != nil {
		streams[streamData] = r.data
	}
	for name, g := range r.streams {
		streams[name] = g
	}
	for name, g := range streams {
		if err := g.SetState(st.RNG[name]); err != nil {
			return ck.fail(fmt.Errorf("random stream %s: %w", name, err))
		}
	}
	if err := ck.loadModules(r.modules, r.dev); err != nil {
		return err
	}
	r.start, r.logAt, r.lastLoss, r.resumed, r.savedAt = st.Iteration, st.LogOffset, st.LastLoss, true, st.Iteration
	return nil
}

// take hands over an extra tensor of the checkpoint resumed from (nil when absent).
func (r *run) take(name string) *tb.Tensor {
	t := r.loaded[name]
	delete(r.loaded, name)
	return t
}

// Close frees the optimiser and the tensors nobody took, and closes the loss log.
func (r *run) Close() {
	if r.opt != nil {
		r.opt.Close()
	}
	r.lossLog.Close()
	closeAll(r.loaded)
	r.loaded = nil
	if r.unlock != nil {
		r.unlock()
		r.unlock = nil
	}
}

// save writes a checkpoint after done iterations (a replica writes none).
func (r *run) save(done int) error {
	if r.replica {
		r.savedAt = done
		return nil
	}
	off, err := r.lossLog.Sync()
	if err != nil {
		return err
	}
	rng := map[string][]byte{}
	if r.data != nil {
		rng[streamData] = r.dataState
	}
	for name, g := range r.streams {
		if rng[name], err = g.State(); err != nil {
			return err
		}
	}
	if err := saveCheckpoint(r.ckptPath, checkpointState{
		Iteration: done, LogOffset: off, Config: r.config, LastLoss: r.lastLoss, RNG: rng, Extra: r.extra,
	}, r.modules, r.opt); err != nil {
		return err
	}
	r.savedAt = done
	return nil
}

// checkpoint saves a checkpoint on the way (see save); a failure is a
// warning on the log, since the run goes on and will still save its model.
func (r *run) checkpoint(done int) {
	if err := r.save(done); err != nil {
		fmt.Fprintf(r.log, "warning: training goes on without a checkpoint at iteration %d: %v\n", done, err)
	}
}

// interrupted saves a checkpoint after done iterations (unless the last
// one is of that iteration) and returns the InterruptedError.
func (r *run) interrupted(ctx context.Context, done int) error {
	if r.savedAt == done && exists(r.ckptPath) {
		return r.stopped(ctx, done)
	}
	if err := r.save(done); err != nil {
		return fmt.Errorf("interrupted, and saving the checkpoint failed: %w", err)
	}
	return r.stopped(ctx, done)
}

// stopped is the InterruptedError of a run stopped after done iterations
// whose checkpoint is saved.
func (r *run) stopped(ctx context.Context, done int) error {
	cause := ctx.Err()
	if cause == nil {
		cause = context.Canceled
	}
	return &InterruptedError{Iteration: done, Checkpoint: r.ckptPath, Cause: cause}
}

// finish removes the checkpoint of a completed run.
func (r *run) finish() error {
	if err := os.Remove(r.ckptPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// observeDraws, when not nil, is handed every random draw of the input data
// as the run uses it: the samples of the teacher statistics (statDraws),
// then each iteration's job (teacherJob, studentJob). Tests set it to
// compare the draws with the reference's.
var observeDraws func(any)

// diverged is the error of a run whose loss became non-finite at iteration
// i: the step is not kept, and the last checkpoint (if any) stays as it was.
func (r *run) diverged(i int, loss float64) error {
	kept := "no checkpoint was written"
	if r.savedAt >= 0 && exists(r.ckptPath) {
		kept = fmt.Sprintf("the checkpoint of iteration %d is kept in %s", r.savedAt, r.ckptPath)
	}
	return newRunError(ErrNonFiniteLoss, "training stopped: the loss of iteration %d is %v; %s", i, loss, kept)
}

// schedule describes the iterations of a run to trainLoop. J is what an
// iteration draws from the data stream, B the inputs loaded for it.
type schedule[J, B any] struct {
	total int
	// next draws the next iteration's job (from the data stream, in
	// order); load prepares its inputs, in worker goroutines (workers,
	// at most ahead jobs in advance: prefetch.Ordered).
	next           func() (J, bool, error)
	load           func(J) (B, error)
	workers, ahead int
	// dataState is the data stream's state after the job's draws.
	dataState func(J) []byte
	// lr is the learning rate of iteration i (counting from 0).
	lr func(i int) float64
	// step runs one optimisation step and returns the losses of the log
	// row, the total loss first.
	step func(B, J) ([]float64, error)
	// stage and progress report each iteration done with its total loss.
	stage    string
	progress Progress
	// every saves a checkpoint every that many iterations (0: none);
	// atEnd also saves one after the last iteration.
	every int
	atEnd bool
	// agree, when not nil, is called by every rank of a data-parallel run
	// after each step with the step's losses and whether this rank was
	// interrupted; it returns the losses of the whole batch and whether
	// any rank was. The ranks then stop together, after the same step, and
	// an interruption does not stop the data pipeline by itself.
	agree func(losses []float64, stop bool) ([]float64, bool, error)
	// shared, when not nil, is a stream that next shares with the steps
	// (the reference random stream: data and dropout): next then draws a
	// job only once the previous step and its checkpoint are done (see
	// sharedDraws).
	shared *tb.Generator
}

// trainLoop runs the iterations from r.start on: it keeps the loss log,
// saves the checkpoints and, when ctx is cancelled, saves one and returns
// the InterruptedError.
func trainLoop[J, B any](ctx context.Context, r *run, sc schedule[J, B]) error {
	if !r.replica {
		var err error
		if r.lossLog, err = openLossLog(filepath.Join(r.dir, "train_loss.csv"), r.logHeader, r.logAt); err != nil {
			return err
		}
	}
	pipeCtx := ctx
	if sc.agree != nil {
		pipeCtx = context.WithoutCancel(ctx)
	}
	pctx, cancel := context.WithCancel(pipeCtx)
	defer cancel()
	next, shared := sc.next, newSharedDraws(sc.shared)
	if shared != nil {
		next = drawAfterSteps(pctx, shared, sc.next)
	}
	// stop saves a checkpoint after i iterations, the shared stream as it
	// was before the draws of the job not delivered.
	stop := func(i int) error {
		if err := shared.rewind(); err != nil {
			return err
		}
		return r.interrupted(ctx, i)
	}
	stream := prefetch.Ordered(pctx, sc.workers, sc.ahead, next, sc.load)
	for i := r.start; i < sc.total; i++ {
		if ctx.Err() != nil && sc.agree == nil {
			return stop(i)
		}
		if err := shared.release(); err != nil {
			return err
		}
		f, ok := <-stream
		if !ok {
			return stop(i)
		}
		if f.Err != nil {
			if ctx.Err() != nil {
				return stop(i)
			}
			return fmt.Errorf("iteration %d: %w", i+1, f.Err)
		}
		shared.delivered()
		if observeDraws != nil {
			observeDraws(f.Job)
		}
		r.opt.LR = sc.lr(i)
		losses, err := sc.step(f.Out, f.Job)
		if err != nil {
			return fmt.Errorf("iteration %d: %w", i+1, err)
		}
		stopping := false
		if sc.agree != nil {
			if losses, stopping, err = sc.agree(losses, ctx.Err() != nil); err != nil {
				return fmt.Errorf("iteration %d: %w", i+1, err)
			}
		}
		if math.IsNaN(losses[0]) || math.IsInf(losses[0], 0) {
			return r.diverged(i+1, losses[0])
		}
		r.dataState, r.lastLoss = sc.dataState(f.Job), losses[0]
		if r.lossLog != nil {
			r.lossLog.Row(i+1, append(losses, r.opt.LR)...)
		}
		sc.progress(sc.stage, i+1, sc.total, r.lastLoss)
		due := sc.every > 0 && (i+1)%sc.every == 0
		if i+1 == sc.total {
			due = sc.atEnd
		}
		if due {
			r.checkpoint(i + 1)
		}
		if stopping && i+1 < sc.total {
			return stop(i + 1)
		}
	}
	cancel()
	return r.lossLog.Close()
}

// sharedDraws lets the jobs' draws and the steps share one stream, in
// order: the draws of job i start once the loop releases them, after step
// i−1 and its checkpoint. An interrupted run rewinds the stream to its state
// before the draws of a job released but not delivered, so that the
// checkpoint holds the stream as it was after the last step done.
type sharedDraws struct {
	g       *tb.Generator
	gate    chan struct{}
	mu      sync.Mutex // held while next draws
	stopped bool
	before  []byte // the stream's state when the pending job was released
	pending bool
}

// newSharedDraws returns nil (draws that need no order) when g is nil.
func newSharedDraws(g *tb.Generator) *sharedDraws {
	if g == nil {
		return nil
	}
	return &sharedDraws{g: g, gate: make(chan struct{}, 1)}
}

// drawAfterSteps returns next made to wait for s's release.
func drawAfterSteps[J any](ctx context.Context, s *sharedDraws, next func() (J, bool, error)) func() (J, bool, error) {
	return func() (J, bool, error) {
		var zero J
		select {
		case <-s.gate:
		case <-ctx.Done():
			return zero, false, ctx.Err()
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.stopped {
			return zero, false, context.Canceled
		}
		return next()
	}
}

// release lets next draw one job.
func (s *sharedDraws) release() error {
	if s == nil {
		return nil
	}
	st, err := s.g.State()
	if err != nil {
		return err
	}
	s.before, s.pending = st, true
	s.gate <- struct{}{}
	return nil
}

// delivered records that the released job reached the loop.
func (s *sharedDraws) delivered() {
	if s != nil {
		s.pending = false
	}
}

// rewind stops further draws, waits for one in progress and restores the
// stream's state from before the pending job's draws.
func (s *sharedDraws) rewind() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if !s.pending {
		return nil
	}
	s.pending = false
	return s.g.SetState(s.before)
}
