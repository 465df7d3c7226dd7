package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/internal/reproduce"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// explain is the message of err for the command line: the libraries'
// errors say what went wrong; for those a flag can cause, explain adds
// which flag to look at.
func explain(err error) string {
	var ie *reproduce.InterruptedError
	if errors.As(err, &ie) {
		return fmt.Sprintf("%v: rerun the same command to continue (finished categories are kept in %s; training resumes from its checkpoint)",
			ie.Err, ie.RunsDir)
	}
	if hint := shapeHint(err); hint != "" {
		return err.Error() + " (" + hint + ")"
	}
	if errors.Is(err, tb.ErrNoCUDA) {
		return err.Error() + ", or use --device cpu"
	}
	if hint := datasetHint(err); hint != "" {
		return err.Error() + " (" + hint + ")"
	}
	return err.Error()
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
