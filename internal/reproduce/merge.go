package reproduce

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/puad-go/puad/evaluate/report"
	"github.com/puad-go/puad/internal/atomicfile"
	"github.com/puad-go/puad/models"
)

// Merge's errors, each wrapped with the folders and shards concerned.
var (
	// ErrNotShard: a folder holds no shard's output.
	ErrNotShard = errors.New("not the output folder of a shard")
	// ErrShardUnfinished: a shard started but did not finish.
	ErrShardUnfinished = errors.New("the shard did not finish")
	// ErrDifferentRuns: the shards belong to runs of different configurations.
	ErrDifferentRuns = errors.New("the shards are of different runs")
	// ErrShardMissing: a shard of the run is not among the folders.
	ErrShardMissing = errors.New("shards are missing")
	// ErrShardTwice: a shard is given twice.
	ErrShardTwice = errors.New("a shard is given twice")
	// ErrUnitMissing: a category run is in no shard, or its result file is absent.
	ErrUnitMissing = errors.New("a category run is missing")
	// ErrUnitTwice: a category run is in two shards, or twice in one.
	ErrUnitTwice = errors.New("a category run is present twice")
)

// shardDir is a finished shard's output folder, read.
type shardDir struct {
	dir   string
	m     manifest
	units []shardUnit
}

// Merge combines the output folders of the shards of one run into out: it
// writes the report files (ReportFiles) and copies the shards' results
// under RunsDir, exactly as the run without shards would have written
// them, and returns the report. It refuses (the errors above) shards of
// different runs, a missing or repeated shard, and a category run missing
// or present twice; it writes nothing then.
func Merge(dirs []string, out string) (*report.Report, error) {
	if len(dirs) == 0 {
		return nil, fmt.Errorf("%w: no folder given", ErrShardMissing)
	}
	if _, err := os.Stat(filepath.Join(out, ManifestFile)); err == nil {
		return nil, fmt.Errorf("%s: %w (the merged report needs a folder of its own)", out, ErrFolderInUse)
	}
	shards := make([]shardDir, len(dirs))
	for i, dir := range dirs {
		s, err := readShard(dir)
		if err != nil {
			return nil, err
		}
		shards[i] = s
	}
	if err := checkShards(shards); err != nil {
		return nil, err
	}
	units, err := collectUnits(shards)
	if err != nil {
		return nil, err
	}
	runs := make([]report.CategoryRun, len(units))
	results := make([][]byte, len(units))
	for i, u := range units {
		runs[i] = u.Run
		if results[i], err = u.result(); err != nil {
			return nil, err
		}
	}
	for i, u := range units {
		if results[i] == nil {
			continue
		}
		r := u.Run
		if err := atomicfile.WriteFile(runPath(out, r.Seed, models.Size(r.Size), r.DatasetName, r.Category, r.Extractor), results[i], atomicfile.DefaultPerm); err != nil {
			return nil, err
		}
	}
	rep := report.BuildReport(runs, report.Paper(), shards[0].m.Notes...)
	return rep, writeReport(out, rep)
}

// readShard reads a finished shard's manifest and category runs.
func readShard(dir string) (shardDir, error) {
	s := shardDir{dir: dir}
	var err error
	if s.m, err = readManifest(dir); errors.Is(err, fs.ErrNotExist) {
		return s, fmt.Errorf("%s: %w (no %s)", dir, ErrNotShard, ManifestFile)
	} else if err != nil {
		return s, fmt.Errorf("%w: %v", ErrNotShard, err)
	}
	if err := s.m.check(); err != nil {
		return s, fmt.Errorf("%w: %s/%s: %v", ErrNotShard, dir, ManifestFile, err)
	}
	if !s.m.Complete {
		return s, fmt.Errorf("%s: shard %d/%d: %w (rerun it to finish)", dir, s.m.Shard, s.m.Shards, ErrShardUnfinished)
	}
	path := filepath.Join(dir, UnitsFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("shard %d/%d: %w", s.m.Shard, s.m.Shards, err)
	}
	if err := json.Unmarshal(data, &s.units); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// checkShards checks that the shards are of one run, each once, and all there.
func checkShards(shards []shardDir) error {
	first := shards[0]
	where := map[int]string{}
	for _, s := range shards {
		if s.m.Shards != first.m.Shards {
			return fmt.Errorf("%w: %s is shard %d/%d, %s shard %d/%d (the runs were divided differently)",
				ErrDifferentRuns, first.dir, first.m.Shard, first.m.Shards, s.dir, s.m.Shard, s.m.Shards)
		}
		if s.m.Fingerprint != first.m.Fingerprint {
			return fmt.Errorf("%w: %s and %s differ in %s", ErrDifferentRuns, first.dir, s.dir, configDiff(first.m, s.m))
		}
		if prev, ok := where[s.m.Shard]; ok {
			return fmt.Errorf("%w: shard %d/%d is in %s and in %s", ErrShardTwice, s.m.Shard, s.m.Shards, prev, s.dir)
		}
		where[s.m.Shard] = s.dir
	}
	var missing []string
	for k := 0; k < first.m.Shards; k++ {
		if _, ok := where[k]; !ok {
			missing = append(missing, strconv.Itoa(k))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: shard %s of %d (%d of %d given)", ErrShardMissing, strings.Join(missing, ", "), first.m.Shards, len(where), first.m.Shards)
	}
	return nil
}

// configDiff names what differs between the runs of two manifests.
func configDiff(a, b manifest) string {
	ca, cb := a.Config, b.Config
	var d []string
	add := func(name string, same bool) {
		if !same {
			d = append(d, name)
		}
	}
	add("the data folder", ca.DataRoot == cb.DataRoot)
	add("the model folder", ca.ModelRoot == cb.ModelRoot)
	add("the sizes", slices.Equal(ca.Sizes, cb.Sizes))
	add("the feature extractor", ca.Extractor == cb.Extractor)
	add("the categories asked for", slices.Equal(ca.Categories, cb.Categories))
	add("the seeds", slices.Equal(ca.Seeds, cb.Seeds))
	add("the precision", ca.Precision == cb.Precision)
	add("training", (ca.Train == nil) == (cb.Train == nil) && (ca.Train == nil || *ca.Train == *cb.Train))
	if len(d) == 0 {
		return "the categories found in the data folder"
	}
	return strings.Join(d, ", ")
}

// placedUnit is a shard's category run and the shard's folder.
type placedUnit struct {
	shardUnit
	dir string
}

// collectUnits orders the shards' category runs as the run without shards
// ran them, checking that each is there once and in its shard.
func collectUnits(shards []shardDir) ([]placedUnit, error) {
	total, n := shards[0].m.Units, shards[0].m.Shards
	units := make([]placedUnit, total)
	for _, s := range shards {
		for _, u := range s.units {
			if u.Index < 0 || u.Index >= total || u.Index%n != s.m.Shard {
				return nil, fmt.Errorf("%w: %s: category run %d is not one of shard %d/%d's (%d in all)",
					ErrUnitTwice, s.dir, u.Index+1, s.m.Shard, n, total)
			}
			if units[u.Index].dir != "" {
				return nil, fmt.Errorf("%w: category run %d (%s) is twice in %s", ErrUnitTwice, u.Index+1, unitName(u.Run), s.dir)
			}
			units[u.Index] = placedUnit{u, s.dir}
		}
	}
	for i, u := range units {
		if u.dir == "" {
			return nil, fmt.Errorf("%w: category run %d of %d is in no shard's %s (shard %d/%d)", ErrUnitMissing, i+1, total, UnitsFile, i%n, n)
		}
	}
	return units, nil
}

// result is the content of the unit's result file in its shard's folder,
// nil when the shard kept none.
func (u placedUnit) result() ([]byte, error) {
	if !u.Saved {
		return nil, nil
	}
	r := u.Run
	if err := checkNames([]string{r.DatasetName, r.Category, r.Size, r.Extractor}); err != nil {
		return nil, fmt.Errorf("%s: %w", u.dir, err)
	}
	path := runPath(u.dir, r.Seed, models.Size(r.Size), r.DatasetName, r.Category, r.Extractor)
	data, err := os.ReadFile(path)
	if err == nil && parseRun(data, r.DatasetName, r.Category, models.Size(r.Size), r.Extractor) == nil {
		err = errors.New("not the result of this category run")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: the result of %s: %v", ErrUnitMissing, unitName(r), err)
	}
	return data, nil
}

// unitName names a category run: "<dataset>/<category> (<size>[, seed k])".
func unitName(r report.CategoryRun) string {
	return fmt.Sprintf("%s/%s (%s%s)", r.DatasetName, r.Category, r.Size, seedLabel(r.Seed))
}
