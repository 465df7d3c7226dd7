package ptfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/big"
	"os"
	"runtime/debug"
	"slices"
)

// Load reads the PyTorch file at path (written by torch.save, in the zip or
// the legacy format) and returns the saved object:
//
//   - a tensor or nn.Parameter as *Tensor,
//   - a dict or collections.OrderedDict (with string keys) as *OrderedDict,
//     in insertion order; the _metadata attribute of a state dict is ignored,
//   - a list or tuple as []any,
//   - an int as int64 (or *big.Int if it does not fit), a float as float64,
//     a str as string, bytes as []byte, a bool as bool, None as nil,
//   - a torch.dtype as DType, a torch.device as its string ("cpu"),
//     a torch.Size as []any of int64, a bare storage as a 1-d *Tensor.
//
// Anything else, in particular any other Python class, makes Load fail with
// a *FormatError that names it.
// Errors name the file and the fault; Load never panics on bad input. Load
// uses the default LoadOptions and cannot be interrupted; see LoadContext.
func Load(path string) (any, error) {
	return LoadOptions{}.Load(context.Background(), path)
}

// LoadContext is Load with a context: when ctx is cancelled, loading stops
// between two steps (a chunk of the file read, an opcode of the pickle, a
// storage) and returns an error that wraps ctx.Err().
func LoadContext(ctx context.Context, path string) (any, error) {
	return LoadOptions{}.Load(ctx, path)
}

// LoadReader is like Load but reads the file from r, which holds size bytes;
// name is used in error messages. Like Load, it reads the whole file into
// memory, and the storages of the returned tensors are slices of that copy.
func LoadReader(r io.ReaderAt, size int64, name string) (any, error) {
	return LoadOptions{}.LoadReader(context.Background(), r, size, name)
}

// LoadBytes is like Load but decodes the file content data; name is used in
// error messages. The storages of the returned tensors may share memory with
// data, so data must not be modified afterwards.
func LoadBytes(data []byte, name string) (any, error) {
	return LoadOptions{}.LoadBytes(context.Background(), data, name)
}

// DefaultMaxExpansion is the bound LoadOptions.MaxExpansion stands for when
// it is zero: 1 GiB.
const DefaultMaxExpansion int64 = 1 << 30

// LoadOptions bounds what loading a file may cost. The zero value gives the
// defaults.
type LoadOptions struct {
	// MaxExpansion bounds by how many bytes the tensors of a file, each made
	// contiguous (as a consumer that copies them into native tensors does),
	// may take more than the file itself. A file whose tensors are disjoint
	// parts of its storages never exceeds it, whatever its size; a tensor
	// with zero strides (torch.expand) or overlapping views can exceed it
	// from a few bytes of storage. Loading a file beyond the bound fails with
	// a *LimitError. Zero means DefaultMaxExpansion; a negative value means
	// no bound.
	MaxExpansion int64
}

// materializeLimit returns the bound on the contiguous bytes of all tensors
// of a file of fileSize bytes.
func (o LoadOptions) materializeLimit(fileSize int64) int64 {
	extra := o.MaxExpansion
	switch {
	case extra < 0:
		return math.MaxInt64
	case extra == 0:
		extra = DefaultMaxExpansion
	}
	if limit, ok := addCheck(fileSize, extra); ok {
		return limit
	}
	return math.MaxInt64
}

// Load is the function Load with these options and a context (see
// LoadContext).
func (o LoadOptions) Load(ctx context.Context, path string) (any, error) {
	fail := func(err error) (any, error) {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the message names the path already
		}
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	switch {
	case st.IsDir():
		return fail(errors.New("is a directory"))
	case !st.Mode().IsRegular():
		return fail(errors.New("not a regular file"))
	}
	data, err := readAll(ctx, f, st.Size())
	if err != nil {
		return fail(err)
	}
	return o.LoadBytes(ctx, data, path)
}

// LoadReader is the function LoadReader with these options and a context.
func (o LoadOptions) LoadReader(ctx context.Context, r io.ReaderAt, size int64, name string) (any, error) {
	if size < 0 {
		return nil, fmt.Errorf("load %s: negative size %d", name, size)
	}
	data, err := readAll(ctx, r, size)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	return o.LoadBytes(ctx, data, name)
}

// readChunk is how many bytes readAll reads between two looks at its
// context.
const readChunk = 8 << 20

// readAll reads the size bytes of r in chunks, stopping when ctx is done.
// It allocates at most 256 MiB ahead of the bytes really read, so that a
// wrong size does not allocate gigabytes.
func readAll(ctx context.Context, r io.ReaderAt, size int64) ([]byte, error) {
	data := make([]byte, min(size, 1<<28))
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(readChunk, size-off)
		if int64(len(data)) < off+n {
			data = slices.Grow(data, int(off+n)-len(data))[:off+n]
		}
		got, err := r.ReadAt(data[off:off+n], off)
		if int64(got) == n {
			err = nil
		} else if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		off += n
	}
	return data, nil
}

// LoadBytes is the function LoadBytes with these options and a context.
// Errors wrap ctx.Err() when loading was interrupted, a *LimitError when the
// file exceeds a bound, and a *FormatError for anything else.
func (o LoadOptions) LoadBytes(ctx context.Context, data []byte, name string) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			recovered(r)
			v, err = nil, fmt.Errorf("load %s: %w", name, &FormatError{errors.New("malformed file")})
		}
	}()
	v, err = o.decode(ctx, data)
	if err != nil {
		var le *LimitError
		if !errors.As(err, &le) && (ctx.Err() == nil || !errors.Is(err, ctx.Err())) {
			err = &FormatError{Err: err}
		}
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	return v, nil
}

// recoverHook, when set (by tests), sees every panic that loading turns
// into an error, with the stack of the panicking goroutine.
var recoverHook func(r any, stack []byte)

func recovered(r any) {
	if recoverHook != nil {
		recoverHook(r, debug.Stack())
	}
}

// LoadStateDict loads a file that holds a dict of tensors (a state dict
// saved with torch.save(module.state_dict(), path), or a plain dict of
// tensors) and returns it with every value a *Tensor.
func LoadStateDict(path string) (*OrderedDict, error) {
	v, err := Load(path)
	if err != nil {
		return nil, err
	}
	return asStateDict(v, path)
}

func asStateDict(v any, name string) (*OrderedDict, error) {
	d, ok := v.(*OrderedDict)
	if !ok {
		return nil, fmt.Errorf("load %s: %w", name, &FormatError{fmt.Errorf("not a state dict: the file holds %s, want a dict of tensors", Describe(v))})
	}
	for _, k := range d.Keys {
		if _, ok := d.Values[k].(*Tensor); !ok {
			return nil, fmt.Errorf("load %s: %w", name, &FormatError{fmt.Errorf("not a state dict: value of key %q is %s, want a tensor", k, Describe(d.Values[k]))})
		}
	}
	return d, nil
}

var (
	zipMagic    = []byte("PK\x03\x04")
	zipEmptyDir = []byte("PK\x05\x06")
	legacyMagic = new(big.Int).SetBytes([]byte{0x19, 0x50, 0xa8, 0x6a, 0x20, 0xf9, 0x46, 0x9c, 0xfc, 0x6c})
	legacyProto = int64(1001)
	maxNesting  = 1000
)

func (o LoadOptions) decode(ctx context.Context, data []byte) (any, error) {
	l := &loader{ctx: ctx, storages: map[string]*storageRec{}, maxBytes: o.materializeLimit(int64(len(data)))}
	switch {
	case len(data) == 0:
		return nil, fmt.Errorf("%w: the file is empty", ErrNotPTFile)
	case bytes.HasPrefix(data, zipMagic) || bytes.HasPrefix(data, zipEmptyDir):
		return l.loadZip(data)
	case len(data) >= 262 && string(data[257:262]) == "ustar":
		return nil, fmt.Errorf("the tar format of PyTorch before 0.4 is not supported; load and save the file again with a newer PyTorch")
	case data[0] == 0x80:
		return l.loadLegacy(data)
	}
	head := data
	if len(head) > 8 {
		head = head[:8]
	}
	return nil, fmt.Errorf("%w: neither a zip archive nor a pickle (it starts with %q)", ErrNotPTFile, head)
}

// loader holds the state of loading one file.
type loader struct {
	ctx       context.Context
	storages  map[string]*storageRec
	zip       *zipArchive // nil for the legacy format
	legacy    bool
	bigEndian bool
	maxBytes  int64 // bound on the contiguous bytes of all tensors
}
