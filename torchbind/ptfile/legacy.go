package ptfile

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"

	"github.com/nlpodyssey/gopickle/types"
)

// The legacy stream format of torch.save(..., _use_new_zipfile_serialization=False).

func (l *loader) loadLegacy(data []byte) (any, error) {
	l.legacy = true
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
		if cerr := l.ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("%w: %w", ErrNotPTFile, err)
	}
	if m, ok := magic.(*big.Int); !ok || m.Cmp(legacyMagic) != 0 {
		return nil, fmt.Errorf("%w: a pickle, but without the magic number of torch.save", ErrNotPTFile)
	}
	proto, err := next("protocol version")
	if err != nil {
		return nil, err
	}
	if p, ok := proto.(int); !ok || int64(p) != legacyProto {
		return nil, fmt.Errorf("unsupported legacy format version %s (want %d)", show(proto), legacyProto)
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
	if err := l.legacyStorages(data[pos:], *keys); err != nil {
		return nil, err
	}
	return l.finish(v)
}

// legacyStorages attaches the storages that follow the pickles of a legacy
// file, in data, in the order of keys: each is an element count and the
// elements.
func (l *loader) legacyStorages(data []byte, keys []any) error {
	pos := 0
	for _, k := range keys {
		if err := l.ctx.Err(); err != nil {
			return err
		}
		key, ok := k.(string)
		if !ok {
			return fmt.Errorf("storage key %v is not a string", show(k))
		}
		s, ok := l.storages[key]
		if !ok || s.root != nil {
			return fmt.Errorf("storage %s is listed but not used by the pickle", key)
		}
		if s.filled {
			return fmt.Errorf("storage %s is listed twice", key)
		}
		if len(data)-pos < 8 {
			return fmt.Errorf("truncated file: storage %s is missing", key)
		}
		count := binary.LittleEndian.Uint64(data[pos:])
		if l.bigEndian {
			count = binary.BigEndian.Uint64(data[pos:])
		}
		pos += 8
		es := uint64(s.dtype.Size())
		if count > math.MaxInt64/es || int64(count*es) != s.nbytes {
			return fmt.Errorf("storage %s has %d elements in the file but %d in the pickle", key, count, s.nbytes/int64(es))
		}
		if int64(len(data)-pos) < s.nbytes {
			return fmt.Errorf("truncated file: storage %s needs %d bytes, %d left", key, s.nbytes, len(data)-pos)
		}
		end := pos + int(s.nbytes)
		s.data = data[pos:end:end]
		s.filled = true
		pos = end
	}
	return nil
}
