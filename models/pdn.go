package models

import (
	"fmt"

	tb "github.com/puad-go/puad/torchbind"
)

// Size is an EfficientAD model size.
type Size string

// The two sizes of EfficientAD.
const (
	Small  Size = "s"
	Medium Size = "m"
)

// ParseSize reads "s" or "m".
func ParseSize(s string) (Size, error) {
	switch s {
	case "s", "S", "small":
		return Small, nil
	case "m", "M", "medium":
		return Medium, nil
	}
	return "", fmt.Errorf("size %q: want s or m", s)
}

// TeacherChannels is the output width of the teacher (and of each half of the student).
const TeacherChannels = 384

// PDN is a patch description network, PDN_S or PDN_M of the reference:
//
//	S: conv1(3→128,k4) relu avgpool1 conv2(128→256,k4) relu avgpool2 conv3(256→256,k3) relu conv4(256→C,k4)
//	M: conv1(3→256,k4) relu avgpool1 conv2(256→512,k4) relu avgpool2 conv3(512→512,k1) relu
//	   conv4(512→512,k3) relu conv5(512→C,k4) relu conv6(C→C,k1)
//
// With Padding (teacher distillation) the convolutions are padded 3,3,1,0 (S)
// or 3,3,0,1,0,0 (M) and the 2×2 average pools pad 1.
type PDN struct {
	Size        Size
	OutChannels int64
	Padding     bool
	Conv1       *Conv2d
	Conv2       *Conv2d
	Conv3       *Conv2d
	Conv4       *Conv2d
	Conv5       *Conv2d // M only
	Conv6       *Conv2d // M only
}

// NewPDN describes a PDN of the given size; load or initialise its tensors next.
func NewPDN(size Size, outChannels int64, padding bool) (*PDN, error) {
	p := int64(0)
	if padding {
		p = 1
	}
	n := &PDN{Size: size, OutChannels: outChannels, Padding: padding}
	switch size {
	case Small:
		n.Conv1 = NewConv2d(3, 128, 4, 1, 3*p)
		n.Conv2 = NewConv2d(128, 256, 4, 1, 3*p)
		n.Conv3 = NewConv2d(256, 256, 3, 1, 1*p)
		n.Conv4 = NewConv2d(256, outChannels, 4, 1, 0)
	case Medium:
		n.Conv1 = NewConv2d(3, 256, 4, 1, 3*p)
		n.Conv2 = NewConv2d(256, 512, 4, 1, 3*p)
		n.Conv3 = NewConv2d(512, 512, 1, 1, 0)
		n.Conv4 = NewConv2d(512, 512, 3, 1, 1*p)
		n.Conv5 = NewConv2d(512, outChannels, 4, 1, 0)
		n.Conv6 = NewConv2d(outChannels, outChannels, 1, 1, 0)
	default:
		return nil, fmt.Errorf("PDN size %q: want s or m", size)
	}
	return n, nil
}

func (n *PDN) convs() []*Conv2d {
	if n.Size == Small {
		return []*Conv2d{n.Conv1, n.Conv2, n.Conv3, n.Conv4}
	}
	return []*Conv2d{n.Conv1, n.Conv2, n.Conv3, n.Conv4, n.Conv5, n.Conv6}
}

// NamedParams lists conv1.weight, conv1.bias, ... in the reference's order.
func (n *PDN) NamedParams() []Param {
	var ps []Param
	for i, c := range n.convs() {
		ps = append(ps, c.params(fmt.Sprintf("conv%d", i+1))...)
	}
	return ps
}

// Forward runs the network on a batch [B, 3, H, W].
func (n *PDN) Forward(x *tb.Tensor) (*tb.Tensor, error) {
	s := tb.NewScope()
	defer s.Close()
	pool := tb.PoolOptions{Kernel: [2]int64{2, 2}, Stride: [2]int64{2, 2}}
	if n.Padding {
		pool.Padding = [2]int64{1, 1}
	}
	h := s.T(n.Conv1.Forward(x))
	h = s.T(tb.Relu(h))
	h = s.T(tb.AvgPool2d(h, pool))
	h = s.T(n.Conv2.Forward(h))
	h = s.T(tb.Relu(h))
	h = s.T(tb.AvgPool2d(h, pool))
	h = s.T(n.Conv3.Forward(h))
	h = s.T(tb.Relu(h))
	h = s.T(n.Conv4.Forward(h))
	if n.Size == Medium {
		h = s.T(tb.Relu(h))
		h = s.T(n.Conv5.Forward(h))
		h = s.T(tb.Relu(h))
		h = s.T(n.Conv6.Forward(h))
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("PDN_%s forward: %w", n.Size, err)
	}
	return s.Keep(h), nil
}
