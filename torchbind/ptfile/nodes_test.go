package ptfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// node is the JSON description of a value that testdata/ptcommon.py uses.
type node struct {
	Type         string            `json:"type"`
	DType        string            `json:"dtype,omitempty"`
	Shape        []int64           `json:"shape"`
	Stride       []int64           `json:"stride"`
	Offset       *int64            `json:"offset,omitempty"`
	RequiresGrad *bool             `json:"requires_grad,omitempty"`
	Storage      string            `json:"storage,omitempty"`
	StorageNumel *int64            `json:"storage_numel,omitempty"`
	Values       []json.RawMessage `json:"values"`
	Items        []json.RawMessage `json:"items"`
	Value        json.RawMessage   `json:"value,omitempty"`
}

type fixture struct {
	File  string `json:"file"`
	Value node   `json:"value"`
}

func readExpected(t *testing.T) []fixture {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp struct {
		Fixtures []fixture `json:"fixtures"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&exp); err != nil {
		t.Fatal(err)
	}
	return exp.Fixtures
}

// sameFloat compares exactly, with NaNs equal and -0 different from +0.
func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Float64bits(a) == math.Float64bits(b)
}

// compareNode checks a loaded value against its description and returns the
// differences. groups maps storage labels to the first tensor seen with
// them, to check storage sharing.
func compareNode(got any, n node, path string, groups map[string]*Tensor) []string {
	var errs []string
	fail := func(format string, args ...any) []string {
		return append(errs, path+": "+fmt.Sprintf(format, args...))
	}
	switch n.Type {
	case "tensor":
		tn, ok := got.(*Tensor)
		if !ok {
			return fail("got %T, want a tensor", got)
		}
		if tn.DType.String() != n.DType {
			errs = fail("dtype %v, want %s", tn.DType, n.DType)
		}
		if fmt.Sprint(tn.Shape) != fmt.Sprint(n.Shape) {
			errs = fail("shape %v, want %v", tn.Shape, n.Shape)
		}
		if fmt.Sprint(tn.Strides) != fmt.Sprint(n.Stride) {
			errs = fail("strides %v, want %v", tn.Strides, n.Stride)
		}
		if n.Offset != nil && tn.Offset != *n.Offset {
			errs = fail("offset %d, want %d", tn.Offset, *n.Offset)
		}
		if n.RequiresGrad != nil && tn.RequiresGrad != *n.RequiresGrad {
			errs = fail("requires_grad %v, want %v", tn.RequiresGrad, *n.RequiresGrad)
		}
		if es := tn.DType.Size(); n.StorageNumel != nil && es > 0 && int64(len(tn.Storage)/es) != *n.StorageNumel {
			errs = fail("storage of %d elements, want %d", len(tn.Storage)/es, *n.StorageNumel)
		}
		if n.Storage != "" {
			if first, ok := groups[n.Storage]; ok {
				if !first.SharesStorage(tn) && len(tn.Storage) > 0 {
					errs = fail("does not share storage %s", n.Storage)
				}
			} else {
				for label, other := range groups {
					if other.SharesStorage(tn) {
						errs = fail("shares the storage of %s", label)
					}
				}
				groups[n.Storage] = tn
			}
		}
		if len(errs) > 0 {
			return errs
		}
		return append(errs, compareValues(tn, n.Values, path)...)
	case "dict":
		d, ok := got.(*OrderedDict)
		if !ok {
			return fail("got %T, want a dict", got)
		}
		if len(d.Keys) != len(n.Items) || len(d.Values) != len(d.Keys) {
			return fail("%d keys, want %d", len(d.Keys), len(n.Items))
		}
		for i, raw := range n.Items {
			var pair []json.RawMessage
			var key string
			var sub node
			mustUnmarshal(raw, &pair)
			mustUnmarshal(pair[0], &key)
			mustUnmarshal(pair[1], &sub)
			if d.Keys[i] != key {
				errs = fail("key %d is %q, want %q", i, d.Keys[i], key)
				continue
			}
			errs = append(errs, compareNode(d.Values[key], sub, fmt.Sprintf("%s[%q]", path, key), groups)...)
		}
		return errs
	case "list":
		l, ok := got.([]any)
		if !ok || len(l) != len(n.Items) {
			return fail("got %#v, want a list of %d", got, len(n.Items))
		}
		for i, raw := range n.Items {
			var sub node
			mustUnmarshal(raw, &sub)
			errs = append(errs, compareNode(l[i], sub, fmt.Sprintf("%s[%d]", path, i), groups)...)
		}
		return errs
	case "none":
		if got != nil {
			return fail("got %#v, want None", got)
		}
	case "bool":
		var want bool
		mustUnmarshal(n.Value, &want)
		if got != want {
			return fail("got %#v, want %v", got, want)
		}
	case "str":
		var want string
		mustUnmarshal(n.Value, &want)
		if got != want {
			return fail("got %#v, want %q", got, want)
		}
	case "float":
		want := parseFloat(n.Value)
		if f, ok := got.(float64); !ok || !sameFloat(f, want) {
			return fail("got %#v, want %v", got, want)
		}
	case "int":
		want, ok := new(big.Int).SetString(string(n.Value), 10)
		if !ok {
			return fail("bad int %s in expected.json", n.Value)
		}
		var g *big.Int
		switch x := got.(type) {
		case int64:
			g = big.NewInt(x)
		case *big.Int:
			g = x
		default:
			return fail("got %#v, want an int", got)
		}
		if g.Cmp(want) != 0 {
			return fail("got %v, want %v", g, want)
		}
	default:
		return fail("unknown node type %q", n.Type)
	}
	return errs
}

func mustUnmarshal(raw json.RawMessage, v any) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		panic(fmt.Sprintf("expected.json: %v in %s", err, raw))
	}
}

func parseFloat(raw json.RawMessage) float64 {
	var s string
	mustUnmarshal(raw, &s)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(fmt.Sprintf("expected.json: bad float %q", s))
	}
	return f
}

func compareValues(tn *Tensor, want []json.RawMessage, path string) []string {
	fail := func(format string, args ...any) []string {
		return []string{path + ": " + fmt.Sprintf(format, args...)}
	}
	switch {
	case tn.DType.IsFloat():
		got, err := tn.Float64s()
		if err != nil {
			return fail("%v", err)
		}
		if len(got) != len(want) {
			return fail("%d values, want %d", len(got), len(want))
		}
		for i := range got {
			if w := parseFloat(want[i]); !sameFloat(got[i], w) {
				return fail("value %d is %v, want %v", i, got[i], w)
			}
		}
	case tn.DType == Bool:
		got, err := tn.Bools()
		if err != nil {
			return fail("%v", err)
		}
		if len(got) != len(want) {
			return fail("%d values, want %d", len(got), len(want))
		}
		for i := range got {
			var w bool
			mustUnmarshal(want[i], &w)
			if got[i] != w {
				return fail("value %d is %v, want %v", i, got[i], w)
			}
		}
	default:
		got, err := tn.Int64s()
		if err != nil {
			return fail("%v", err)
		}
		if len(got) != len(want) {
			return fail("%d values, want %d", len(got), len(want))
		}
		for i := range got {
			w, err := strconv.ParseInt(string(want[i]), 10, 64)
			if err != nil || got[i] != w {
				return fail("value %d is %v, want %s", i, got[i], want[i])
			}
		}
	}
	return nil
}

// describeValue builds the description of a Go value in the format of
// ptcommon.py, for the checks run by PyTorch.
func describeValue(v any, groups map[*byte]string) node {
	switch x := v.(type) {
	case *Tensor:
		n := node{Type: "tensor", DType: x.DType.String(), Shape: x.Shape, Stride: x.Strides}
		if n.Shape == nil {
			n.Shape, n.Stride = []int64{}, []int64{}
		}
		off, rg := x.Offset, x.RequiresGrad
		n.Offset, n.RequiresGrad = &off, &rg
		if len(x.Storage) > 0 {
			label, ok := groups[&x.Storage[0]]
			if !ok {
				label = fmt.Sprintf("s%d", len(groups))
				groups[&x.Storage[0]] = label
			}
			n.Storage = label
		}
		switch {
		case x.DType.IsFloat():
			vals, _ := x.Float64s()
			for _, f := range vals {
				n.Values = append(n.Values, mustMarshal(strconv.FormatFloat(f, 'g', -1, 64)))
			}
		case x.DType == Bool:
			vals, _ := x.Bools()
			for _, b := range vals {
				n.Values = append(n.Values, mustMarshal(b))
			}
		default:
			vals, _ := x.Int64s()
			for _, i := range vals {
				n.Values = append(n.Values, mustMarshal(i))
			}
		}
		if n.Values == nil {
			n.Values = []json.RawMessage{}
		}
		return n
	case *OrderedDict:
		n := node{Type: "dict", Items: []json.RawMessage{}}
		for _, k := range x.Keys {
			n.Items = append(n.Items, mustMarshal([]any{k, describeValue(x.Values[k], groups)}))
		}
		return n
	case map[string]*Tensor:
		return describeValue(StateDict(x), groups)
	case []any:
		n := node{Type: "list", Items: []json.RawMessage{}}
		for _, e := range x {
			n.Items = append(n.Items, mustMarshal(describeValue(e, groups)))
		}
		return n
	case nil:
		return node{Type: "none"}
	case bool:
		return node{Type: "bool", Value: mustMarshal(x)}
	case int64:
		return node{Type: "int", Value: mustMarshal(x)}
	case string:
		return node{Type: "str", Value: mustMarshal(x)}
	}
	panic(fmt.Sprintf("describeValue: unsupported %T", v))
}

func mustMarshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
