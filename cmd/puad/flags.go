package main

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/models"
)

// maxThreads is the largest --threads accepted: more threads than cores
// only add contention, and far more exhaust the system.
func maxThreads() int { return 4 * runtime.NumCPU() }

// checkThreads checks the global --threads (0: libtorch's default).
func checkThreads(n int) error {
	if n < 0 || n > maxThreads() {
		return fmt.Errorf("--threads %d: want 1 to %d (4 per CPU core), or 0 for libtorch's default", n, maxThreads())
	}
	return nil
}

// setMaxImagePixels sets the decoders' pixel limit from --max-image-pixels
// (-1: none).
func setMaxImagePixels(n int64) error {
	if n == 0 || n < -1 {
		return fmt.Errorf("--max-image-pixels %d: want a positive number of pixels, or -1 for no limit", n)
	}
	datasets.MaxImagePixels = n
	return nil
}

// checkModelFlags checks --batch-size (0: the device's default) and, when
// the command has it, --img-size of a command that loads a model.
func checkModelFlags(c *cli.Context) error {
	if n := c.Int("batch-size"); n < 0 {
		return usageError(c, "--batch-size %d: want at least 1 (or 0 for the device's default)", n)
	}
	if c.IsSet("img-size") {
		if err := models.CheckImgSize(c.Int("img-size")); err != nil {
			return usageError(c, "--img-size: %v", err)
		}
	}
	return nil
}
