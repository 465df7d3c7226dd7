package reproduce

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/puad-go/puad/evaluate/report"
	"github.com/puad-go/puad/internal/atomicfile"
	"github.com/puad-go/puad/internal/shard"
)

// The files a shard writes into its output folder beside RunsDir:
// ManifestFile says which shard of which run the folder holds, UnitsFile
// holds the shard's category runs (everything the report needs of them).
const (
	ManifestFile = "shard.json"
	UnitsFile    = "units.json"
)

// ShardFiles are the paths of the files a shard writes into dir, besides
// the results under RunsDir.
func ShardFiles(dir string) []string {
	return []string{filepath.Join(dir, ManifestFile), filepath.Join(dir, UnitsFile)}
}

// ErrFolderInUse is the error of a shard whose output folder holds another
// shard's output: each shard needs a folder of its own.
var ErrFolderInUse = errors.New("the folder holds another shard's output")

// shardFormat is the version of the format of ManifestFile and UnitsFile.
const shardFormat = 1

// manifest is the content of ManifestFile.
type manifest struct {
	Format int `json:"format"`
	// Shard of Shards: the shard's category runs are those whose index
	// (0-based, in the order of a run without shards) mod Shards is Shard.
	Shard  int `json:"shard"`
	Shards int `json:"shards"`
	// Fingerprint identifies the run: its configuration, its category runs
	// and its report's notes; every shard of a run has the same.
	Fingerprint string `json:"fingerprint"`
	// Units is the number of category runs of the whole run.
	Units int `json:"units"`
	// Complete is set once UnitsFile is written.
	Complete bool      `json:"complete"`
	Config   runConfig `json:"config"`
	Notes    []string  `json:"notes,omitempty"`
}

// runConfig is what a run's report depends on besides the data and models:
// the settings every shard of a run must share. The device, the batch size
// and Force may differ between shards.
type runConfig struct {
	DataRoot   string   `json:"data"`
	ModelRoot  string   `json:"models"`
	Sizes      []string `json:"sizes"`
	Extractor  string   `json:"feature_extractor"`
	Categories []string `json:"categories,omitempty"`
	Seeds      []int    `json:"seeds,omitempty"`
	Precision  string   `json:"precision,omitempty"`
	// Train holds the training lengths when the run trains.
	Train *[2]int `json:"train_iterations,omitempty"`
}

// shardUnit is one category run of a shard, as UnitsFile holds it.
type shardUnit struct {
	// Index is the run's place in the order of a run without shards.
	Index int `json:"index"`
	// Saved is set when the run's result file is under RunsDir.
	Saved bool               `json:"result_file"`
	Run   report.CategoryRun `json:"run"`
}

// newManifest describes the shard cfg.Shard of the run planned in p.
func newManifest(cfg Config, p plan) manifest {
	rc := runConfig{DataRoot: filepath.Clean(cfg.DataRoot), ModelRoot: filepath.Clean(cfg.ModelRoot),
		Extractor: string(cfg.Extractor), Categories: cfg.Categories, Seeds: cfg.Seeds, Precision: string(cfg.Precision)}
	for _, s := range cfg.Sizes {
		rc.Sizes = append(rc.Sizes, string(s))
	}
	if cfg.Train != nil {
		rc.Train = &[2]int{cfg.Train.TeacherIterations, cfg.Train.StudentIterations}
	}
	// The category runs in order: what each is and whether its folder exists.
	var units []string
	for _, u := range p.units(cfg) {
		units = append(units, fmt.Sprintf("%s/%s %s%s found=%t", u.ref.Dataset, u.ref.Category, u.size, seedLabel(u.seed), u.ref.Dir != ""))
	}
	id, err := json.Marshal(struct {
		Config runConfig
		Notes  []string
		Units  []string
	}{rc, p.notes, units})
	if err != nil {
		panic("reproduce: run fingerprint: " + err.Error()) // plain strings and numbers always encode
	}
	sum := sha256.Sum256(id)
	return manifest{Format: shardFormat, Shard: cfg.Shard.Index, Shards: cfg.Shard.Count,
		Fingerprint: hex.EncodeToString(sum[:]), Units: len(units), Config: rc, Notes: p.notes}
}

// shardOutput is the output folder of a running shard.
type shardOutput struct {
	dir string
	m   manifest
}

// startShard claims cfg.OutDir for the shard: it refuses a folder holding
// another shard's output, and marks the folder's shard files as
// unfinished until finish.
func startShard(cfg Config, p plan) (*shardOutput, error) {
	o := &shardOutput{dir: cfg.OutDir, m: newManifest(cfg, p)}
	if err := o.checkOwner(); err != nil {
		return nil, err
	}
	if err := os.Remove(filepath.Join(o.dir, UnitsFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return o, o.writeManifest()
}

// checkOwner refuses a folder whose manifest is another shard's (an
// earlier run of the same shard, of any configuration, is replaced).
func (o *shardOutput) checkOwner() error {
	old, err := readManifest(o.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if old.Shard != o.m.Shard || old.Shards != o.m.Shards {
		return fmt.Errorf("%s: shard %d/%d: %w (shard %d/%d)", o.dir, o.m.Shard, o.m.Shards, ErrFolderInUse, old.Shard, old.Shards)
	}
	return nil
}

func (o *shardOutput) writeManifest() error {
	data, err := json.MarshalIndent(o.m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(o.dir, ManifestFile), append(data, '\n'), atomicfile.DefaultPerm)
}

// finish writes the shard's category runs and marks its output complete.
func (o *shardOutput) finish(units []shardUnit) error {
	if err := o.checkOwner(); err != nil {
		return err
	}
	if units == nil {
		units = []shardUnit{}
	}
	data, err := json.MarshalIndent(units, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(o.dir, UnitsFile), append(data, '\n'), atomicfile.DefaultPerm); err != nil {
		return err
	}
	o.m.Complete = true
	return o.writeManifest()
}

// readManifest reads dir's ManifestFile; the error wraps fs.ErrNotExist
// when there is none.
func readManifest(dir string) (manifest, error) {
	var m manifest
	path := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	if m.Format != shardFormat {
		return m, fmt.Errorf("%s: format %d, want %d", path, m.Format, shardFormat)
	}
	return m, nil
}

// check reports whether the manifest's shard and unit count are sound.
func (m manifest) check() error {
	if err := (shard.Spec{Index: m.Shard, Count: m.Shards}).Check(); err != nil {
		return err
	}
	if m.Units < 0 {
		return fmt.Errorf("%d category runs", m.Units)
	}
	return nil
}
