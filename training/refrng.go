package training

import (
	"fmt"

	tb "github.com/puad-go/puad/torchbind"
)

// The reference random stream (TeacherConfig.ReferenceRNG,
// StudentConfig.ReferenceRNG). The reference's training scripts draw every
// random number from PyTorch's default CPU generator, which they never
// seed; seeded with torch.manual_seed(S), a run is reproduced by one CPU
// generator seeded with S from which puad draws the same numbers in the
// same order:
//
//   - the constructors' default initialisation of every network the
//     reference builds, in the order it builds them, including those whose
//     weights it then loads (the WideResNet101-2 extractor before the
//     teacher's distillation, the teacher PDN before student training);
//   - the transforms of every image the statistics passes read
//     (RandomGrayscale in the teacher's, RandomAugment in the student's);
//   - per iteration, what next(iter(DataLoader(..., shuffle=True))) draws
//     (loaderBatch), then the transforms of the images of the batch in
//     batch order (RandomGrayscale, RandomAugment), the ImageNet loader of
//     the student's penalty likewise, and the autoencoder's dropout masks
//     in the order of the forward pass.
//
// Checkpoints keep the generator's state under streamReference.
const streamReference = "reference"

// newReferenceStream is the generator of the reference random stream of a
// run seeded with seed; only CPU runs have one (ErrReferenceRNGDevice).
func newReferenceStream(seed uint64, dev tb.Device) (*tb.Generator, error) {
	if err := checkReferenceDevice(true, dev); err != nil {
		return nil, err
	}
	return tb.NewGenerator(seed, tb.CPU)
}

// checkReferenceDevice refuses the reference random stream on a CUDA
// device: there the reference draws its initial weights and dropout masks
// from the device's generator, whose streams puad does not reproduce.
func checkReferenceDevice(on bool, dev tb.Device) error {
	if on && dev.Type != tb.CPU.Type {
		return newRunError(ErrReferenceRNGDevice, "the reference random stream is reproduced on the CPU only, not on %v", dev)
	}
	return nil
}

// loaderBatch draws the indices of the first batch of a freshly made
// iterator over a DataLoader(shuffle=True) of n items, as PyTorch 1.13
// does: two int64 draws from g (the iterator's base seed, then the
// sampler's seed), then randperm(n) from a generator seeded with the
// second; the batch is the first min(k, n) entries.
func loaderBatch(g *tb.Generator, n, k int) ([]int, error) {
	if _, err := tb.RandomInt64(g); err != nil {
		return nil, fmt.Errorf("data loader: %w", err)
	}
	seed, err := tb.RandomInt64(g)
	if err != nil {
		return nil, fmt.Errorf("data loader: %w", err)
	}
	perm, err := tb.Perm(uint64(seed), n)
	if err != nil {
		return nil, fmt.Errorf("data loader: %w", err)
	}
	out := make([]int, min(k, n))
	for i := range out {
		out[i] = int(perm[i])
	}
	return out, nil
}

// drawGrayscale is RandomGrayscale(p)'s draw: torch.rand(1) < p.
func drawGrayscale(g *tb.Generator, p float32) (bool, error) {
	u, err := randUniform(g)
	return u < p, err
}

// drawAugment is the reference's RandomAugment's draws: the kind
// (torch.randint(1, 4, (1,))), then the factor (torch.rand(1)).
func drawAugment(g *tb.Generator) (Augment, error) {
	kind, err := randInt(g, 1, 4)
	if err != nil {
		return Augment{}, err
	}
	u, err := randUniform(g)
	if err != nil {
		return Augment{}, err
	}
	return Augment{Kind: AugmentKind(kind), Factor: AugmentFactor(u)}, nil
}
