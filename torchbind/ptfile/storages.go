package ptfile

import (
	"fmt"

	"github.com/nlpodyssey/gopickle/types"
)

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

// Persistent ids: the storages a pickle refers to.

func (l *loader) persistentLoad(pid any) (any, error) {
	t, ok := pid.(*types.Tuple)
	if !ok || t.Len() == 0 {
		return nil, fmt.Errorf("unsupported persistent id %s", show(pid))
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
		return nil, fmt.Errorf("unsupported persistent id of kind %s", show(t.Get(0)))
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
		return nil, fmt.Errorf("storage persistent id names %s, not a storage class", show(t.Get(1)))
	}
	key, ok := t.Get(2).(string)
	if !ok {
		return nil, fmt.Errorf("storage key %s is not a string", show(t.Get(2)))
	}
	if _, ok := t.Get(3).(string); !ok {
		return nil, fmt.Errorf("storage location %s is not a string", show(t.Get(3)))
	}
	numel, ok := t.Get(4).(int)
	if !ok || numel < 0 {
		return nil, fmt.Errorf("storage %s: bad element count %s", key, show(t.Get(4)))
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
		return nil, fmt.Errorf("storage %s: bad view metadata %s", root.key, show(meta))
	}
	key, ok1 := t.Get(0).(string)
	off, ok2 := t.Get(1).(int)
	size, ok3 := t.Get(2).(int)
	if !ok1 || !ok2 || !ok3 || off < 0 || size < 0 {
		return nil, fmt.Errorf("storage %s: bad view metadata %s", root.key, show(meta))
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
