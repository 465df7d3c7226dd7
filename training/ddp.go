package training

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/puad-go/puad/models"

	tb "github.com/puad-go/puad/torchbind"
	"github.com/puad-go/puad/torchbind/dist"
)

// Data-parallel teacher distillation. Every rank of the process group runs
// the same loop: the same job is drawn from the same data stream on every
// rank (rank 0's seed and stream state are adopted by all), each rank loads
// and forwards its contiguous share of the job's images, the gradients are
// averaged over the ranks in one bucketed all-reduce after the backward
// pass, and every rank takes the same Adam step. A rank's loss is the mean
// over its share, so the average of the ranks' losses is the loss of the
// whole batch, and the average of their gradients its gradient. Only rank 0
// touches the output folder; the others receive its state (weights,
// optimiser, data stream, statistics) by broadcast.

// replicas is a data-parallel run's process group as one rank sees it; the
// zero value (no group) is a run in one process, where every collective
// does nothing.
type replicas struct {
	g   *dist.Group
	dev tb.Device // where the collectives' tensors live (NCCL needs CUDA ones)
}

// vector returns vals as a tensor on r's device, for a collective.
func vector[E tb.Element](r replicas, vals []E) (*tb.Tensor, error) {
	t, err := tb.FromSlice(vals, int64(len(vals)))
	if err != nil || r.dev == tb.CPU {
		return t, err
	}
	defer t.Close()
	return t.ToDevice(r.dev)
}

func (r replicas) rank() int {
	if r.g == nil {
		return 0
	}
	return r.g.Rank()
}

func (r replicas) size() int {
	if r.g == nil {
		return 1
	}
	return r.g.WorldSize()
}

// root says whether this rank writes the run's files (rank 0).
func (r replicas) root() bool { return r.rank() == 0 }

// share is this rank's contiguous part [lo, hi) of n items.
func (r replicas) share(n int) (lo, hi int) {
	w, k := r.size(), r.rank()
	return k * n / w, (k + 1) * n / w
}

func (r replicas) broadcast(ts ...*tb.Tensor) error {
	if r.g == nil {
		return nil
	}
	if err := r.g.Broadcast(ts, 0); err != nil {
		return fmt.Errorf("rank %d: broadcast from rank 0: %w", r.rank(), err)
	}
	return nil
}

func (r replicas) allReduce(op dist.ReduceOp, ts ...*tb.Tensor) error {
	if r.g == nil {
		return nil
	}
	if err := r.g.AllReduce(ts, op); err != nil {
		return fmt.Errorf("rank %d: all-reduce: %w", r.rank(), err)
	}
	return nil
}

func (r replicas) barrier() error {
	if r.g == nil {
		return nil
	}
	if err := r.g.Barrier(); err != nil {
		return fmt.Errorf("rank %d: barrier: %w", r.rank(), err)
	}
	return nil
}

// agree is a collective: every rank learns whether any rank failed. It
// returns this rank's own error, or, when only other ranks failed, an
// error matching dist.ErrPeerFailed.
func (r replicas) agree(err error) error {
	if r.size() == 1 {
		return err
	}
	flag := 0.0
	if err != nil {
		flag = 1
	}
	t, terr := vector(r, []float32{float32(flag)})
	if terr != nil {
		return errors.Join(err, terr)
	}
	defer t.Close()
	if rerr := r.allReduce(dist.Sum, t); rerr != nil {
		return errors.Join(err, rerr)
	}
	if err != nil {
		return err
	}
	n, err := t.Item()
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("rank %d: %d other rank(s) failed while preparing the run: %w", r.rank(), int(n), dist.ErrPeerFailed)
	}
	return nil
}

// broadcastBytes returns rank 0's b on every rank.
func (r replicas) broadcastBytes(b []byte) ([]byte, error) {
	if r.size() == 1 {
		return b, nil
	}
	n, err := vector(r, []int64{int64(len(b))})
	if err != nil {
		return nil, err
	}
	defer n.Close()
	if err := r.broadcast(n); err != nil {
		return nil, err
	}
	l, err := n.Int64s()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, l[0])
	if r.root() {
		buf = b
	}
	if len(buf) == 0 {
		return buf, nil
	}
	t, err := vector(r, buf)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	if err := r.broadcast(t); err != nil {
		return nil, err
	}
	return tb.Values[uint8](t)
}

// ddpSettings are the settings every rank must share; the seed is rank
// 0's on every rank.
type ddpSettings struct {
	Size         string `json:"size"`
	Iterations   int    `json:"iterations"`
	BatchSize    int    `json:"batch_size"`
	StatSamples  int    `json:"stat_samples"`
	ImgSize      int    `json:"img_size"`
	Seed         uint64 `json:"seed"`
	ReferenceRNG bool   `json:"reference_rng"`
	Precision    string `json:"precision"`
}

// adoptSettings makes every rank run with rank 0's seed and checks that
// the other settings agree, and that the batch splits evenly over the
// ranks; the check's outcome is agreed on by every rank.
func (r replicas) adoptSettings(cfg *TeacherConfig) error {
	if r.g == nil {
		return nil
	}
	own := ddpSettings{
		Size: string(cfg.Size), Iterations: cfg.Iterations, BatchSize: cfg.BatchSize, StatSamples: cfg.StatSamples,
		ImgSize: cfg.ImgSize, Seed: cfg.Seed, ReferenceRNG: cfg.ReferenceRNG, Precision: string(cfg.Precision),
	}
	mine, err := json.Marshal(own)
	if err != nil {
		return err
	}
	data, err := r.broadcastBytes(mine)
	if err != nil {
		return err
	}
	var root ddpSettings
	if err := json.Unmarshal(data, &root); err != nil {
		return r.agree(fmt.Errorf("rank %d: rank 0's settings: %w", r.rank(), err))
	}
	cfg.Seed, own.Seed = root.Seed, root.Seed
	var bad error
	if own != root {
		theirs, _ := json.Marshal(own)
		bad = newRunError(ErrGroupSettings, "rank %d runs with other settings than rank 0 (%s, rank 0: %s)", r.rank(), theirs, data)
	} else if cfg.BatchSize%r.size() != 0 {
		bad = newRunError(ErrGroupSettings, "batch size %d does not split evenly over %d processes", cfg.BatchSize, r.size())
	}
	return r.agree(bad)
}

// syncParams gives every rank rank 0's values of ps (trainable
// parameters: they are received into detached copies, then copied in
// without autograd recording).
func (r replicas) syncParams(ps []*tb.Tensor) error {
	if r.size() == 1 {
		return nil
	}
	return tb.NoGrad(func() error {
		s := tb.NewScope()
		defer s.Close()
		cs := make([]*tb.Tensor, len(ps))
		for i, p := range ps {
			cs[i] = s.T(tb.Clone(p))
		}
		if err := s.Err(); err != nil {
			return err
		}
		if err := r.broadcast(cs...); err != nil {
			return err
		}
		for i, p := range ps {
			if err := tb.CopyInto(p, cs[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// syncOptimizer gives every rank rank 0's optimiser state (a resumed run's;
// none before the first step).
func (r replicas) syncOptimizer(opt *tb.Adam) error {
	if r.size() == 1 {
		return nil
	}
	st := opt.State()
	steps := make([]int64, len(st))
	for i, s := range st {
		steps[i] = s.Step
	}
	t, err := vector(r, steps)
	if err != nil {
		return err
	}
	defer t.Close()
	if err := r.broadcast(t); err != nil {
		return err
	}
	if steps, err = t.Int64s(); err != nil {
		return err
	}
	if !r.root() {
		if st, err = zeroAdamState(opt.Params, steps); err != nil {
			return err
		}
		if err := opt.SetState(st); err != nil {
			return err
		}
	}
	var ts []*tb.Tensor
	for _, s := range st {
		if s.ExpAvg != nil {
			ts = append(ts, s.ExpAvg, s.ExpAvgSq)
		}
	}
	if len(ts) == 0 {
		return nil
	}
	return r.broadcast(ts...)
}

// zeroAdamState is an optimiser state of zeros for the parameters whose
// step count is positive (none for the others).
func zeroAdamState(ps []*tb.Tensor, steps []int64) (st []tb.AdamState, err error) {
	st = make([]tb.AdamState, len(ps))
	defer func() {
		if err != nil {
			for _, s := range st {
				s.ExpAvg.Close()
				s.ExpAvgSq.Close()
			}
		}
	}()
	for i, p := range ps {
		if steps[i] == 0 {
			continue
		}
		info, err := p.Info()
		if err != nil {
			return st, err
		}
		st[i].Step = steps[i]
		if st[i].ExpAvg, err = tb.Zeros(info.Shape, info.DType, info.Device); err != nil {
			return st, err
		}
		if st[i].ExpAvgSq, err = tb.Zeros(info.Shape, info.DType, info.Device); err != nil {
			return st, err
		}
	}
	return st, nil
}

// syncStart gives every rank rank 0's start: its first iteration, the
// networks' weights, the optimiser state and the data stream.
func (r replicas) syncStart(run *run, data *tb.Generator) error {
	if r.size() == 1 {
		return nil
	}
	start, err := vector(r, []int64{int64(run.start)})
	if err != nil {
		return err
	}
	defer start.Close()
	if err := r.broadcast(start); err != nil {
		return err
	}
	v, err := start.Int64s()
	if err != nil {
		return err
	}
	run.start = int(v[0])
	if err := r.syncParams(run.params()); err != nil {
		return err
	}
	if err := r.syncOptimizer(run.opt); err != nil {
		return err
	}
	state, err := data.State()
	if err != nil {
		return err
	}
	if state, err = r.broadcastBytes(state); err != nil {
		return err
	}
	if err := data.SetState(state); err != nil {
		return err
	}
	run.dataState = state
	return nil
}

// syncLossScale gives every rank rank 0's loss scale (from its checkpoint
// when it resumed); a nil scaler has nothing to share.
func (r replicas) syncLossScale(s *lossScaler) error {
	if r.size() == 1 || s == nil {
		return nil
	}
	if err := r.broadcast(s.state); err != nil {
		return err
	}
	return s.restore(s.state)
}

// averageGrads replaces each parameter's gradient by its mean over the
// ranks, in one all-reduce, and returns the time it took. The gradients
// are only complete once the backward pass is over: the reduction cannot
// overlap it.
func (r replicas) averageGrads(ps []*tb.Tensor) (time.Duration, error) {
	if r.g == nil {
		return 0, nil
	}
	start := time.Now()
	s := tb.NewScope()
	defer s.Close()
	var gs []*tb.Tensor
	for _, p := range ps {
		g := s.T(p.Grad())
		if err := s.Err(); err != nil {
			return 0, err
		}
		if g != nil {
			gs = append(gs, g)
		}
	}
	if err := r.allReduce(dist.Avg, gs...); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// meanLoss returns the mean of the ranks' losses (in float32, as a
// single process computes its loss) and whether any rank asks to stop.
func (r replicas) meanLoss(loss float64, stop bool) (float64, bool, error) {
	if r.g == nil {
		return loss, stop, nil
	}
	flag := float32(0)
	if stop {
		flag = 1
	}
	t, err := vector(r, []float32{float32(loss), flag})
	if err != nil {
		return 0, false, err
	}
	defer t.Close()
	if err := r.allReduce(dist.Sum, t); err != nil {
		return 0, false, err
	}
	v, err := t.Float32s()
	if err != nil {
		return 0, false, err
	}
	return float64(v[0] / float32(r.size())), v[1] > 0, nil
}

// onDevice runs the collective f on t, a CPU tensor, through a copy on r's
// device when that is not the CPU.
func (r replicas) onDevice(t *tb.Tensor, f func(*tb.Tensor) error) error {
	if r.dev == tb.CPU {
		return f(t)
	}
	d, err := t.ToDevice(r.dev)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := f(d); err != nil {
		return err
	}
	return tb.CopyInto(t, d)
}

// rootFlags returns rank 0's flags on every rank.
func (r replicas) rootFlags(a, b bool) ([2]bool, error) {
	if r.size() == 1 {
		return [2]bool{a, b}, nil
	}
	v := []byte{0, 0}
	if a {
		v[0] = 1
	}
	if b {
		v[1] = 1
	}
	got, err := r.broadcastBytes(v)
	if err != nil {
		return [2]bool{}, err
	}
	return [2]bool{got[0] == 1, got[1] == 1}, nil
}

// stat returns one of the teacher's feature statistics (on the CPU), rank
// 0's on every rank: computed by every rank together when need (rank 0
// saves it to path), else read by rank 0 from path.
func (r replicas) stat(path string, need bool, log io.Writer, compute func() (*tb.Tensor, error)) (t *tb.Tensor, err error) {
	switch {
	case need:
		if t, err = compute(); err == nil && r.root() {
			err = tb.SaveTensor(path, t)
		}
	case r.root():
		if t, err = loadStat(path); err == nil {
			fmt.Fprintf(log, "loaded %s from %s\n", strings.TrimSuffix(filepath.Base(path), ".pt"), path)
		}
	default:
		t, err = tb.Zeros([]int64{models.TeacherChannels}, tb.Float32, tb.CPU)
	}
	if err = r.agree(err); err == nil && r.size() > 1 {
		err = r.onDevice(t, func(d *tb.Tensor) error { return r.broadcast(d) })
	}
	if err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}
