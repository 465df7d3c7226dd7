package training

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// ErrTeacherConflict is matched by the error of a student run given a
// teacher file when the model directory already holds another teacher.
var ErrTeacherConflict = errors.New("the model directory holds another teacher")

// installTeacher makes the teacher in file (any models.TeacherLayout) the
// model directory's teacher: it is written in the reference layout to
// layout.TeacherPath(), so that the trained model loads in the reference's
// code. A teacher already there must be the same one.
func installTeacher(file string, layout models.Layout, log io.Writer) error {
	t, found, err := models.LoadTeacher(file, layout.Size, tb.CPU)
	if err != nil {
		return err
	}
	defer models.Close(t)
	path := layout.TeacherPath()
	if exists(path) {
		same, err := sameTeacher(t, path)
		if err != nil {
			return err
		}
		if !same {
			return newRunError(ErrTeacherConflict, "%v: %s differs from the teacher %s; use another model directory", ErrTeacherConflict, path, file)
		}
		fmt.Fprintf(log, "teacher %s (%s layout) is already %s\n", file, found, path)
		return nil
	}
	if err := os.MkdirAll(layout.TeacherDir(), 0o755); err != nil {
		return err
	}
	if err := models.SaveTeacher(path, t); err != nil {
		return err
	}
	fmt.Fprintf(log, "teacher %s (%s layout) copied to %s\n", file, found, path)
	return nil
}

// sameTeacher reports whether the teacher state dict at path holds exactly
// t's tensors.
func sameTeacher(t *models.PDN, path string) (bool, error) {
	other, _, err := models.LoadTeacher(path, t.Size, tb.CPU)
	if err != nil {
		return false, err
	}
	defer models.Close(other)
	a, b := t.NamedParams(), other.NamedParams()
	for i := range a {
		x, err := (*a[i].Tensor).Float32s()
		if err != nil {
			return false, err
		}
		y, err := (*b[i].Tensor).Float32s()
		if err != nil {
			return false, err
		}
		if !slices.Equal(x, y) {
			return false, nil
		}
	}
	return true, nil
}
