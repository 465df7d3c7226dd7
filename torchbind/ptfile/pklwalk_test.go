package ptfile

import (
	"encoding/binary"
	"fmt"
	"math"
)

// A small pickle machine for the opcodes that Save writes, written apart
// from the loader (which uses gopickle) so that tests can check what Save
// writes without trusting the code that reads it back.

// pyGlobal is a GLOBAL opcode's module.name.
type pyGlobal struct{ module, name string }

// pyDict is a dict built by EMPTY_DICT or collections.OrderedDict().
type pyDict struct {
	ordered bool
	keys    []any
	values  []any
}

// pyList is a list built by EMPTY_LIST and APPENDS.
type pyList struct{ items []any }

// pyPersistent is a storage persistent id: ('storage', class, key,
// location, numel).
type pyPersistent struct {
	class    pyGlobal
	key      string
	location string
	numel    int64
}

// pyTensor is a _rebuild_tensor_v2 call.
type pyTensor struct {
	storage      pyPersistent
	offset       int64
	size, stride []int64
	requiresGrad bool
}

type pyMark struct{}

// pklWalker runs a pickle.
type pklWalker struct {
	p     []byte
	pos   int
	stack []any
	memo  []any
}

// walkPickle runs the protocol 2 pickle p and returns the object it builds.
func walkPickle(p []byte) (v any, err error) {
	w := &pklWalker{p: p}
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("pickle byte %d: %v", w.pos, r)
		}
	}()
	if string(w.take(2)) != "\x80\x02" {
		return nil, fmt.Errorf("does not start with PROTO 2")
	}
	for {
		op := w.take(1)[0]
		if op == '.' {
			if len(w.stack) != 1 || w.pos != len(p) {
				return nil, fmt.Errorf("STOP with %d values on the stack and %d bytes left", len(w.stack), len(p)-w.pos)
			}
			return w.stack[0], nil
		}
		if err := w.step(op); err != nil {
			return nil, fmt.Errorf("opcode 0x%02x at byte %d: %w", op, w.pos-1, err)
		}
	}
}

func (w *pklWalker) take(n int) []byte {
	b := w.p[w.pos : w.pos+n]
	w.pos += n
	return b
}

func (w *pklWalker) line() string {
	start := w.pos
	for w.p[w.pos] != '\n' {
		w.pos++
	}
	w.pos++
	return string(w.p[start : w.pos-1])
}

func (w *pklWalker) push(v any) { w.stack = append(w.stack, v) }

func (w *pklWalker) pop() any {
	v := w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	if _, ok := v.(pyMark); ok {
		panic("popped a MARK")
	}
	return v
}

// popMark pops the values above the last MARK, and the MARK.
func (w *pklWalker) popMark() []any {
	for i := len(w.stack) - 1; i >= 0; i-- {
		if _, ok := w.stack[i].(pyMark); ok {
			items := append([]any{}, w.stack[i+1:]...)
			w.stack = w.stack[:i]
			return items
		}
	}
	panic("no MARK")
}

func (w *pklWalker) step(op byte) error {
	switch op {
	case 'c': // GLOBAL
		w.push(pyGlobal{w.line(), w.line()})
	case 'q': // BINPUT
		return w.put(int(w.take(1)[0]))
	case 'r': // LONG_BINPUT
		return w.put(int(binary.LittleEndian.Uint32(w.take(4))))
	case 'h': // BINGET
		w.push(w.memo[w.take(1)[0]])
	case 'j': // LONG_BINGET
		w.push(w.memo[binary.LittleEndian.Uint32(w.take(4))])
	case '(':
		w.push(pyMark{})
	case 'X': // BINUNICODE
		w.push(string(w.take(int(binary.LittleEndian.Uint32(w.take(4))))))
	case 'K': // BININT1
		w.push(int64(w.take(1)[0]))
	case 'M': // BININT2
		w.push(int64(binary.LittleEndian.Uint16(w.take(2))))
	case 'J': // BININT
		w.push(int64(int32(binary.LittleEndian.Uint32(w.take(4)))))
	case 0x8a: // LONG1
		b := w.take(int(w.take(1)[0]))
		if len(b) == 0 || len(b) > 8 {
			return fmt.Errorf("LONG1 of %d bytes", len(b))
		}
		var u uint64
		for i := len(b) - 1; i >= 0; i-- {
			u = u<<8 | uint64(b[i])
		}
		shift := 64 - 8*uint(len(b))
		w.push(int64(u<<shift) >> shift)
	case 'G': // BINFLOAT
		w.push(math.Float64frombits(binary.BigEndian.Uint64(w.take(8))))
	case 'N':
		w.push(nil)
	case 0x88, 0x89: // NEWTRUE, NEWFALSE
		w.push(op == 0x88)
	case ')':
		w.push([]any{})
	case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
		n := int(op-0x85) + 1
		items := make([]any, n)
		for i := n - 1; i >= 0; i-- {
			items[i] = w.pop()
		}
		w.push(items)
	case 't':
		w.push(w.popMark())
	case '}':
		w.push(&pyDict{})
	case ']':
		w.push(&pyList{})
	case 'u': // SETITEMS
		items := w.popMark()
		d := w.stack[len(w.stack)-1].(*pyDict)
		for i := 0; i < len(items); i += 2 {
			d.keys = append(d.keys, items[i])
			d.values = append(d.values, items[i+1])
		}
	case 'e': // APPENDS
		items := w.popMark()
		l := w.stack[len(w.stack)-1].(*pyList)
		l.items = append(l.items, items...)
	case 'Q': // BINPERSID
		return w.persistent(w.pop())
	case 'R': // REDUCE
		args := w.pop().([]any)
		return w.reduce(w.pop(), args)
	default:
		return fmt.Errorf("an opcode that Save does not write")
	}
	return nil
}

// put memoizes the top of the stack; Save numbers memo entries in order.
func (w *pklWalker) put(i int) error {
	if i != len(w.memo) {
		return fmt.Errorf("memo index %d, want %d", i, len(w.memo))
	}
	w.memo = append(w.memo, w.stack[len(w.stack)-1])
	return nil
}

func (w *pklWalker) persistent(v any) error {
	t, ok := v.([]any)
	if !ok || len(t) != 5 || t[0] != "storage" {
		return fmt.Errorf("persistent id %v, want ('storage', class, key, location, numel)", v)
	}
	class, ok1 := t[1].(pyGlobal)
	key, ok2 := t[2].(string)
	loc, ok3 := t[3].(string)
	numel, ok4 := t[4].(int64)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return fmt.Errorf("persistent id %v has fields of the wrong types", v)
	}
	w.push(pyPersistent{class, key, loc, numel})
	return nil
}

func (w *pklWalker) reduce(fn any, args []any) error {
	switch fn {
	case pyGlobal{"collections", "OrderedDict"}:
		if len(args) != 0 {
			return fmt.Errorf("OrderedDict with %d arguments", len(args))
		}
		w.push(&pyDict{ordered: true})
		return nil
	case pyGlobal{"torch._utils", "_rebuild_tensor_v2"}:
		return w.rebuildTensor(args)
	}
	return fmt.Errorf("REDUCE of %v", fn)
}

func (w *pklWalker) rebuildTensor(args []any) error {
	if len(args) != 6 {
		return fmt.Errorf("_rebuild_tensor_v2 with %d arguments, want 6", len(args))
	}
	st, ok1 := args[0].(pyPersistent)
	off, ok2 := args[1].(int64)
	size, ok3 := int64s(args[2])
	stride, ok4 := int64s(args[3])
	rg, ok5 := args[4].(bool)
	hooks, ok6 := args[5].(*pyDict)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || !hooks.ordered || len(hooks.keys) != 0 {
		return fmt.Errorf("_rebuild_tensor_v2 arguments %v of the wrong types", args)
	}
	w.push(&pyTensor{st, off, size, stride, rg})
	return nil
}

func int64s(v any) ([]int64, bool) {
	items, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]int64, len(items))
	for i, it := range items {
		if out[i], ok = it.(int64); !ok {
			return nil, false
		}
	}
	return out, true
}
