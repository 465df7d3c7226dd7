package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/detector"
	"github.com/puad-go/puad/internal/reproduce"
	"github.com/puad-go/puad/internal/shard"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// explain is the message of err for the command line: the libraries'
// errors say what went wrong; for those a flag can cause, explain adds
// which flag to look at.
func explain(err error) string {
	var ie *reproduce.InterruptedError
	if errors.As(err, &ie) {
		return fmt.Sprintf("%s: rerun the same command to continue (finished categories are kept in %s; training resumes from its checkpoint)",
			plainMessage(ie.Err), ie.RunsDir)
	}
	msg := plainMessage(err)
	if errors.Is(err, detector.ErrNoPixelThreshold) {
		return msg + " (run `puad fit` again to store one)"
	}
	if hint := shapeHint(err); hint != "" {
		return msg + " (" + hint + ")"
	}
	if errors.Is(err, tb.ErrNoCUDA) {
		return msg + ", or use --device cpu"
	}
	if hint := datasetHint(err); hint != "" {
		return msg + " (" + hint + ")"
	}
	if errors.Is(err, models.ErrMixedModel) {
		return msg + " (retrain the category, or restore its folder from a copy)"
	}
	if hint := shardHint(err); hint != "" {
		return msg + " (" + hint + ")"
	}
	return msg
}

// shardHint is the advice for the errors of sharded runs and their merge.
func shardHint(err error) string {
	switch {
	case errors.Is(err, shard.ErrNoCount):
		return "give --shard-count N, the Job's completions, or set " + shard.CountVar
	case errors.Is(err, reproduce.ErrFolderInUse):
		return "give each shard, and the merge, an --out of its own"
	case errors.Is(err, reproduce.ErrNotShard):
		return "--merge takes the --out folders of puad reproduce --shard runs"
	case errors.Is(err, reproduce.ErrShardMissing):
		return "run the missing shards with --shard K/N, each into an --out of its own, then merge again"
	case errors.Is(err, reproduce.ErrShardTwice):
		return "give each shard's folder once"
	case errors.Is(err, reproduce.ErrDifferentRuns):
		return "every shard runs with the same --data, --models, --size, --feature-extractor, --categories, --seeds, --precision and training flags"
	case errors.Is(err, reproduce.ErrUnitMissing), errors.Is(err, reproduce.ErrUnitTwice):
		return "a shard's folder changed after it ran: rerun that shard"
	}
	return ""
}

// plainMessage is err's message with the runtime's word for a cancelled
// context replaced by what happened: the user interrupted the command.
func plainMessage(err error) string {
	msg := err.Error()
	if errors.Is(err, context.Canceled) {
		msg = strings.ReplaceAll(msg, context.Canceled.Error(), "interrupted")
	}
	return msg
}

// datasetHint is the advice for plain folders and published teachers.
func datasetHint(err error) string {
	var te *models.TeacherKeyError
	var me *datasets.MissingError
	switch {
	case errors.As(err, &te):
		return "a teacher of the other --size?"
	case errors.As(err, &me) && me.For == "evaluation":
		return "puad fit and puad train student need no test images"
	case errors.Is(err, datasets.ErrBadName):
		return "--name names the model of a plain folder"
	}
	return ""
}

// shapeHint is the advice for weights of another shape: a kernel that
// differs (the autoencoder's last encoder layer follows the image size)
// points at --img-size, channels that differ at --size.
func shapeHint(err error) string {
	var se *models.ShapeError
	if !errors.As(err, &se) || se.Key == "" {
		return ""
	}
	if filepath.Base(se.File) == models.AutoEncoderFile || se.Spatial() {
		return "a model trained at another --img-size?"
	}
	return "weights of another --size?"
}
