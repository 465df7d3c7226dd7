package ptfile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"math/big"
	"os"
	"runtime/debug"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
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

// ---- zip format ----

type zipArchive struct {
	data  []byte
	top   string
	files map[string]*zip.File // by name inside the top folder
}

func loadZip(data []byte) (any, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, fmt.Errorf("corrupt or truncated zip archive: %w", err)
	}
	if len(zr.File) == 0 {
		return nil, fmt.Errorf("%w: the zip archive holds no files", errNotPTFile)
	}
	first := zr.File[0].Name
	slash := strings.IndexByte(first, '/')
	if slash <= 0 {
		return nil, fmt.Errorf("%w: file %q in the zip archive is not in a folder", errNotPTFile, first)
	}
	a := &zipArchive{data: data, top: first[:slash], files: map[string]*zip.File{}}
	for _, f := range zr.File {
		if rest, ok := strings.CutPrefix(f.Name, a.top+"/"); ok {
			if _, dup := a.files[rest]; !dup {
				a.files[rest] = f
			}
		}
	}
	if _, ok := a.files["constants.pkl"]; ok {
		return nil, fmt.Errorf("this is a TorchScript archive (torch.jit.save), not a torch.save file")
	}
	if _, ok := a.files["data.pkl"]; !ok {
		return nil, fmt.Errorf("%w: the zip archive has no %s/data.pkl", errNotPTFile, a.top)
	}
	l := &loader{storages: map[string]*storageRec{}, zip: a}
	if _, ok := a.files["byteorder"]; ok {
		b, err := a.record("byteorder")
		if err != nil {
			return nil, err
		}
		switch strings.TrimSpace(string(b)) {
		case "little":
		case "big":
			l.bigEndian = true
		default:
			return nil, fmt.Errorf("unknown byte order %q in %s/byteorder", b, a.top)
		}
	}
	pkl, err := a.record("data.pkl")
	if err != nil {
		return nil, err
	}
	v, err := l.unpickle(pkl)
	if err != nil {
		return nil, fmt.Errorf("%s/data.pkl: %w", a.top, err)
	}
	return l.finish(v)
}

// record returns the content of the file name inside the top folder.
func (a *zipArchive) record(name string) ([]byte, error) {
	f, ok := a.files[name]
	if !ok {
		return nil, fmt.Errorf("%s/%s is missing from the archive", a.top, name)
	}
	fail := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("%s/%s: %s", a.top, name, fmt.Sprintf(format, args...))
	}
	switch f.Method {
	case zip.Store:
		off, err := f.DataOffset()
		if err != nil {
			return fail("corrupt zip entry: %v", err)
		}
		size := f.UncompressedSize64
		if f.CompressedSize64 != size || off < 0 || size > uint64(len(a.data)) || uint64(off) > uint64(len(a.data))-size {
			return fail("entry runs past the end of the archive (truncated file?)")
		}
		b := a.data[off : off+int64(size) : off+int64(size)]
		if crc32.ChecksumIEEE(b) != f.CRC32 {
			return fail("checksum mismatch (corrupt file)")
		}
		return b, nil
	case zip.Deflate:
		// Deflate expands at most about 1032 times.
		if f.UncompressedSize64 > 1100*f.CompressedSize64+1024 || f.CompressedSize64 > uint64(len(a.data)) {
			return fail("implausible compressed sizes (corrupt file)")
		}
		rc, err := f.Open()
		if err != nil {
			return fail("%v", err)
		}
		defer rc.Close()
		b := make([]byte, f.UncompressedSize64)
		if _, err := io.ReadFull(rc, b); err != nil {
			return fail("%v", err)
		}
		// Reading to the end makes archive/zip verify the checksum.
		if n, err := rc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			if err == nil || err == io.EOF {
				err = errors.New("more data than the declared size")
			}
			return fail("%v", err)
		}
		return b, nil
	}
	return fail("unsupported zip compression method %d", f.Method)
}

// ---- legacy format ----

func loadLegacy(data []byte) (any, error) {
	l := &loader{storages: map[string]*storageRec{}, legacy: true}
	pos := 0
	next := func(what string) (any, error) {
		n, err := scanPickle(data[pos:])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		v, err := l.unpickle(data[pos : pos+n])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		pos += n
		return v, nil
	}
	magic, err := next("magic number")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNotPTFile, err)
	}
	if m, ok := magic.(*big.Int); !ok || m.Cmp(legacyMagic) != 0 {
		return nil, fmt.Errorf("%w: a pickle, but without the magic number of torch.save", errNotPTFile)
	}
	proto, err := next("protocol version")
	if err != nil {
		return nil, err
	}
	if p, ok := proto.(int); !ok || int64(p) != legacyProto {
		return nil, fmt.Errorf("unsupported legacy format version %v (want %d)", proto, legacyProto)
	}
	sysInfo, err := next("system info")
	if err != nil {
		return nil, err
	}
	if d, ok := sysInfo.(*types.Dict); ok {
		if le, ok := d.Get("little_endian"); ok && le == false {
			l.bigEndian = true
		}
	}
	v, err := next("main pickle")
	if err != nil {
		return nil, err
	}
	keysV, err := next("storage key list")
	if err != nil {
		return nil, err
	}
	keys, ok := keysV.(*types.List)
	if !ok {
		return nil, fmt.Errorf("storage key list is not a list")
	}
	for _, k := range *keys {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("storage key %v is not a string", clip(fmt.Sprint(k)))
		}
		s, ok := l.storages[key]
		if !ok || s.root != nil {
			return nil, fmt.Errorf("storage %s is listed but not used by the pickle", key)
		}
		if s.filled {
			return nil, fmt.Errorf("storage %s is listed twice", key)
		}
		if len(data)-pos < 8 {
			return nil, fmt.Errorf("truncated file: storage %s is missing", key)
		}
		count := binary.LittleEndian.Uint64(data[pos:])
		if l.bigEndian {
			count = binary.BigEndian.Uint64(data[pos:])
		}
		pos += 8
		es := uint64(s.dtype.Size())
		if count > math.MaxInt64/es || int64(count*es) != s.nbytes {
			return nil, fmt.Errorf("storage %s has %d elements in the file but %d in the pickle", key, count, s.nbytes/int64(es))
		}
		if int64(len(data)-pos) < s.nbytes {
			return nil, fmt.Errorf("truncated file: storage %s needs %d bytes, %d left", key, s.nbytes, len(data)-pos)
		}
		end := pos + int(s.nbytes)
		s.data = data[pos:end:end]
		s.filled = true
		pos = end
	}
	return l.finish(v)
}

// ---- persistent ids ----

func (l *loader) persistentLoad(pid any) (any, error) {
	t, ok := pid.(*types.Tuple)
	if !ok || t.Len() == 0 {
		return nil, fmt.Errorf("unsupported persistent id %s", clip(fmt.Sprint(pid)))
	}
	kind, _ := t.Get(0).(string)
	switch kind {
	case "storage":
	case "module":
		name := "?"
		if t.Len() > 1 {
			if c, ok := t.Get(1).(*pyClass); ok {
				name = c.name
			}
		}
		return nil, fmt.Errorf("the file holds a pickled nn.Module (%s); only state dicts can be loaded", name)
	default:
		return nil, fmt.Errorf("unsupported persistent id of kind %q", clip(fmt.Sprint(t.Get(0))))
	}
	want := 5
	if l.legacy {
		want = 6
	}
	if t.Len() != want {
		return nil, fmt.Errorf("storage persistent id has %d fields, want %d", t.Len(), want)
	}
	sc, ok := t.Get(1).(*storageClass)
	if !ok {
		return nil, fmt.Errorf("storage persistent id names %s, not a storage class", clip(fmt.Sprint(t.Get(1))))
	}
	key, ok := t.Get(2).(string)
	if !ok {
		return nil, fmt.Errorf("storage key %s is not a string", clip(fmt.Sprint(t.Get(2))))
	}
	if _, ok := t.Get(3).(string); !ok {
		return nil, fmt.Errorf("storage location %s is not a string", clip(fmt.Sprint(t.Get(3))))
	}
	numel, ok := t.Get(4).(int)
	if !ok || numel < 0 {
		return nil, fmt.Errorf("storage %s: bad element count %s", key, clip(fmt.Sprint(t.Get(4))))
	}
	nbytes, ok := mulCheck(int64(numel), int64(sc.dtype.Size()))
	if !ok {
		return nil, fmt.Errorf("storage %s: %w", key, errOverflow)
	}
	s, err := l.storage(key, sc.dtype, nbytes)
	if err != nil {
		return nil, err
	}
	if l.legacy && t.Get(5) != nil {
		return l.legacyView(s, t.Get(5))
	}
	return s, nil
}

// storage returns the storage with the given key, creating it on first use.
func (l *loader) storage(key string, dtype DType, nbytes int64) (*storageRec, error) {
	if s, ok := l.storages[key]; ok {
		if s.dtype != dtype {
			return nil, fmt.Errorf("storage %s is used both as %v and as %v", key, s.dtype, dtype)
		}
		return s, nil
	}
	s := &storageRec{key: key, dtype: dtype, nbytes: nbytes}
	if l.zip != nil {
		rec, err := l.zip.record("data/" + key)
		if err != nil {
			return nil, err
		}
		if int64(len(rec)) < nbytes {
			return nil, fmt.Errorf("%s/data/%s has %d bytes but the pickle expects %d", l.zip.top, key, len(rec), nbytes)
		}
		s.data = rec[:nbytes:nbytes]
		s.filled = true
	}
	l.storages[key] = s
	return s, nil
}

// legacyView handles the view_metadata (view_key, offset, size) of a legacy
// persistent id: a storage that is a slice of the root storage.
func (l *loader) legacyView(root *storageRec, meta any) (any, error) {
	t, ok := meta.(*types.Tuple)
	if !ok || t.Len() != 3 {
		return nil, fmt.Errorf("storage %s: bad view metadata %s", root.key, clip(fmt.Sprint(meta)))
	}
	key, ok1 := t.Get(0).(string)
	off, ok2 := t.Get(1).(int)
	size, ok3 := t.Get(2).(int)
	if !ok1 || !ok2 || !ok3 || off < 0 || size < 0 {
		return nil, fmt.Errorf("storage %s: bad view metadata %s", root.key, clip(fmt.Sprint(meta)))
	}
	if v, ok := l.storages[key]; ok {
		if v.root != root {
			return nil, fmt.Errorf("storage view %s is used with two different roots", key)
		}
		return v, nil
	}
	es := int64(root.dtype.Size())
	offB, ok1 := mulCheck(int64(off), es)
	sizeB, ok2 := mulCheck(int64(size), es)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("storage view %s: %w", key, errOverflow)
	}
	v := &storageRec{key: key, dtype: root.dtype, nbytes: sizeB, root: root, viewOffset: offB}
	l.storages[key] = v
	return v, nil
}

// ---- classes ----

// pyClass is a Python callable the loader knows.
type pyClass struct {
	name string
	call func(args []any) (any, error)
	// newObj handles NEWOBJ (cls.__new__(cls, *args)); nil if unsupported.
	newObj func(args []any) (any, error)
}

func (c *pyClass) Call(args ...any) (any, error) {
	if c.call == nil {
		return nil, fmt.Errorf("%s cannot be called", c.name)
	}
	v, err := c.call(args)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.name, err)
	}
	return v, nil
}

func (c *pyClass) PyNew(args ...any) (any, error) {
	if c.newObj == nil {
		return nil, fmt.Errorf("%s cannot be instantiated", c.name)
	}
	v, err := c.newObj(args)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.name, err)
	}
	return v, nil
}

// storageClass is a torch storage class named in a persistent id.
type storageClass struct {
	name  string
	dtype DType
}

var knownClasses = map[string]*pyClass{
	"torch._utils._rebuild_tensor_v2":            {name: "torch._utils._rebuild_tensor_v2", call: rebuildTensorV2},
	"torch._utils._rebuild_tensor":               {name: "torch._utils._rebuild_tensor", call: rebuildTensor},
	"torch._utils._rebuild_parameter":            {name: "torch._utils._rebuild_parameter", call: rebuildParameter},
	"torch._utils._rebuild_parameter_with_state": {name: "torch._utils._rebuild_parameter_with_state", call: rebuildParameter},
	"torch.nn.parameter.Parameter":               {name: "torch.nn.parameter.Parameter", newObj: newParameter, call: newParameter},
	"torch.Size":                                 {name: "torch.Size", call: torchSize},
	"torch.device":                               {name: "torch.device", call: torchDevice},
}

// findClass resolves the globals a pickle refers to. collections.OrderedDict
// is resolved by the unpickler itself.
func findClass(module, name string) (any, error) {
	full := module + "." + name
	if c, ok := knownClasses[full]; ok {
		return c, nil
	}
	if module == "torch" || module == "torch.cuda" || module == "torch.storage" {
		if d, ok := storageClassDType[name]; ok {
			return &storageClass{name: full, dtype: d}, nil
		}
		if dt, ok := unsupportedStorageClasses[name]; ok {
			return nil, fmt.Errorf("unsupported dtype %s (storage class %s)", dt, full)
		}
	}
	if module == "torch" {
		if d, err := ParseDType(name); err == nil {
			return d, nil
		}
	}
	return nil, fmt.Errorf("unsupported Python class %s in the pickle (only tensors, parameters, state dicts and plain containers can be loaded)", full)
}

func intArg(v any, what string) (int64, error) {
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("%s is %s, want an int", what, clip(fmt.Sprint(v)))
}

func intTuple(v any, what string) ([]int64, error) {
	var items []any
	switch x := v.(type) {
	case *types.Tuple:
		items = *x
	case *types.List:
		items = *x
	default:
		return nil, fmt.Errorf("%s is %s, want a tuple of ints", what, clip(fmt.Sprint(v)))
	}
	if len(items) > maxDims {
		return nil, fmt.Errorf("%s has %d dimensions, at most %d are supported", what, len(items), maxDims)
	}
	out := make([]int64, len(items))
	for i, it := range items {
		n, err := intArg(it, what)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// rebuildTensorV2 handles _rebuild_tensor_v2(storage, storage_offset, size,
// stride, requires_grad, backward_hooks[, metadata]).
func rebuildTensorV2(args []any) (any, error) {
	if len(args) != 6 && len(args) != 7 {
		return nil, fmt.Errorf("got %d arguments, want 6 or 7", len(args))
	}
	p, err := rebuildTensor(args[:4])
	if err != nil {
		return nil, err
	}
	rg, ok := args[4].(bool)
	if !ok {
		return nil, fmt.Errorf("requires_grad is %s, want a bool", clip(fmt.Sprint(args[4])))
	}
	p.(*pendingTensor).t.RequiresGrad = rg
	return p, nil
}

// rebuildTensor handles _rebuild_tensor(storage, storage_offset, size, stride).
func rebuildTensor(args []any) (any, error) {
	if len(args) != 4 {
		return nil, fmt.Errorf("got %d arguments, want 4", len(args))
	}
	s, ok := args[0].(*storageRec)
	if !ok {
		return nil, fmt.Errorf("first argument is %s, want a storage", clip(fmt.Sprint(args[0])))
	}
	off, err := intArg(args[1], "storage offset")
	if err != nil {
		return nil, err
	}
	size, err := intTuple(args[2], "size")
	if err != nil {
		return nil, err
	}
	stride, err := intTuple(args[3], "stride")
	if err != nil {
		return nil, err
	}
	return &pendingTensor{t: Tensor{DType: s.dtype, Shape: size, Strides: stride, Offset: off}, storage: s}, nil
}

// rebuildParameter handles _rebuild_parameter(data, requires_grad,
// backward_hooks) and _rebuild_parameter_with_state(..., state).
func rebuildParameter(args []any) (any, error) {
	if len(args) != 3 && len(args) != 4 {
		return nil, fmt.Errorf("got %d arguments, want 3 or 4", len(args))
	}
	return parameter(args[0], args[1])
}

// newParameter handles Parameter(data, requires_grad=True).
func newParameter(args []any) (any, error) {
	if len(args) < 1 || len(args) > 2 {
		return nil, fmt.Errorf("got %d arguments, want 1 or 2", len(args))
	}
	var rg any = true
	if len(args) == 2 {
		rg = args[1]
	}
	return parameter(args[0], rg)
}

func parameter(data, requiresGrad any) (any, error) {
	p, ok := data.(*pendingTensor)
	if !ok {
		return nil, fmt.Errorf("data is %s, want a tensor", clip(fmt.Sprint(data)))
	}
	rg, ok := requiresGrad.(bool)
	if !ok {
		return nil, fmt.Errorf("requires_grad is %s, want a bool", clip(fmt.Sprint(requiresGrad)))
	}
	q := *p
	q.t.RequiresGrad = rg
	return &q, nil
}

func torchSize(args []any) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("got %d arguments, want 1", len(args))
	}
	dims, err := intTuple(args[0], "size")
	if err != nil {
		return nil, err
	}
	t := make(types.Tuple, len(dims))
	for i, d := range dims {
		t[i] = int(d)
	}
	return &t, nil
}

func torchDevice(args []any) (any, error) {
	if len(args) == 0 || len(args) > 2 {
		return nil, fmt.Errorf("got %d arguments, want 1 or 2", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("device type is %s, want a str", clip(fmt.Sprint(args[0])))
	}
	if len(args) == 2 && args[1] != nil {
		i, err := intArg(args[1], "device index")
		if err != nil {
			return nil, err
		}
		s = fmt.Sprintf("%s:%d", s, i)
	}
	return s, nil
}

// ---- conversion to Go values ----

// finish converts the unpickled object graph to the values Load returns,
// attaching storage bytes to tensors and checking every view.
func (l *loader) finish(v any) (any, error) {
	c := &converter{l: l, done: map[any]any{}, swapped: map[*storageRec][]byte{}}
	return c.convert(v, 0)
}

type converter struct {
	l       *loader
	done    map[any]any            // converted containers and tensors by identity
	swapped map[*storageRec][]byte // little-endian copies of big-endian storages
}

type inProgress struct{}

func (c *converter) convert(v any, depth int) (any, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("containers nested more than %d deep", maxNesting)
	}
	switch x := v.(type) {
	case nil, bool, float64, string, DType:
		return x, nil
	case int:
		return int64(x), nil
	case *big.Int:
		if x.IsInt64() {
			return x.Int64(), nil
		}
		return x, nil
	case []byte:
		return x, nil
	case *types.ByteArray:
		return []byte(*x), nil
	}
	switch v.(type) {
	case *types.List, *types.Tuple, *types.Dict, *types.OrderedDict, *pendingTensor, *storageRec:
	default:
		return nil, fmt.Errorf("unsupported value in the pickle: %s", pythonType(v))
	}
	if got, ok := c.done[v]; ok {
		if _, busy := got.(inProgress); busy {
			return nil, fmt.Errorf("a container contains itself; recursive structures are not supported")
		}
		return got, nil
	}
	c.done[v] = inProgress{}
	out, err := c.convertNew(v, depth)
	if err != nil {
		return nil, err
	}
	c.done[v] = out
	return out, nil
}

func (c *converter) convertNew(v any, depth int) (any, error) {
	switch x := v.(type) {
	case *types.List:
		return c.convertSlice(*x, depth)
	case *types.Tuple:
		return c.convertSlice(*x, depth)
	case *types.Dict:
		d := NewOrderedDict()
		for _, e := range *x {
			if err := c.setItem(d, e.Key, e.Value, depth); err != nil {
				return nil, err
			}
		}
		return d, nil
	case *types.OrderedDict:
		d := NewOrderedDict()
		for e := x.List.Front(); e != nil; e = e.Next() {
			entry := e.Value.(*types.OrderedDictEntry)
			if err := c.setItem(d, entry.Key, entry.Value, depth); err != nil {
				return nil, err
			}
		}
		return d, nil
	case *pendingTensor:
		return c.tensor(x)
	case *storageRec:
		n := x.nbytes / int64(x.dtype.Size())
		return c.tensor(&pendingTensor{t: Tensor{DType: x.dtype, Shape: []int64{n}, Strides: []int64{1}}, storage: x})
	}
	panic("unreachable")
}

func (c *converter) convertSlice(items []any, depth int) ([]any, error) {
	out := make([]any, len(items))
	for i, it := range items {
		v, err := c.convert(it, depth+1)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (c *converter) setItem(d *OrderedDict, k, v any, depth int) error {
	key, ok := k.(string)
	if !ok {
		return fmt.Errorf("dict key %s is %s; only str keys are supported", clip(fmt.Sprint(k)), pythonType(k))
	}
	cv, err := c.convert(v, depth+1)
	if err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	d.Set(key, cv)
	return nil
}

func (c *converter) tensor(p *pendingTensor) (*Tensor, error) {
	b, err := p.storage.bytes()
	if err != nil {
		return nil, err
	}
	if c.l.bigEndian {
		sb, ok := c.swapped[p.storage]
		if !ok {
			sb = swapped(b, p.storage.dtype.Size())
			c.swapped[p.storage] = sb
		}
		b = sb
	}
	t := p.t
	t.Storage = b
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("tensor on storage %s: %w", p.storage.key, err)
	}
	return &t, nil
}

// swapped returns a copy of b with the bytes of every element of size es
// reversed (big-endian to little-endian).
func swapped(b []byte, es int) []byte {
	out := make([]byte, len(b))
	for i := 0; i+es <= len(b); i += es {
		for j := 0; j < es; j++ {
			out[i+j] = b[i+es-1-j]
		}
	}
	return out
}

// pythonType names the Python type behind an unpickled value.
func pythonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case int, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case bool:
		return "bool"
	case []byte:
		return "bytes"
	case *types.List:
		return "list"
	case *types.Tuple:
		return "tuple"
	case *types.Dict, *types.OrderedDict:
		return "dict"
	case *types.Set:
		return "set"
	case *types.FrozenSet:
		return "frozenset"
	case *pyClass:
		return x.name
	case *storageClass:
		return x.name
	case *types.OrderedDictClass:
		return "collections.OrderedDict class"
	case *pendingTensor:
		return "tensor"
	}
	return fmt.Sprintf("%T", v)
}
