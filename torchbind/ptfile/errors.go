package ptfile

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
)

// ErrNotPTFile is the error (tested with errors.Is) for content that is not
// a PyTorch file at all: an empty file, a file that is neither a zip archive
// nor a pickle, or a zip archive without a data.pkl record.
var ErrNotPTFile = errors.New("not a PyTorch file")

// ErrTooLarge is the error (tested with errors.Is) for a file that is
// well-formed as far as it was read but exceeds a limit of the loader, such
// as the bytes its tensors take once made contiguous; see LimitError.
var ErrTooLarge = errors.New("too large")

// FormatError reports a file that cannot be loaded because of what it holds:
// a corrupt or truncated file, a pickle the loader does not accept, or a
// value it does not support (another Python class, an invalid tensor view). errors.Is(err, ErrNotPTFile) tells whether it is
// not a PyTorch file at all.
type FormatError struct {
	Err error // what is wrong; its message is the error's message
}

func (e *FormatError) Error() string { return e.Err.Error() }

// Unwrap returns e.Err.
func (e *FormatError) Unwrap() error { return e.Err }

// LimitError reports a file that exceeds a limit of the loader. It matches
// ErrTooLarge with errors.Is.
type LimitError struct {
	What  string // what was measured, for example "the tensors made contiguous"
	Size  int64  // its size in bytes
	Limit int64  // the limit in bytes
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s would take %s, more than the limit of %s", e.What, byteSize(e.Size), byteSize(e.Limit))
}

// Is reports whether target is ErrTooLarge.
func (e *LimitError) Is(target error) bool { return target == ErrTooLarge }

// byteSize writes n in bytes with a binary-prefixed approximation.
func byteSize(n int64) string {
	const unit = 1 << 10
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	f, prefix := float64(n), ""
	for _, p := range []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"} {
		f /= unit
		prefix = p
		if f < unit {
			break
		}
	}
	return fmt.Sprintf("%d bytes (%.1f %s)", n, f, prefix)
}

// Describe names the kind of a value that Load returns, as an error message
// about a file's content would name it: "a tensor", "a dict", "a list",
// "an int", "a str", "None", and so on.
func Describe(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case *Tensor:
		return "a tensor"
	case *OrderedDict:
		return "a dict"
	case []any:
		return "a list"
	case int64, *big.Int:
		return "an int"
	case float64:
		return "a float"
	case string:
		return "a str"
	case bool:
		return "a bool"
	case []byte:
		return "a bytes object"
	case DType:
		return "a torch.dtype"
	}
	return "an unsupported value"
}

// show writes an unpickled value for an error message: scalars with their
// value (long strings shortened), anything else by its Python type only, so
// that messages never print Go internals.
func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		if len(x) > 60 {
			return strconv.Quote(x[:60]) + "..."
		}
		return strconv.Quote(x)
	case *big.Int:
		return "an int of " + strconv.Itoa(x.BitLen()) + " bits"
	case []byte:
		return "a bytes object"
	}
	return "a " + pythonType(v)
}

// errIntRange is the fault of an int argument (a size, a stride, an offset)
// that does not fit in 64 bits.
var errIntRange = errors.New("integer out of range in pickle")

// checkedInt converts an unpickled int argument to int64.
func checkedInt(x *big.Int) (int64, error) {
	if !x.IsInt64() {
		return 0, errIntRange
	}
	return x.Int64(), nil
}
