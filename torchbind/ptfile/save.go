package ptfile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/puad-go/puad/internal/atomicfile"
)

// Save writes v to path in the zip format of torch.save, so that
// torch.load(path) and torch.load(path, weights_only=True) read it back.
//
// v may be a *Tensor, an *OrderedDict (written as collections.OrderedDict,
// as a state dict is), a map[string]*Tensor or map[string]any (written as a
// plain dict with sorted keys), or a []any; containers may hold tensors,
// further containers, strings, ints (int, int64), bools and nil. A float64
// is written too, but torch.load(..., weights_only=True) of PyTorch 1.13
// rejects it.
//
// Every tensor is written through torch._utils._rebuild_tensor_v2 with its
// RequiresGrad flag (false for tensors made with New and the From
// functions) and its own contiguous copy of its elements,
// except that tensors sharing one storage (see Tensor.SharesStorage) with
// the same dtype are written as views of one shared storage, as torch.save
// does. The archive's top folder is named after the file name without its
// extension, as torch.save names it.
//
// The file is replaced atomically (internal/atomicfile), keeping the mode of
// the file it replaces; a path that is not a regular file is refused.
func Save(path string, v any) error {
	mode := atomicfile.DefaultPerm
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("save %s: not a regular file", path)
		}
		mode = st.Mode().Perm()
	}
	name := archiveName(filepath.Base(path))
	return atomicfile.Write(path, mode, func(w io.Writer) error { return encode(w, name, v) })
}

// SaveWriter writes v to w in the zip format of torch.save, as Save does,
// with the archive's top folder named archiveName ("archive", the name
// torch.save uses for buffers, if empty).
func SaveWriter(w io.Writer, archiveName string, v any) error {
	if archiveName == "" {
		archiveName = "archive"
	}
	if strings.ContainsAny(archiveName, "/\\") {
		return fmt.Errorf("save: archive name %q contains a path separator", archiveName)
	}
	if err := encode(w, archiveName, v); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

// archiveName returns the name torch.save gives the top folder of the
// archive for a file: its base name up to the last dot.
func archiveName(base string) string {
	name := base
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[:i]
	}
	if name == "" {
		return "archive"
	}
	return name
}

// storageOut is a storage to be written as data/<key>.
type storageOut struct {
	key   string
	dtype DType
	data  []byte
}

// storageID identifies shared storages among the tensors being saved.
type storageID struct {
	first *byte
	n     int
	dtype DType
}

type pickler struct {
	buf    bytes.Buffer
	memo   map[string]uint32
	uses   map[storageID]int         // tensors (by occurrence) per storage
	shared map[storageID]*storageOut // storages written once for views
	copies map[*Tensor]*storageOut   // tensors written as packed copies
	out    []*storageOut
	seen   map[*Tensor]bool
}

func sid(t *Tensor) (storageID, bool) {
	if len(t.Storage) == 0 {
		return storageID{}, false
	}
	return storageID{&t.Storage[0], len(t.Storage), t.DType}, true
}

func encode(w io.Writer, archive string, v any) error {
	p := &pickler{
		memo:   map[string]uint32{},
		uses:   map[storageID]int{},
		shared: map[storageID]*storageOut{},
		copies: map[*Tensor]*storageOut{},
		seen:   map[*Tensor]bool{},
	}
	if err := p.count(v, 0); err != nil {
		return err
	}
	p.buf.WriteString("\x80\x02") // PROTO 2
	if err := p.value(v, 0); err != nil {
		return err
	}
	p.buf.WriteByte('.') // STOP
	return writeArchive(w, archive, p.buf.Bytes(), p.out)
}

// count finds the tensors in v and how many of them view each storage.
func (p *pickler) count(v any, depth int) error {
	if depth > maxNesting {
		return fmt.Errorf("containers nested more than %d deep (a container that contains itself?)", maxNesting)
	}
	switch x := v.(type) {
	case *Tensor:
		if x == nil {
			return nil
		}
		if err := x.Validate(); err != nil {
			return err
		}
		if id, ok := sid(x); ok && !p.seen[x] {
			p.uses[id]++
		}
		p.seen[x] = true
	case *OrderedDict:
		if x == nil {
			return nil
		}
		if err := x.check(); err != nil {
			return err
		}
		for _, k := range x.Keys {
			if err := p.count(x.Values[k], depth+1); err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
		}
	case map[string]*Tensor:
		for k, t := range x {
			if err := p.count(t, depth+1); err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
		}
	case map[string]any:
		for k, e := range x {
			if err := p.count(e, depth+1); err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
		}
	case []any:
		for i, e := range x {
			if err := p.count(e, depth+1); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
	}
	return nil
}

func (p *pickler) op(b ...byte) { p.buf.Write(b) }

// memoize stores the object on top of the stack under key.
func (p *pickler) memoize(key string) {
	i := uint32(len(p.memo))
	p.memo[key] = i
	if i < 256 {
		p.op('q', byte(i)) // BINPUT
		return
	}
	p.op('r') // LONG_BINPUT
	p.buf.Write(binary.LittleEndian.AppendUint32(nil, i))
}

// recall pushes the memoized object key, if any.
func (p *pickler) recall(key string) bool {
	i, ok := p.memo[key]
	if !ok {
		return false
	}
	if i < 256 {
		p.op('h', byte(i)) // BINGET
	} else {
		p.op('j') // LONG_BINGET
		p.buf.Write(binary.LittleEndian.AppendUint32(nil, i))
	}
	return true
}

func (p *pickler) global(module, name string) {
	key := "c" + module + "\n" + name
	if p.recall(key) {
		return
	}
	p.op('c') // GLOBAL
	p.buf.WriteString(module + "\n" + name + "\n")
	p.memoize(key)
}

func (p *pickler) str(s string) {
	key := "s" + s
	if p.recall(key) {
		return
	}
	p.op('X') // BINUNICODE
	p.buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(s))))
	p.buf.WriteString(s)
	p.memoize(key)
}

func (p *pickler) int(v int64) {
	switch {
	case v >= 0 && v < 1<<8:
		p.op('K', byte(v)) // BININT1
	case v >= 0 && v < 1<<16:
		p.op('M', byte(v), byte(v>>8)) // BININT2
	case v >= math.MinInt32 && v <= math.MaxInt32:
		p.op('J') // BININT
		p.buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(int32(v))))
	default:
		// LONG1: little-endian two's complement, as short as possible.
		b := binary.LittleEndian.AppendUint64(nil, uint64(v))
		for len(b) > 1 {
			last, prev := b[len(b)-1], b[len(b)-2]
			if (last == 0 && prev&0x80 == 0) || (last == 0xff && prev&0x80 != 0) {
				b = b[:len(b)-1]
				continue
			}
			break
		}
		p.op(0x8a, byte(len(b)))
		p.buf.Write(b)
	}
}

func (p *pickler) bool(v bool) {
	if v {
		p.op(0x88) // NEWTRUE
	} else {
		p.op(0x89) // NEWFALSE
	}
}

func (p *pickler) intTuple(vs []int64) {
	if len(vs) == 0 {
		p.op(')') // EMPTY_TUPLE
		return
	}
	if len(vs) > 3 {
		p.op('(') // MARK
	}
	for _, v := range vs {
		p.int(v)
	}
	switch len(vs) {
	case 1:
		p.op(0x85) // TUPLE1
	case 2:
		p.op(0x86) // TUPLE2
	case 3:
		p.op(0x87) // TUPLE3
	default:
		p.op('t') // TUPLE
	}
}

// emptyOrderedDict pushes collections.OrderedDict().
func (p *pickler) emptyOrderedDict() {
	p.global("collections", "OrderedDict")
	p.op(')', 'R') // EMPTY_TUPLE, REDUCE
}

const batchSize = 1000 // items per SETITEMS or APPENDS, as pickle uses

func (p *pickler) value(v any, depth int) error {
	switch x := v.(type) {
	case nil:
		p.op('N')
	case bool:
		p.bool(x)
	case int:
		p.int(int64(x))
	case int64:
		p.int(x)
	case int32:
		p.int(int64(x))
	case float64:
		p.op('G') // BINFLOAT, big-endian
		p.buf.Write(binary.BigEndian.AppendUint64(nil, math.Float64bits(x)))
	case string:
		p.str(x)
	case *Tensor:
		if x == nil {
			p.op('N')
			return nil
		}
		p.tensor(x)
	case *OrderedDict:
		if x == nil {
			p.op('N')
			return nil
		}
		p.emptyOrderedDict()
		return p.items(x.Keys, func(k string) any { return x.Values[k] }, depth)
	case map[string]*Tensor:
		p.op('}') // EMPTY_DICT
		return p.items(sortedKeys(x), func(k string) any { return x[k] }, depth)
	case map[string]any:
		p.op('}')
		return p.items(sortedKeys(x), func(k string) any { return x[k] }, depth)
	case []any:
		p.op(']') // EMPTY_LIST
		for i := 0; i < len(x); i += batchSize {
			p.op('(')
			for j := i; j < len(x) && j < i+batchSize; j++ {
				if err := p.value(x[j], depth+1); err != nil {
					return fmt.Errorf("item %d: %w", j, err)
				}
			}
			p.op('e') // APPENDS
		}
	default:
		return fmt.Errorf("cannot save a value of type %T", v)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (p *pickler) items(keys []string, get func(string) any, depth int) error {
	for i := 0; i < len(keys); i += batchSize {
		p.op('(') // MARK
		for j := i; j < len(keys) && j < i+batchSize; j++ {
			p.str(keys[j])
			if err := p.value(get(keys[j]), depth+1); err != nil {
				return fmt.Errorf("key %q: %w", keys[j], err)
			}
		}
		p.op('u') // SETITEMS
	}
	return nil
}

// tensor writes _rebuild_tensor_v2(storage, offset, size, stride,
// requires_grad, OrderedDict()).
func (p *pickler) tensor(t *Tensor) {
	var s *storageOut
	offset, strides := t.Offset, t.Strides
	id, ok := sid(t)
	if ok && p.uses[id] > 1 {
		s = p.shared[id]
		if s == nil {
			s = p.newStorage(t.DType, t.Storage)
			p.shared[id] = s
		}
	} else {
		s = p.copies[t]
		if s == nil {
			s = p.newStorage(t.DType, packed(t))
			p.copies[t] = s
		}
		offset, strides = 0, ContiguousStrides(t.Shape)
	}
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op('(') // MARK: arguments
	p.op('(') // MARK: persistent id
	p.str("storage")
	p.global("torch", t.DType.storageClass())
	p.str(s.key)
	p.str("cpu")
	p.int(int64(len(s.data) / t.DType.Size()))
	p.op('t', 'Q') // TUPLE, BINPERSID
	p.int(offset)
	p.intTuple(t.Shape)
	p.intTuple(strides)
	p.bool(t.RequiresGrad)
	p.emptyOrderedDict()
	p.op('t', 'R') // TUPLE, REDUCE
}

// packed returns the elements of t in row-major order, without copying
// when they already lie so in its storage.
func packed(t *Tensor) []byte {
	n, _ := t.Numel()
	if n == 0 {
		return nil
	}
	if t.IsContiguous() {
		es := int64(t.DType.Size())
		return t.Storage[t.Offset*es : (t.Offset+n)*es]
	}
	return t.Contiguous().Storage
}

func (p *pickler) newStorage(dtype DType, data []byte) *storageOut {
	s := &storageOut{key: strconv.Itoa(len(p.out)), dtype: dtype, data: data}
	p.out = append(p.out, s)
	return s
}

// fileFormatVersion is the value torch.save of PyTorch 1.13 writes to the
// archive's version record.
const fileFormatVersion = "3\n"

// writeArchive writes the zip archive: data.pkl, the storages and version,
// stored uncompressed, each record's data aligned to 64 bytes with the "FB"
// padding extra field that PyTorch uses.
func writeArchive(w io.Writer, top string, pkl []byte, storages []*storageOut) error {
	zw := zip.NewWriter(w)
	var offset uint64
	add := func(name string, data []byte) error {
		full := top + "/" + name
		const localHeaderLen = 30
		start := offset + localHeaderLen + uint64(len(full)) + 4
		pad := (64 - start%64) % 64
		extra := make([]byte, 4+pad)
		extra[0], extra[1] = 'F', 'B'
		binary.LittleEndian.PutUint16(extra[2:], uint16(pad))
		for i := 4; i < len(extra); i++ {
			extra[i] = 'Z'
		}
		fw, err := zw.CreateRaw(&zip.FileHeader{
			Name:               full,
			Method:             zip.Store,
			CRC32:              crc32.ChecksumIEEE(data),
			CompressedSize64:   uint64(len(data)),
			UncompressedSize64: uint64(len(data)),
			Extra:              extra,
		})
		if err != nil {
			return err
		}
		if _, err := fw.Write(data); err != nil {
			return err
		}
		offset = start + pad + uint64(len(data))
		return nil
	}
	if err := add("data.pkl", pkl); err != nil {
		return err
	}
	sorted := append([]*storageOut{}, storages...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].key < sorted[j].key })
	for _, s := range sorted {
		if err := add("data/"+s.key, s.data); err != nil {
			return err
		}
	}
	if err := add("version", []byte(fileFormatVersion)); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("finish zip archive: %w", err)
	}
	return nil
}
