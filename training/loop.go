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
	data    *tb.Generator
	streams map[string]*tb.Generator
	// logHeader is the loss log's header; each row is the iteration, the
	// step's losses and the learning rate.
	logHeader string
	// total is the run's number of iterations: a checkpoint beyond it is refused.
	total int
	dev   tb.Device
	log   io.Writer
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
	if r.unlock, err = lockDir(s.dir); err != nil {
		return nil, err
	}
	if err := atomicfile.RemoveTemps(s.dir, runFiles...); err != nil {
		return nil, err
	}
	var ck *checkpointFile
	if s.resume {
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
	if r.dataState, err = s.data.State(); err != nil {
		return nil, err
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
	streams := map[string]*tb.Generator{streamData: r.data}
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

// save writes a checkpoint after done iterations.
func (r *run) save(done int) error {
	off, err := r.lossLog.Sync()
	if err != nil {
		return err
	}
	rng := map[string][]byte{streamData: r.dataState}
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
}

// trainLoop runs the iterations from r.start on: it keeps the loss log,
// saves the checkpoints and, when ctx is cancelled, saves one and returns
// the InterruptedError.
func trainLoop[J, B any](ctx context.Context, r *run, sc schedule[J, B]) error {
	var err error
	if r.lossLog, err = openLossLog(filepath.Join(r.dir, "train_loss.csv"), r.logHeader, r.logAt); err != nil {
		return err
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream := prefetch.Ordered(pctx, sc.workers, sc.ahead, sc.next, sc.load)
	for i := r.start; i < sc.total; i++ {
		if ctx.Err() != nil {
			return r.interrupted(ctx, i)
		}
		f, ok := <-stream
		if !ok {
			return r.interrupted(ctx, i)
		}
		if f.Err != nil {
			return fmt.Errorf("iteration %d: %w", i+1, f.Err)
		}
		if observeDraws != nil {
			observeDraws(f.Job)
		}
		r.opt.LR = sc.lr(i)
		losses, err := sc.step(f.Out, f.Job)
		if err != nil {
			return fmt.Errorf("iteration %d: %w", i+1, err)
		}
		if math.IsNaN(losses[0]) || math.IsInf(losses[0], 0) {
			return r.diverged(i+1, losses[0])
		}
		r.dataState, r.lastLoss = sc.dataState(f.Job), losses[0]
		r.lossLog.Row(i+1, append(losses, r.opt.LR)...)
		sc.progress(sc.stage, i+1, sc.total, r.lastLoss)
		due := sc.every > 0 && (i+1)%sc.every == 0
		if i+1 == sc.total {
			due = sc.atEnd
		}
		if due {
			r.checkpoint(i + 1)
		}
	}
	cancel()
	return r.lossLog.Close()
}
