package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/internal/reproduce"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// TestExplain checks the advice added to the libraries' typed errors.
func TestExplain(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"autoencoder of another image size",
			fmt.Errorf("load: %w", &models.ShapeError{File: "m/s_size/d/c/autoencoder.pt", Key: "encoder.enconv6.weight", Want: []int64{64, 64, 8, 8}, Got: []int64{64, 64, 4, 4}}),
			`load: m/s_size/d/c/autoencoder.pt: key "encoder.enconv6.weight": expected shape [64 64 8 8], found [64 64 4 4] (a model trained at another --img-size?)`},
		{"autoencoder, channels",
			&models.ShapeError{File: "autoencoder.pt", Key: "decoder.deconv8.weight", Want: []int64{384, 64, 3, 3}, Got: []int64{512, 64, 3, 3}},
			`autoencoder.pt: key "decoder.deconv8.weight": expected shape [384 64 3 3], found [512 64 3 3] (a model trained at another --img-size?)`},
		{"kernel of another network",
			&models.ShapeError{File: "student.pt", Key: "conv1.weight", Want: []int64{128, 3, 4, 4}, Got: []int64{128, 3, 2, 2}},
			`student.pt: key "conv1.weight": expected shape [128 3 4 4], found [128 3 2 2] (a model trained at another --img-size?)`},
		{"teacher of another size",
			fmt.Errorf("teacher: %w", &models.ShapeError{File: "teacher.pt", Key: "conv1.weight", Want: []int64{256, 3, 4, 4}, Got: []int64{128, 3, 4, 4}}),
			`teacher: teacher.pt: key "conv1.weight": expected shape [256 3 4 4], found [128 3 4 4] (weights of another --size?)`},
		{"statistics file", &models.ShapeError{File: "mu.pt", Want: []int64{384}, Got: []int64{3}},
			"mu.pt: expected shape [384], found [3]"},
		{"interrupted reproduce", fmt.Errorf("%w", &reproduce.InterruptedError{Err: context.Canceled, RunsDir: "out/runs"}),
			"interrupted: rerun the same command to continue (finished categories are kept in out/runs; training resumes from its checkpoint)"},
		{"no CUDA", fmt.Errorf("device %q: %w", "cuda", tb.ErrNoCUDA),
			`device "cuda": CUDA is not available, or use --device cpu`},
		{"published teacher of another size",
			&models.TeacherKeyError{File: "t.pth", Size: models.Small, Reason: "unknown key names",
				Expected: []models.KeyShape{{Key: "conv1.weight", Shape: []int64{128, 3, 4, 4}}}, Found: []models.KeyShape{{Key: "0.weight", Shape: []int64{256, 3, 4, 4}}}},
			"teacher t.pth is not a PDN_S teacher state dict (unknown key names); expected the keys conv1.weight[128 3 4 4] " +
				"(or, in an nn.Sequential layout, the same tensors under the indices [0 3 6 8]); found 0.weight[256 3 4 4] (a teacher of the other --size?)"},
		{"plain folder without a test set", &datasets.MissingError{Dir: "d", What: "a test folder test/", For: "evaluation"},
			"dataset d: a test folder test/ is needed for evaluation (puad fit and puad train student need no test images)"},
		{"shards missing", fmt.Errorf("%w: shard 1 of 2 (1 of 2 given)", reproduce.ErrShardMissing),
			"shards are missing: shard 1 of 2 (1 of 2 given) (run the missing shards with --shard K/N, each into an --out of its own, then merge again)"},
		{"shard folder taken", fmt.Errorf("out: shard 0/2: %w (shard 1/2)", reproduce.ErrFolderInUse),
			"out: shard 0/2: the folder holds another shard's output (shard 1/2) (give each shard, and the merge, an --out of its own)"},
		{"shards of other runs", fmt.Errorf("%w: a and b differ in the sizes", reproduce.ErrDifferentRuns),
			"the shards are of different runs: a and b differ in the sizes (every shard runs with the same --data, --models, --size, --feature-extractor, --categories, --seeds, --precision and training flags)"},
		{"shard twice", reproduce.ErrShardTwice, "a shard is given twice (give each shard's folder once)"},
		{"unit twice", reproduce.ErrUnitTwice, "a category run is present twice (a shard's folder changed after it ran: rerun that shard)"},
		{"other", fmt.Errorf("plain"), "plain"},
	} {
		if got := explain(c.err); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}
