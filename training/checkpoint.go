package training

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// CheckpointFile is the name of a run's checkpoint in its output folder.
const CheckpointFile = "checkpoint.pt"

// A checkpoint is one .pt file (a state dict that torch.load reads) written
// atomically, holding everything a run needs to continue exactly where it
// stopped:
//
//	<module>.<key>               the networks being trained (e.g. student.conv1.weight)
//	adam.<i>.step / .exp_avg / .exp_avg_sq   the optimiser state per parameter
//	rng.<stream>                 generator states (uint8)
//	meta.iteration               completed iterations (int64)
//	meta.log_offset              length of the loss log at that point (int64)
//	meta.last_loss               loss of the last iteration done (float64)
//	meta.config                  the run's settings as JSON (uint8), checked on resume
//	extra.<name>                 other tensors (e.g. the category's mu and sigma)

// namedModule is a network stored under a prefix.
type namedModule struct {
	prefix string
	m      models.Module
}

// checkpointState is what a checkpoint holds besides tensors of modules and
// the optimiser.
type checkpointState struct {
	Iteration int
	LogOffset int64
	LastLoss  float64 // the loss of the last iteration done (NaN: none)
	Config    string
	RNG       map[string][]byte
	Extra     map[string]*tb.Tensor // borrowed when saving, owned by the caller after loading
}

func scalarInt64(v int64) (*tb.Tensor, error) { return tb.FromSlice([]int64{v}, []int64{}...) }

// saveCheckpoint writes the checkpoint atomically to path.
func saveCheckpoint(path string, st checkpointState, mods []namedModule, opt *tb.Adam) error {
	sd := tb.NewStateDict()
	defer sd.Close()
	fail := func(err error) error { return fmt.Errorf("checkpoint %s: %w", path, err) }
	for _, nm := range mods {
		msd, err := models.StateDict(nm.m)
		if err != nil {
			return fail(err)
		}
		for _, k := range append([]string(nil), msd.Keys...) {
			t, _ := msd.Take(k)
			sd.Set(nm.prefix+"."+k, t)
		}
	}
	for i, s := range opt.State() {
		if s.ExpAvg == nil {
			continue
		}
		step, err := scalarInt64(s.Step)
		if err != nil {
			return fail(err)
		}
		sd.Set(fmt.Sprintf("adam.%d.step", i), step)
		for _, e := range []struct {
			name string
			t    *tb.Tensor
		}{{"exp_avg", s.ExpAvg}, {"exp_avg_sq", s.ExpAvgSq}} {
			r, err := e.t.Ref() // the optimiser keeps its own handle
			if err != nil {
				return fail(err)
			}
			sd.Set(fmt.Sprintf("adam.%d.%s", i, e.name), r)
		}
	}
	// Keys in a fixed order, so that equal states give equal files.
	for _, name := range slices.Sorted(maps.Keys(st.RNG)) {
		t, err := tb.FromSlice(st.RNG[name])
		if err != nil {
			return fail(err)
		}
		sd.Set("rng."+name, t)
	}
	for _, name := range slices.Sorted(maps.Keys(st.Extra)) {
		r, err := st.Extra[name].Ref()
		if err != nil {
			return fail(err)
		}
		sd.Set("extra."+name, r)
	}
	it, err := scalarInt64(int64(st.Iteration))
	if err != nil {
		return fail(err)
	}
	sd.Set("meta.iteration", it)
	off, err := scalarInt64(st.LogOffset)
	if err != nil {
		return fail(err)
	}
	sd.Set("meta.log_offset", off)
	last, err := tb.FromSlice([]float64{st.LastLoss}, []int64{}...)
	if err != nil {
		return fail(err)
	}
	sd.Set("meta.last_loss", last)
	cfg, err := tb.FromSlice([]uint8(st.Config))
	if err != nil {
		return fail(err)
	}
	sd.Set("meta.config", cfg)
	return tb.SaveStateDict(path, sd)
}

// checkpointFile is a checkpoint read back; its parts are loaded one by
// one, since the optimiser can only take its state once the networks,
// whose parameters it updates, are loaded.
type checkpointFile struct {
	path string
	sd   *tb.StateDict
}

func openCheckpoint(path string) (*checkpointFile, error) {
	sd, err := tb.LoadStateDict(path)
	if err != nil {
		return nil, err
	}
	return &checkpointFile{path: path, sd: sd}, nil
}

// Close frees the file's tensors.
func (c *checkpointFile) Close() {
	if c != nil {
		c.sd.Close()
	}
}

func (c *checkpointFile) fail(err error) error { return fmt.Errorf("checkpoint %s: %w", c.path, err) }

func (c *checkpointFile) int64Of(key string) (int64, error) {
	t, ok := c.sd.Tensors[key]
	if !ok {
		return 0, fmt.Errorf("missing %s", key)
	}
	v, err := t.Int64s()
	if err != nil || len(v) != 1 {
		return 0, fmt.Errorf("%s: not an integer", key)
	}
	return v[0], nil
}

// state returns what the checkpoint holds besides networks and optimiser;
// the Extra tensors are moved to dev and belong to the caller.
func (c *checkpointFile) state(dev tb.Device) (st checkpointState, err error) {
	st.Extra = map[string]*tb.Tensor{}
	defer func() {
		if err != nil {
			closeAll(st.Extra)
			st, err = checkpointState{}, c.fail(err)
		}
	}()
	it, err := c.int64Of("meta.iteration")
	if err != nil {
		return st, err
	}
	st.Iteration = int(it)
	if st.LogOffset, err = c.int64Of("meta.log_offset"); err != nil {
		return st, err
	}
	st.LastLoss = math.NaN()
	if t, ok := c.sd.Tensors["meta.last_loss"]; ok {
		if st.LastLoss, err = t.Item(); err != nil {
			return st, err
		}
	}
	if cfg, ok := c.sd.Tensors["meta.config"]; ok {
		b, err := tb.Values[uint8](cfg)
		if err != nil {
			return st, err
		}
		st.Config = string(b)
	}
	st.RNG = map[string][]byte{}
	for _, k := range c.sd.Keys {
		if name, ok := strings.CutPrefix(k, "rng."); ok {
			b, err := tb.Values[uint8](c.sd.Tensors[k])
			if err != nil {
				return st, fmt.Errorf("%s: %w", k, err)
			}
			st.RNG[name] = b
		} else if name, ok := strings.CutPrefix(k, "extra."); ok {
			t, err := c.sd.Tensors[k].ToDevice(dev)
			if err != nil {
				return st, err
			}
			st.Extra[name] = t
		}
	}
	return st, nil
}

// loadModules loads the networks' tensors, moved to dev.
func (c *checkpointFile) loadModules(mods []namedModule, dev tb.Device) error {
	for _, nm := range mods {
		sub := tb.NewStateDict()
		for _, k := range c.sd.Keys {
			if rest, ok := strings.CutPrefix(k, nm.prefix+"."); ok {
				sub.Keys = append(sub.Keys, rest)
				sub.Tensors[rest] = c.sd.Tensors[k]
			}
		}
		// sub borrows the file's tensors: it is not closed.
		if err := models.LoadStateDict(nm.m, sub, dev, c.path); err != nil {
			return c.fail(err)
		}
	}
	return nil
}

// loadOptimizer hands the optimiser its state (tensors on dev), parameter
// by parameter in the optimiser's order.
func (c *checkpointFile) loadOptimizer(opt *tb.Adam, dev tb.Device) (err error) {
	nParams := len(opt.Params)
	for k := range c.sd.Tensors {
		if rest, ok := strings.CutPrefix(k, "adam."); ok {
			n, err := strconv.Atoi(rest[:max(0, strings.IndexByte(rest, '.'))])
			if err != nil || n >= nParams {
				return c.fail(fmt.Errorf("optimiser entry %s does not fit %d parameters", k, nParams))
			}
		}
	}
	state := make([]tb.AdamState, nParams)
	defer func() {
		if err != nil {
			for _, s := range state {
				s.ExpAvg.Close()
				s.ExpAvgSq.Close()
			}
		}
	}()
	for i := range state {
		if state[i], err = c.adamState(i, dev); err != nil {
			return c.fail(err)
		}
	}
	return opt.SetState(state)
}

// adamState reads the optimiser state of parameter i (zero when it has none).
func (c *checkpointFile) adamState(i int, dev tb.Device) (tb.AdamState, error) {
	prefix := fmt.Sprintf("adam.%d.", i)
	if _, ok := c.sd.Tensors[prefix+"step"]; !ok {
		return tb.AdamState{}, nil
	}
	step, err := c.int64Of(prefix + "step")
	if err != nil {
		return tb.AdamState{}, err
	}
	s := tb.NewScope()
	defer s.Close()
	avg := s.T(c.float32On(prefix+"exp_avg", dev))
	sq := s.T(c.float32On(prefix+"exp_avg_sq", dev))
	if err := s.Err(); err != nil {
		return tb.AdamState{}, err
	}
	return tb.AdamState{Step: step, ExpAvg: s.Keep(avg), ExpAvgSq: s.Keep(sq)}, nil
}

// float32On returns a float32 copy of the tensor key on dev.
func (c *checkpointFile) float32On(key string, dev tb.Device) (*tb.Tensor, error) {
	src, ok := c.sd.Tensors[key]
	if !ok {
		return nil, fmt.Errorf("missing %s", key)
	}
	t, err := src.To(dev, tb.Float32)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return tb.Clone(t)
}

func closeAll(ts map[string]*tb.Tensor) {
	for _, t := range ts {
		t.Close()
	}
}

// lossLog is a CSV file with one row per iteration. Rows are buffered;
// Sync flushes them and gives the file's length, which a checkpoint records
// so that a resumed run cuts the rows written after it.
type lossLog struct {
	f *os.File
	w *bufio.Writer
	// size is the file's length once closed.
	size int64
}

// openLossLog creates path with header, or, when resumeAt >= 0, opens it
// and cuts it to resumeAt bytes.
func openLossLog(path, header string, resumeAt int64) (*lossLog, error) {
	if resumeAt < 0 {
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		l := &lossLog{f: f, w: bufio.NewWriter(f)}
		l.w.WriteString(header + "\n")
		return l, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("loss log %s is missing: cannot resume its rows", path)
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() < resumeAt {
		err = fmt.Errorf("loss log %s has %d bytes, the checkpoint expects at least %d", path, fi.Size(), resumeAt)
	}
	if err == nil {
		err = f.Truncate(resumeAt)
	}
	if err == nil {
		_, err = f.Seek(resumeAt, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &lossLog{f: f, w: bufio.NewWriter(f)}, nil
}

// Row appends one row. Values that are float32 numbers (losses) are
// written in float32's shortest form, others (the learning rate) in
// float64's.
func (l *lossLog) Row(iteration int, values ...float64) {
	l.w.WriteString(strconv.Itoa(iteration))
	for _, v := range values {
		l.w.WriteByte(',')
		bits := 64
		if float64(float32(v)) == v {
			bits = 32
		}
		l.w.WriteString(strconv.FormatFloat(v, 'g', -1, bits))
	}
	l.w.WriteByte('\n')
}

// Sync flushes the rows to the file and returns its length.
func (l *lossLog) Sync() (int64, error) {
	if l.f == nil {
		return l.size, nil
	}
	if err := l.w.Flush(); err != nil {
		return 0, err
	}
	return l.f.Seek(0, io.SeekCurrent)
}

// Close flushes and closes the file.
func (l *lossLog) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	size, err := l.Sync()
	l.size = size
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
