package torchbind

import (
	"fmt"

	"github.com/puad-go/puad/torchbind/ptfile"
)

// StateDict is an ordered set of named tensors, as a PyTorch state_dict().
// It owns its tensors: Close frees them.
type StateDict struct {
	Keys    []string
	Tensors map[string]*Tensor
}

// NewStateDict returns an empty state dict.
func NewStateDict() *StateDict { return &StateDict{Tensors: map[string]*Tensor{}} }

// Set adds or replaces a tensor; the state dict takes ownership.
func (sd *StateDict) Set(key string, t *Tensor) {
	if old, ok := sd.Tensors[key]; ok {
		if old != t {
			old.Close()
		}
	} else {
		sd.Keys = append(sd.Keys, key)
	}
	sd.Tensors[key] = t
}

// Take removes a tensor from the state dict and hands it to the caller.
func (sd *StateDict) Take(key string) (*Tensor, bool) {
	t, ok := sd.Tensors[key]
	if !ok {
		return nil, false
	}
	delete(sd.Tensors, key)
	for i, k := range sd.Keys {
		if k == key {
			sd.Keys = append(sd.Keys[:i], sd.Keys[i+1:]...)
			break
		}
	}
	return t, true
}

// Close frees every tensor still in the state dict.
func (sd *StateDict) Close() {
	if sd == nil {
		return
	}
	for _, t := range sd.Tensors {
		t.Close()
	}
	sd.Tensors = map[string]*Tensor{}
	sd.Keys = nil
}

var toPT = map[DType]ptfile.DType{
	Float32: ptfile.Float32, Float64: ptfile.Float64, Float16: ptfile.Float16, BFloat16: ptfile.BFloat16,
	Int64: ptfile.Int64, Int32: ptfile.Int32, Uint8: ptfile.Uint8, Bool: ptfile.Bool,
}

func fromPTDType(d ptfile.DType) (DType, bool) {
	for k, v := range toPT {
		if v == d {
			return k, true
		}
	}
	return 0, false
}

// FromPT builds a contiguous CPU tensor from a tensor read by package ptfile
// (a strided view into a storage, which is copied).
func FromPT(p *ptfile.Tensor) (*Tensor, error) {
	dt, ok := fromPTDType(p.DType)
	if !ok {
		return nil, &Error{Op: "from_pt", Msg: "unsupported dtype " + p.DType.String()}
	}
	return FromBytes(p.Storage, dt, p.Shape, p.Strides, p.Offset)
}

// ToPT copies a tensor (to the CPU, contiguous) into a ptfile tensor for saving.
func (t *Tensor) ToPT() (*ptfile.Tensor, error) {
	data, info, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	dt, ok := toPT[info.DType]
	if !ok {
		return nil, &Error{Op: "to_pt", Msg: "unsupported dtype " + info.DType.String()}
	}
	return ptfile.New(dt, info.Shape, data)
}

// LoadTensor reads a .pt file holding a single tensor (e.g. mu.pt).
func LoadTensor(path string) (*Tensor, error) {
	v, err := ptfile.Load(path)
	if err != nil {
		return nil, err
	}
	p, ok := v.(*ptfile.Tensor)
	if !ok {
		return nil, fmt.Errorf("load %s: holds %s, not a tensor", path, ptfile.Describe(v))
	}
	t, err := FromPT(p)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return t, nil
}

// LoadStateDict reads a .pt file holding a dict of tensors: a state dict
// (OrderedDict) or a plain dict such as quantile.pt.
func LoadStateDict(path string) (*StateDict, error) {
	v, err := ptfile.Load(path)
	if err != nil {
		return nil, err
	}
	d, ok := v.(*ptfile.OrderedDict)
	if !ok {
		return nil, fmt.Errorf("load %s: holds %s, not a dict of tensors", path, ptfile.Describe(v))
	}
	sd := NewStateDict()
	for _, k := range d.Keys {
		p, ok := d.Values[k].(*ptfile.Tensor)
		if !ok {
			sd.Close()
			return nil, fmt.Errorf("load %s: entry %q is %s, not a tensor", path, k, ptfile.Describe(d.Values[k]))
		}
		t, err := FromPT(p)
		if err != nil {
			sd.Close()
			return nil, fmt.Errorf("load %s: entry %q: %w", path, k, err)
		}
		sd.Set(k, t)
	}
	return sd, nil
}

// SaveStateDict writes sd as torch.save(state_dict) does (an OrderedDict, zip
// format, atomically), loadable by torch.load and load_state_dict.
func SaveStateDict(path string, sd *StateDict) error {
	d := ptfile.NewOrderedDict()
	for _, k := range sd.Keys {
		p, err := sd.Tensors[k].ToPT()
		if err != nil {
			return fmt.Errorf("save %s: entry %q: %w", path, k, err)
		}
		d.Set(k, p)
	}
	return ptfile.Save(path, d)
}

// SaveTensor writes one tensor as torch.save(tensor) does.
func SaveTensor(path string, t *Tensor) error {
	p, err := t.ToPT()
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return ptfile.Save(path, p)
}
