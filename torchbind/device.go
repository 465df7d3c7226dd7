package torchbind

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DType is a tensor element type.
type DType int

// The element types the binding supports.
const (
	Float32  DType = 0
	Float64  DType = 1
	Float16  DType = 2
	Int64    DType = 3
	Uint8    DType = 4
	Bool     DType = 5
	Int32    DType = 6
	BFloat16 DType = 7
)

// Size is the number of bytes of one element.
func (d DType) Size() int {
	switch d {
	case Float32, Int32:
		return 4
	case Float64, Int64:
		return 8
	case Float16, BFloat16:
		return 2
	case Uint8, Bool:
		return 1
	}
	return 0
}

func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Float64:
		return "float64"
	case Float16:
		return "float16"
	case Int64:
		return "int64"
	case Uint8:
		return "uint8"
	case Bool:
		return "bool"
	case Int32:
		return "int32"
	case BFloat16:
		return "bfloat16"
	}
	return fmt.Sprintf("dtype(%d)", int(d))
}

// DeviceType is CPU or CUDA.
type DeviceType int

// Device types.
const (
	CPUType  DeviceType = 0
	CUDAType DeviceType = 1
)

// Device names where a tensor lives. The zero value is the CPU.
type Device struct {
	Type  DeviceType
	Index int
}

// CPU is the host device.
var CPU = Device{Type: CPUType}

// CUDA returns the CUDA device with the given index.
func CUDA(index int) Device { return Device{Type: CUDAType, Index: index} }

func (d Device) String() string {
	if d.Type == CUDAType {
		return "cuda:" + strconv.Itoa(d.Index)
	}
	return "cpu"
}

// IsCUDA reports whether d is a CUDA device.
func (d Device) IsCUDA() bool { return d.Type == CUDAType }

// ErrNoCUDA is returned (wrapped) by ParseDevice when a CUDA device is asked
// for and this libtorch has none.
var ErrNoCUDA = errors.New("CUDA is not available")

// ParseDevice reads "auto", "cpu", "cuda" or "cuda:N". "auto" is the first
// CUDA device when one is available, else the CPU. Asking for CUDA where there
// is none is an error that says so.
func ParseDevice(s string) (Device, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "" || s == "auto":
		if CUDAAvailable() {
			return CUDA(0), nil
		}
		return CPU, nil
	case s == "cpu":
		return CPU, nil
	case s == "cuda" || strings.HasPrefix(s, "cuda:"):
		idx := 0
		if rest, ok := strings.CutPrefix(s, "cuda:"); ok {
			n, err := strconv.Atoi(rest)
			if err != nil || n < 0 {
				return CPU, fmt.Errorf("device %q: bad CUDA index", s)
			}
			idx = n
		}
		if !CUDAAvailable() {
			return CPU, fmt.Errorf("device %q: %w (libtorch %s, %d devices); build the shim against a CUDA libtorch (LIBTORCH=/path make native)", s, ErrNoCUDA, TorchVersion(), CUDADeviceCount())
		}
		if idx >= CUDADeviceCount() {
			return CPU, fmt.Errorf("device %q: only %d CUDA devices", s, CUDADeviceCount())
		}
		return CUDA(idx), nil
	}
	return CPU, fmt.Errorf("device %q: want auto, cpu, cuda or cuda:N", s)
}
