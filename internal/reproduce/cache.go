package reproduce

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/models"
)

// RunsDir is the folder below the output folder that keeps the result of
// each category run, so that a rerun resumes where an earlier one stopped.
const RunsDir = "runs"

func runsDir(out string) string { return filepath.Join(out, RunsDir) }

// runPath is where the result of one category run is kept for resuming:
// <out>/runs[/seed<k>]/<size>_size/<dataset>/<category>.<extractor>.json,
// the format of `puad eval --json`.
func runPath(out string, seed *int, size models.Size, dataset, category, extractor string) string {
	dir := runsDir(out)
	if seed != nil {
		dir = filepath.Join(dir, fmt.Sprintf("seed%d", *seed))
	}
	return filepath.Join(dir, string(size)+"_size", dataset, category+"."+extractor+".json")
}

// loadRun reads a kept result; it returns nil when there is none or it does
// not belong to the run.
func loadRun(path, dataset, category string, size models.Size, extractor string) *evaluate.Result {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return parseRun(data, dataset, category, size, extractor)
}

// parseRun decodes a kept result; nil when it does not decode or does not
// belong to the category run.
func parseRun(data []byte, dataset, category string, size models.Size, extractor string) *evaluate.Result {
	var r evaluate.Result
	if json.Unmarshal(data, &r) != nil || r.DatasetName != dataset || r.Category != category ||
		r.Size != string(size) || r.Extractor != extractor {
		return nil
	}
	return &r
}

// seedModelRoot is the model folder of a seed (the root itself without seeds).
func seedModelRoot(root string, seed *int) string {
	if seed == nil {
		return root
	}
	return filepath.Join(root, fmt.Sprintf("seed%d", *seed))
}
