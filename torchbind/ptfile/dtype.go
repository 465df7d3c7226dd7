package ptfile

import "fmt"

// DType is the element type of a tensor.
type DType int

// The supported element types. The zero value is invalid so that a Tensor
// whose DType was never set is caught by Validate.
const (
	Float32 DType = iota + 1
	Float64
	Float16
	BFloat16
	Int64
	Int32
	Int16
	Int8
	Uint8
	Bool
)

type dtypeInfo struct {
	name    string // torch name without the "torch." prefix
	size    int    // bytes per element
	storage string // legacy typed storage class, in module "torch"
}

var dtypeInfos = map[DType]dtypeInfo{
	Float32:  {"float32", 4, "FloatStorage"},
	Float64:  {"float64", 8, "DoubleStorage"},
	Float16:  {"float16", 2, "HalfStorage"},
	BFloat16: {"bfloat16", 2, "BFloat16Storage"},
	Int64:    {"int64", 8, "LongStorage"},
	Int32:    {"int32", 4, "IntStorage"},
	Int16:    {"int16", 2, "ShortStorage"},
	Int8:     {"int8", 1, "CharStorage"},
	Uint8:    {"uint8", 1, "ByteStorage"},
	Bool:     {"bool", 1, "BoolStorage"},
}

// Valid reports whether d is one of the supported element types.
func (d DType) Valid() bool {
	_, ok := dtypeInfos[d]
	return ok
}

// Size returns the number of bytes of one element, or 0 for an invalid DType.
func (d DType) Size() int {
	return dtypeInfos[d].size
}

// String returns the PyTorch name of the type without the "torch." prefix,
// for example "float32".
func (d DType) String() string {
	if info, ok := dtypeInfos[d]; ok {
		return info.name
	}
	return fmt.Sprintf("DType(%d)", int(d))
}

// IsFloat reports whether d is a floating point type.
func (d DType) IsFloat() bool {
	switch d {
	case Float32, Float64, Float16, BFloat16:
		return true
	}
	return false
}

// storageClass returns the name of the typed storage class that PyTorch
// pickles for tensors of this type, for example "FloatStorage".
func (d DType) storageClass() string {
	return dtypeInfos[d].storage
}

// ParseDType returns the DType named s. It accepts the names String returns,
// with or without the "torch." prefix, and the usual PyTorch aliases
// ("float", "double", "half", "long", "int", "short").
func ParseDType(s string) (DType, error) {
	name := s
	if len(name) > 6 && name[:6] == "torch." {
		name = name[6:]
	}
	switch name {
	case "float":
		return Float32, nil
	case "double":
		return Float64, nil
	case "half":
		return Float16, nil
	case "long":
		return Int64, nil
	case "int":
		return Int32, nil
	case "short":
		return Int16, nil
	}
	for d, info := range dtypeInfos {
		if info.name == name {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown dtype %q", s)
}

// storageClassDType maps the typed storage class names found in pickles to
// element types. Classes that exist in PyTorch but have no DType here map to
// the name of their dtype so that the error can name it.
var storageClassDType = map[string]DType{
	"FloatStorage":    Float32,
	"DoubleStorage":   Float64,
	"HalfStorage":     Float16,
	"BFloat16Storage": BFloat16,
	"LongStorage":     Int64,
	"IntStorage":      Int32,
	"ShortStorage":    Int16,
	"CharStorage":     Int8,
	"ByteStorage":     Uint8,
	"BoolStorage":     Bool,
	"UntypedStorage":  Uint8,
}

var unsupportedStorageClasses = map[string]string{
	"ComplexFloatStorage":  "complex64",
	"ComplexDoubleStorage": "complex128",
	"QInt8Storage":         "qint8",
	"QUInt8Storage":        "quint8",
	"QInt32Storage":        "qint32",
	"QUInt4x2Storage":      "quint4x2",
	"QUInt2x4Storage":      "quint2x4",
}
