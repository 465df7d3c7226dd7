package reproduce

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/evaluate/report"
	"github.com/puad-go/puad/models"
)

// Category is a category to evaluate; Dir is empty when it is not under the data root.
type Category struct {
	Dataset, Category, Dir string
}

// Datasets are the dataset folders Run looks for, in table order.
var Datasets = []string{report.LOCODataset, report.MVTecADataset}

// paperSizes are the EfficientAD sizes the paper reports.
var paperSizes = []string{string(models.Small), string(models.Medium)}

// Discover lists the categories to evaluate: those found under root
// (folders with train/ and test/) and those the paper reports for a dataset
// folder that exists, restricted to filter when it is not empty. A filtered
// name found nowhere is returned without Dir. The notes say which dataset
// folders are absent.
func Discover(root string, filter []string) ([]Category, []string, error) {
	var refs []Category
	var notes []string
	present := 0
	for _, ds := range Datasets {
		dsDir := filepath.Join(root, ds)
		found, err := categoryDirs(dsDir)
		if errors.Is(err, os.ErrNotExist) {
			notes = append(notes, fmt.Sprintf("%s not found: its categories were not evaluated", dsDir))
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		present++
		names := map[string]bool{}
		for c := range found {
			names[c] = true
		}
		for _, size := range paperSizes {
			for _, c := range report.Paper().Categories(ds, size) {
				names[c] = true
			}
		}
		var sorted []string
		for c := range names {
			if len(filter) == 0 || slices.Contains(filter, c) {
				sorted = append(sorted, c)
			}
		}
		sort.Strings(sorted)
		for _, c := range sorted {
			refs = append(refs, Category{Dataset: ds, Category: c, Dir: found[c]})
		}
	}
	if present == 0 {
		return nil, notes, fmt.Errorf("neither %s nor %s is under %s", Datasets[0], Datasets[1], root)
	}
	for _, c := range filter {
		if !slices.ContainsFunc(refs, func(r Category) bool { return r.Category == c }) {
			refs = append(refs, Category{Dataset: paperDatasetOf(c), Category: c})
		}
	}
	return refs, notes, nil
}

// categoryDirs maps the names of the category folders in dsDir (folders
// with train/ and test/) to their paths.
func categoryDirs(dsDir string) (map[string]string, error) {
	entries, err := os.ReadDir(dsDir)
	if err != nil {
		return nil, err
	}
	found := map[string]string{}
	for _, e := range entries {
		dir := filepath.Join(dsDir, e.Name())
		if isDir(dir) && isDir(filepath.Join(dir, datasets.TrainDir)) && isDir(filepath.Join(dir, datasets.TestDir)) {
			found[e.Name()] = dir
		}
	}
	return found, nil
}

// paperDatasetOf is the dataset the paper reports a category under
// (MVTec LOCO AD when it reports none).
func paperDatasetOf(category string) string {
	for _, ds := range Datasets {
		for _, size := range paperSizes {
			if slices.Contains(report.Paper().Categories(ds, size), category) {
				return ds
			}
		}
	}
	return report.LOCODataset
}

func isDir(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.IsDir()
}

// missingModelFiles describes the files of a category's model that are
// absent, grouped by folder relative to the model root, e.g.
// "s_size/teacher/ (teacher.pt)"; empty when none is.
func missingModelFiles(root string, size models.Size, dataset, category string) string {
	var parts, names []string
	dir := ""
	flush := func() {
		if len(names) == 0 {
			return
		}
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			rel = dir
		}
		parts = append(parts, fmt.Sprintf("%s/ (%s)", filepath.ToSlash(rel), strings.Join(names, ", ")))
		names = nil
	}
	for _, f := range (models.Layout{Root: root, Size: size}).MissingFiles(dataset, category) {
		if filepath.Dir(f) != dir {
			flush()
			dir = filepath.Dir(f)
		}
		names = append(names, filepath.Base(f))
	}
	flush()
	return strings.Join(parts, "; ")
}
