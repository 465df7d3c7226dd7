package training

import (
	"errors"
	"fmt"
)

// MaxBatchSize is the largest batch a training run accepts: each image of
// a batch is held decoded, with its activations and gradients, at once.
const MaxBatchSize = 1024

// Errors a caller tells apart with errors.Is, e.g. to say how to go on.
var (
	// ErrOutputExists: the trained model a run would write exists and
	// overwriting was not asked for.
	ErrOutputExists = errors.New("trained model exists")
	// ErrCheckpointExists: an interrupted run left a checkpoint and
	// resuming was not asked for.
	ErrCheckpointExists = errors.New("checkpoint of an interrupted run exists")
	// ErrCheckpointMismatch: the checkpoint was written by a run with
	// other settings, or lacks what the run needs.
	ErrCheckpointMismatch = errors.New("checkpoint does not fit the run")
	// ErrNoTeacher: a student is trained before its teacher.
	ErrNoTeacher = errors.New("no trained teacher")
	// ErrNoWRNWeights: the WideResNet101-2 weights are not given or not found.
	ErrNoWRNWeights = errors.New("no WideResNet101-2 weights")
	// ErrNonFiniteLoss: the loss became NaN or infinite; the run stopped
	// without writing a checkpoint of the diverged state.
	ErrNonFiniteLoss = errors.New("non-finite training loss")
	// ErrLocked: another run is training in the same folder.
	ErrLocked = errors.New("folder in use by another training run")
	// ErrReferenceRNGDevice: the reference random stream was asked for on
	// a device other than the CPU.
	ErrReferenceRNGDevice = errors.New("reference random stream needs the CPU")
	// ErrGroupSettings: the ranks of a data-parallel run disagree on its
	// settings, or the batch does not split evenly over them.
	ErrGroupSettings = errors.New("settings unfit for the process group")
	// ErrInterrupted is matched by the error a training run returns when
	// its context is cancelled: the run saved a checkpoint and can be resumed.
	ErrInterrupted = errors.New("training interrupted")
)

// runError is an error with its own message that matches one of the
// sentinel errors above.
type runError struct {
	kind error
	msg  string
}

func newRunError(kind error, format string, a ...any) error {
	return &runError{kind: kind, msg: fmt.Sprintf(format, a...)}
}

func (e *runError) Error() string        { return e.msg }
func (e *runError) Is(target error) bool { return target == e.kind }

// InterruptedError says where an interrupted run stopped.
type InterruptedError struct {
	Iteration  int    // completed iterations
	Checkpoint string // the checkpoint written
	Cause      error  // the context's error
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("training interrupted after %d iterations; checkpoint saved to %s", e.Iteration, e.Checkpoint)
}

// Is makes errors.Is(err, ErrInterrupted) true.
func (e *InterruptedError) Is(target error) bool { return target == ErrInterrupted }

// Unwrap returns the context's error.
func (e *InterruptedError) Unwrap() error { return e.Cause }
