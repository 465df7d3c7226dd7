package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/puad-go/puad/detector"
	"github.com/puad-go/puad/internal/reproduce"
	"github.com/puad-go/puad/models"
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
	if errors.Is(err, detector.ErrNoPixelThreshold) {
		return err.Error() + " (run `puad fit` again to store one)"
	}
	if hint := shapeHint(err); hint != "" {
		return err.Error() + " (" + hint + ")"
	}
	return err.Error()
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
