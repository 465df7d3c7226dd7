package ptfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"runtime/debug"

	"github.com/nlpodyssey/gopickle/pickle"
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
// an error that names it. Errors name the file and the fault; Load never
// panics on bad input.
func Load(path string) (any, error) {
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
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return fail(fmt.Errorf("read: %w", err))
	}
	return LoadBytes(data, path)
}

// LoadReader is like Load but reads the file from r, which holds size bytes;
// name is used in error messages. Like Load, it reads the whole file into
// memory, and the storages of the returned tensors are slices of that copy.
func LoadReader(r io.ReaderAt, size int64, name string) (any, error) {
	if size < 0 {
		return nil, fmt.Errorf("load %s: negative size %d", name, size)
	}
	var data []byte
	var err error
	if size <= 1<<28 {
		data = make([]byte, size)
		var n int
		n, err = r.ReadAt(data, 0)
		if n == len(data) {
			err = nil
		}
	} else {
		// Do not trust a large size before the bytes are really there.
		data, err = io.ReadAll(io.NewSectionReader(r, 0, size))
		if err == nil && int64(len(data)) != size {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: read: %w", name, err)
	}
	return LoadBytes(data, name)
}

// LoadBytes is like Load but decodes the file content data; name is used in
// error messages. The storages of the returned tensors may share memory with
// data, so data must not be modified afterwards.
func LoadBytes(data []byte, name string) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			recovered(r)
			v = nil
			err = fmt.Errorf("load %s: malformed file: %s", name, clip(fmt.Sprint(r)))
		}
	}()
	v, err = decode(data)
	if err != nil {
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
		return nil, fmt.Errorf("load %s: not a state dict: the file holds %s, want a dict of tensors", name, describe(v))
	}
	for _, k := range d.Keys {
		if _, ok := d.Values[k].(*Tensor); !ok {
			return nil, fmt.Errorf("load %s: not a state dict: value of key %q is %s, want a tensor", name, k, describe(d.Values[k]))
		}
	}
	return d, nil
}

// describe names the Python-side kind of a loaded value for error messages.
func describe(v any) string {
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
	}
	return fmt.Sprintf("a %T", v)
}

// clip shortens long messages (the unpickler may print whole values).
func clip(s string) string {
	const max = 300
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

var (
	zipMagic     = []byte("PK\x03\x04")
	zipEmptyDir  = []byte("PK\x05\x06")
	legacyMagic  = new(big.Int).SetBytes([]byte{0x19, 0x50, 0xa8, 0x6a, 0x20, 0xf9, 0x46, 0x9c, 0xfc, 0x6c})
	legacyProto  = int64(1001)
	maxNesting   = 1000
	errNotPTFile = errors.New("not a PyTorch file")
)

func decode(data []byte) (any, error) {
	switch {
	case len(data) == 0:
		return nil, fmt.Errorf("%w: the file is empty", errNotPTFile)
	case bytes.HasPrefix(data, zipMagic) || bytes.HasPrefix(data, zipEmptyDir):
		return loadZip(data)
	case len(data) >= 262 && string(data[257:262]) == "ustar":
		return nil, fmt.Errorf("the tar format of PyTorch before 0.4 is not supported; load and save the file again with a newer PyTorch")
	case data[0] == 0x80:
		return loadLegacy(data)
	}
	head := data
	if len(head) > 8 {
		head = head[:8]
	}
	return nil, fmt.Errorf("%w: neither a zip archive nor a pickle (it starts with %q)", errNotPTFile, head)
}

// storageRec is a storage referenced by the pickle.
type storageRec struct {
	key    string
	dtype  DType
	nbytes int64
	data   []byte // nil until known
	filled bool

	// For legacy storage views: a byte range of a root storage.
	root       *storageRec
	viewOffset int64
}

// bytes returns the storage bytes, resolving legacy views.
func (s *storageRec) bytes() ([]byte, error) {
	if s.root != nil {
		rb, err := s.root.bytes()
		if err != nil {
			return nil, err
		}
		end, ok := addCheck(s.viewOffset, s.nbytes)
		if !ok || end > int64(len(rb)) {
			return nil, fmt.Errorf("storage view %s (bytes %d to %d) runs past the end of storage %s (%d bytes)",
				s.key, s.viewOffset, end, s.root.key, len(rb))
		}
		return rb[s.viewOffset:end:end], nil
	}
	if !s.filled {
		return nil, fmt.Errorf("storage %s has no data in the file", s.key)
	}
	return s.data, nil
}

// pendingTensor is a tensor built by the unpickler whose storage bytes may
// not be known yet (the legacy format stores them after the pickle).
type pendingTensor struct {
	t       Tensor
	storage *storageRec
}

type loader struct {
	storages  map[string]*storageRec
	zip       *zipArchive // nil for the legacy format
	legacy    bool
	bigEndian bool
}

func (l *loader) unpickle(p []byte) (v any, err error) {
	// The unpickler indexes its stacks without checking them everywhere.
	defer func() {
		if r := recover(); r != nil {
			recovered(r)
			v, err = nil, fmt.Errorf("malformed pickle: %s", clip(fmt.Sprint(r)))
		}
	}()
	n, err := scanPickle(p)
	if err != nil {
		return nil, err
	}
	if n != len(p) {
		return nil, fmt.Errorf("unexpected %d bytes after the pickle's end", len(p)-n)
	}
	u := pickle.NewUnpickler(bytes.NewReader(p))
	u.FindClass = findClass
	u.PersistentLoad = l.persistentLoad
	v, err = u.Load()
	if err != nil {
		return nil, fmt.Errorf("pickle: %s", clip(err.Error()))
	}
	return v, nil
}
