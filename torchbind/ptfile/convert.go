package ptfile

import (
	"fmt"
	"math"
	"math/big"

	"github.com/nlpodyssey/gopickle/types"
)

// Conversion of the unpickled object graph to the values Load returns.

// finish converts the unpickled object graph to the values Load returns,
// attaching storage bytes to tensors and checking every view.
// It fails with a *LimitError when the tensors, made contiguous, would take
// more than l.maxBytes.
func (l *loader) finish(v any) (any, error) {
	c := &converter{l: l, done: map[any]any{}, swapped: map[*storageRec][]byte{}}
	out, err := c.convert(v, 0)
	if err != nil {
		return nil, err
	}
	if c.contiguous > l.maxBytes {
		return nil, &LimitError{What: "the tensors made contiguous", Size: c.contiguous, Limit: l.maxBytes}
	}
	return out, nil
}

type converter struct {
	l          *loader
	done       map[any]any            // converted containers and tensors by identity
	swapped    map[*storageRec][]byte // little-endian copies of big-endian storages
	contiguous int64                  // bytes of all tensors made contiguous (saturated)
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
		if what := show(k); what != "a "+pythonType(k) {
			return fmt.Errorf("dict key %s is %s; only str keys are supported", what, pythonType(k))
		}
		return fmt.Errorf("dict key is %s; only str keys are supported", show(k))
	}
	cv, err := c.convert(v, depth+1)
	if err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	d.Set(key, cv)
	return nil
}

func (c *converter) tensor(p *pendingTensor) (*Tensor, error) {
	if err := c.l.ctx.Err(); err != nil {
		return nil, err
	}
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
	n, _ := t.Numel() // valid, and its bytes fit in an int64
	var ok bool
	if c.contiguous, ok = addCheck(c.contiguous, n*int64(t.DType.Size())); !ok {
		c.contiguous = math.MaxInt64
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
	case *types.ObjectClass:
		return "builtins.object class"
	case *types.Reconstructor:
		return "copyreg._reconstructor"
	}
	return "unsupported Python object"
}
