package ptfile

import (
	"fmt"
	"math/big"

	"github.com/nlpodyssey/gopickle/types"
)

// The Python classes and functions a pickle may refer to.

// pyClass is a Python callable the loader knows.
type pyClass struct {
	name string
	call func(args []any) (any, error)
	// newObj handles NEWOBJ (cls.__new__(cls, *args)); nil if unsupported.
	newObj func(args []any) (any, error)
}

func (c *pyClass) Call(args ...any) (any, error) {
	if c.call == nil {
		return nil, own(fmt.Errorf("%s cannot be called", c.name))
	}
	v, err := c.call(args)
	if err != nil {
		return nil, own(fmt.Errorf("%s: %w", c.name, err))
	}
	return v, nil
}

func (c *pyClass) PyNew(args ...any) (any, error) {
	if c.newObj == nil {
		return nil, own(fmt.Errorf("%s cannot be instantiated", c.name))
	}
	v, err := c.newObj(args)
	if err != nil {
		return nil, own(fmt.Errorf("%s: %w", c.name, err))
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
	case *big.Int:
		n, err := checkedInt(x)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		return n, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("%s is %s, want an int", what, show(v))
}

func intTuple(v any, what string) ([]int64, error) {
	var items []any
	switch x := v.(type) {
	case *types.Tuple:
		items = *x
	case *types.List:
		items = *x
	default:
		return nil, fmt.Errorf("%s is %s, want a tuple of ints", what, show(v))
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
		return nil, fmt.Errorf("requires_grad is %s, want a bool", show(args[4]))
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
		return nil, fmt.Errorf("first argument is %s, want a storage", show(args[0]))
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
		return nil, fmt.Errorf("data is %s, want a tensor", show(data))
	}
	rg, ok := requiresGrad.(bool)
	if !ok {
		return nil, fmt.Errorf("requires_grad is %s, want a bool", show(requiresGrad))
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
		return nil, fmt.Errorf("device type is %s, want a str", show(args[0]))
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
