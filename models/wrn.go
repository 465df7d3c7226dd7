package models

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	tb "github.com/puad-go/puad/torchbind"
)

// WRN101Blocks are the numbers of Bottleneck blocks in layer1, layer2 and
// layer3 of torchvision's wide_resnet101_2 (layer4 has 3 more, unused here).
var WRN101Blocks = [3]int{3, 4, 23}

// WRNWidthPerGroup is the width_per_group of torchvision's wide ResNets: the
// inner width of a Bottleneck is twice that of a plain ResNet.
const WRNWidthPerGroup = 128

// WRN101WeightsFile is the name of torchvision's ImageNet checkpoint of
// wide_resnet101_2 (Wide_ResNet101_2_Weights.IMAGENET1K_V1).
const WRN101WeightsFile = "wide_resnet101_2-32ee1156.pth"

// BatchNorm2d is nn.BatchNorm2d (eps 1e-5) used in evaluation mode: it
// normalises with its running statistics. Its state-dict entries are weight,
// bias, running_mean, running_var and num_batches_tracked (int64, unused).
type BatchNorm2d struct {
	C                                          int64
	Weight, Bias                               *tb.Tensor
	RunningMean, RunningVar, NumBatchesTracked *tb.Tensor
}

func (bn *BatchNorm2d) params(prefix string) []Param {
	return []Param{
		{Name: prefix + ".weight", Shape: []int64{bn.C}, Tensor: &bn.Weight},
		{Name: prefix + ".bias", Shape: []int64{bn.C}, Tensor: &bn.Bias},
		{Name: prefix + ".running_mean", Shape: []int64{bn.C}, Tensor: &bn.RunningMean, Buffer: true},
		{Name: prefix + ".running_var", Shape: []int64{bn.C}, Tensor: &bn.RunningVar, Buffer: true},
		{Name: prefix + ".num_batches_tracked", Shape: []int64{}, Tensor: &bn.NumBatchesTracked, Buffer: true},
	}
}

// Forward normalises x with the running statistics.
func (bn *BatchNorm2d) Forward(x *tb.Tensor) (*tb.Tensor, error) {
	return tb.BatchNorm(x, bn.Weight, bn.Bias, bn.RunningMean, bn.RunningVar, false, 0.1, 1e-5)
}

// ConvNoBias is nn.Conv2d(bias=False), as in torchvision's ResNets.
type ConvNoBias struct {
	In, Out, Kernel, Stride, Padding int64
	Weight                           *tb.Tensor
}

func (c *ConvNoBias) params(prefix string) []Param {
	return []Param{{Name: prefix + ".weight", Shape: []int64{c.Out, c.In, c.Kernel, c.Kernel}, Tensor: &c.Weight}}
}

// Forward applies the convolution.
func (c *ConvNoBias) Forward(x *tb.Tensor) (*tb.Tensor, error) {
	return tb.Conv2d(x, c.Weight, nil, tb.ConvOptions{
		Stride:  [2]int64{c.Stride, c.Stride},
		Padding: [2]int64{c.Padding, c.Padding},
	})
}

// Bottleneck is torchvision's Bottleneck block (the stride on the 3×3
// convolution): conv1 1×1, bn1, relu, conv2 3×3, bn2, relu, conv3 1×1, bn3,
// plus the identity or the downsample branch (1×1 convolution and batch
// norm), then relu.
type Bottleneck struct {
	Conv1, Conv2, Conv3 *ConvNoBias
	BN1, BN2, BN3       *BatchNorm2d
	// DownConv and DownBN are downsample.0 and downsample.1; nil when the
	// block keeps its input's shape.
	DownConv *ConvNoBias
	DownBN   *BatchNorm2d
}

func newBottleneck(inplanes, planes, stride int64) *Bottleneck {
	width := planes * WRNWidthPerGroup / 64
	out := planes * 4
	b := &Bottleneck{
		Conv1: &ConvNoBias{In: inplanes, Out: width, Kernel: 1, Stride: 1},
		BN1:   &BatchNorm2d{C: width},
		Conv2: &ConvNoBias{In: width, Out: width, Kernel: 3, Stride: stride, Padding: 1},
		BN2:   &BatchNorm2d{C: width},
		Conv3: &ConvNoBias{In: width, Out: out, Kernel: 1, Stride: 1},
		BN3:   &BatchNorm2d{C: out},
	}
	if stride != 1 || inplanes != out {
		b.DownConv = &ConvNoBias{In: inplanes, Out: out, Kernel: 1, Stride: stride}
		b.DownBN = &BatchNorm2d{C: out}
	}
	return b
}

func (b *Bottleneck) params(prefix string) []Param {
	var ps []Param
	ps = append(ps, b.Conv1.params(prefix+".conv1")...)
	ps = append(ps, b.BN1.params(prefix+".bn1")...)
	ps = append(ps, b.Conv2.params(prefix+".conv2")...)
	ps = append(ps, b.BN2.params(prefix+".bn2")...)
	ps = append(ps, b.Conv3.params(prefix+".conv3")...)
	ps = append(ps, b.BN3.params(prefix+".bn3")...)
	if b.DownConv != nil {
		ps = append(ps, b.DownConv.params(prefix+".downsample.0")...)
		ps = append(ps, b.DownBN.params(prefix+".downsample.1")...)
	}
	return ps
}

// convBN is conv, then batch norm, then (when relu) ReLU, tracked by s.
func convBN(s *tb.Scope, conv *ConvNoBias, bn *BatchNorm2d, x *tb.Tensor, relu bool) *tb.Tensor {
	h := s.T(bn.Forward(s.T(conv.Forward(x))))
	if relu {
		h = s.T(tb.Relu(h))
	}
	return h
}

// Forward runs the block.
func (b *Bottleneck) Forward(x *tb.Tensor) (*tb.Tensor, error) {
	s := tb.NewScope()
	defer s.Close()
	h := convBN(s, b.Conv1, b.BN1, x, true)
	h = convBN(s, b.Conv2, b.BN2, h, true)
	h = convBN(s, b.Conv3, b.BN3, h, false)
	id := x
	if b.DownConv != nil {
		id = convBN(s, b.DownConv, b.DownBN, x, false)
	}
	h = s.T(tb.Add(h, id))
	h = s.T(tb.Relu(h))
	if err := s.Err(); err != nil {
		return nil, err
	}
	return s.Keep(h), nil
}

// WRNExtractor is the pretrained feature extractor of EfficientAD's teacher
// distillation: the stem and layer1–layer3 of a torchvision wide ResNet
// (WideResNet101-2 with WRN101Blocks), with the reference's head: layer3's
// output resized bilinearly (align_corners=False) to layer2's size,
// concatenated after layer2's output (512 + 1024 = 1536 channels), and each
// pixel's channel vector averaged down to OutChannels values by
// adaptive_avg_pool1d. Batch norm runs in evaluation mode.
//
// Parameter names are those of torchvision's state dict (conv1.weight,
// bn1.running_mean, layer3.22.downsample.1.weight, ...); layer4 and fc are
// not part of the extractor.
type WRNExtractor struct {
	Blocks      [3]int
	OutChannels int64
	Conv1       *ConvNoBias
	BN1         *BatchNorm2d
	Layers      [3][]*Bottleneck
}

// NewWRNExtractor describes an extractor with the given numbers of blocks in
// layer1..layer3 (WRN101Blocks for the reference) and output channels (384).
// Load its tensors next (LoadWRNExtractor, LoadStateDict).
func NewWRNExtractor(blocks [3]int, outChannels int64) (*WRNExtractor, error) {
	for i, n := range blocks {
		if n < 1 {
			return nil, fmt.Errorf("wide ResNet: layer%d needs at least one block, got %d", i+1, n)
		}
	}
	if outChannels < 1 {
		return nil, fmt.Errorf("wide ResNet extractor: %d output channels", outChannels)
	}
	w := &WRNExtractor{
		Blocks: blocks, OutChannels: outChannels,
		Conv1: &ConvNoBias{In: 3, Out: 64, Kernel: 7, Stride: 2, Padding: 3},
		BN1:   &BatchNorm2d{C: 64},
	}
	inplanes := int64(64)
	for li, planes := range []int64{64, 128, 256} {
		stride := int64(2)
		if li == 0 {
			stride = 1
		}
		for bi := 0; bi < blocks[li]; bi++ {
			if bi > 0 {
				stride = 1
			}
			w.Layers[li] = append(w.Layers[li], newBottleneck(inplanes, planes, stride))
			inplanes = planes * 4
		}
	}
	return w, nil
}

// NamedParams lists the tensors in torchvision's state-dict order.
func (w *WRNExtractor) NamedParams() []Param {
	var ps []Param
	ps = append(ps, w.Conv1.params("conv1")...)
	ps = append(ps, w.BN1.params("bn1")...)
	for li, layer := range w.Layers {
		for bi, b := range layer {
			ps = append(ps, b.params(fmt.Sprintf("layer%d.%d", li+1, bi))...)
		}
	}
	return ps
}

// Forward computes the features of a batch x [B, 3, H, W]: [B, OutChannels,
// h, w] with h, w the size of layer2's output (H/8, W/8).
func (w *WRNExtractor) Forward(x *tb.Tensor) (*tb.Tensor, error) {
	s := tb.NewScope()
	defer s.Close()
	h := convBN(s, w.Conv1, w.BN1, x, true)
	h = s.T(tb.MaxPool2d(h, tb.PoolOptions{Kernel: [2]int64{3, 3}, Stride: [2]int64{2, 2}, Padding: [2]int64{1, 1}}))
	var f2 *tb.Tensor
	for li, layer := range w.Layers {
		for _, b := range layer {
			h = s.T(b.Forward(h))
		}
		if li == 1 {
			f2 = h
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("wide ResNet forward: %w", err)
	}
	shape := f2.Shape()
	b, hh, ww := shape[0], shape[2], shape[3]
	f3 := s.T(tb.UpsampleBilinear(h, hh, ww, false))
	feat := s.T(tb.Cat([]*tb.Tensor{f2, f3}, 1))
	c := int64(0)
	if s.Err() == nil {
		c = feat.Shape()[1]
	}
	feat = s.T(tb.Reshape(feat, b, c, hh*ww))
	feat = s.T(tb.Transpose(feat, 1, 2))
	feat = s.T(tb.AdaptiveAvgPool1d(feat, w.OutChannels))
	feat = s.T(tb.Transpose(feat, 1, 2))
	feat = s.T(tb.Reshape(feat, b, w.OutChannels, hh, ww))
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("wide ResNet features: %w", err)
	}
	return s.Keep(feat), nil
}

var wrnBlockKey = regexp.MustCompile(`^layer([1-4])\.([0-9]+)\.`)

// WRNBlocksOf returns the numbers of blocks of layer1..layer3 found in the
// keys of a torchvision ResNet state dict.
func WRNBlocksOf(keys []string) ([3]int, error) {
	var blocks [3]int
	for _, k := range keys {
		m := wrnBlockKey.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		layer, _ := strconv.Atoi(m[1])
		idx, err := strconv.Atoi(m[2])
		if err != nil || layer == 4 {
			continue
		}
		blocks[layer-1] = max(blocks[layer-1], idx+1)
	}
	for i, n := range blocks {
		if n == 0 {
			return blocks, fmt.Errorf("no layer%d block found: not a torchvision ResNet state dict", i+1)
		}
	}
	return blocks, nil
}

// LoadWRNExtractor reads a torchvision wide ResNet state dict (e.g.
// WRN101WeightsFile, the checkpoint torchvision downloads for
// wide_resnet101_2(weights="IMAGENET1K_V1")) and returns the extractor on
// dev. The depth is read from the keys (layer1..layer3 block counts); layer4
// and fc entries are ignored, and may be missing. Every other key must match
// the architecture in name and shape.
func LoadWRNExtractor(path string, outChannels int64, dev tb.Device) (*WRNExtractor, error) {
	sd, err := tb.LoadStateDict(path)
	if err != nil {
		return nil, err
	}
	defer sd.Close()
	for _, k := range append([]string(nil), sd.Keys...) {
		if strings.HasPrefix(k, "layer4.") || strings.HasPrefix(k, "fc.") {
			if t, ok := sd.Take(k); ok {
				t.Close()
			}
		}
	}
	blocks, err := WRNBlocksOf(sd.Keys)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	w, err := NewWRNExtractor(blocks, outChannels)
	if err != nil {
		return nil, err
	}
	if err := LoadStateDict(w, sd, dev, path); err != nil {
		Close(w)
		return nil, err
	}
	return w, nil
}
