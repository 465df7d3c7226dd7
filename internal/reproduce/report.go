package reproduce

import (
	"bytes"
	"io"
	"path/filepath"

	"github.com/puad-go/puad/evaluate/report"
	"github.com/puad-go/puad/internal/atomicfile"
)

// ReportFiles are the paths of the report files Run writes into dir:
// results.json, results.csv and results.md.
func ReportFiles(dir string) []string {
	return []string{filepath.Join(dir, "results.json"), filepath.Join(dir, "results.csv"), filepath.Join(dir, "results.md")}
}

// writeReport writes the files of ReportFiles, each atomically.
func writeReport(dir string, rep *report.Report) error {
	writers := []func(io.Writer) error{
		func(w io.Writer) error {
			data, err := rep.JSON()
			if err != nil {
				return err
			}
			_, err = w.Write(data)
			return err
		},
		rep.WriteCSV,
		rep.WriteMarkdown,
	}
	for i, path := range ReportFiles(dir) {
		var b bytes.Buffer
		if err := writers[i](&b); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(path, b.Bytes(), atomicfile.DefaultPerm); err != nil {
			return err
		}
	}
	return nil
}
