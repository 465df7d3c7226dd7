package ptfile

import (
	"fmt"
	"sort"
)

// OrderedDict is a dictionary with string keys that remembers insertion
// order. Load returns one for every Python dict and collections.OrderedDict
// (a state dict is an OrderedDict of tensors); Save writes one as a
// collections.OrderedDict.
//
// Keys lists the keys in order and Values holds the value of each key; the
// two must be kept in step, which Set does. The zero value is an empty
// dictionary ready to use.
type OrderedDict struct {
	Keys   []string
	Values map[string]any
}

// NewOrderedDict returns an empty OrderedDict.
func NewOrderedDict() *OrderedDict {
	return &OrderedDict{Values: map[string]any{}}
}

// Set sets the value of key. A new key goes to the end; an existing key keeps
// its position, as in Python.
func (d *OrderedDict) Set(key string, value any) {
	if d.Values == nil {
		d.Values = map[string]any{}
	}
	if _, ok := d.Values[key]; !ok {
		d.Keys = append(d.Keys, key)
	}
	d.Values[key] = value
}

// Get returns the value of key and whether it is present.
func (d *OrderedDict) Get(key string) (any, bool) {
	v, ok := d.Values[key]
	return v, ok
}

// Tensor returns the value of key if it is a tensor.
func (d *OrderedDict) Tensor(key string) (*Tensor, bool) {
	t, ok := d.Values[key].(*Tensor)
	return t, ok
}

// Len returns the number of keys.
func (d *OrderedDict) Len() int {
	return len(d.Keys)
}

// check verifies that Keys and Values agree.
func (d *OrderedDict) check() error {
	if len(d.Keys) != len(d.Values) {
		return fmt.Errorf("OrderedDict has %d keys but %d values", len(d.Keys), len(d.Values))
	}
	seen := make(map[string]bool, len(d.Keys))
	for _, k := range d.Keys {
		if seen[k] {
			return fmt.Errorf("OrderedDict key %q is listed twice", k)
		}
		seen[k] = true
		if _, ok := d.Values[k]; !ok {
			return fmt.Errorf("OrderedDict key %q has no value", k)
		}
	}
	return nil
}

// StateDict returns an OrderedDict holding the tensors of m under its keys
// in sorted order.
func StateDict(m map[string]*Tensor) *OrderedDict {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	d := &OrderedDict{Keys: keys, Values: make(map[string]any, len(m))}
	for _, k := range keys {
		d.Values[k] = m[k]
	}
	return d
}
