package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/evaluate/metrics"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestPaperResults(t *testing.T) {
	p := Paper()
	if got := p.Categories(LOCODataset, "s"); len(got) != 5 || got[0] != "breakfast_box" || got[4] != "splicing_connectors" {
		t.Errorf("LOCO categories %v", got)
	}
	if got := p.Categories(MVTecADataset, "m"); len(got) != 15 {
		t.Errorf("MVTec AD categories %v", got)
	}
	if s, ok := p.Lookup(LOCODataset, "s", "screw_bag"); !ok || s.EfficientAD != 71.28 || s.PUAD != 84.36 {
		t.Errorf("screw_bag (S) = %+v %v", s, ok)
	}
	if len(p.Comparison) != 10 || p.Comparison[0].Method != "GCAD" || p.Comparison[9].Method != "PUAD (M)" || p.Comparison[9].AUROC != 94.4 {
		t.Errorf("comparison %+v", p.Comparison)
	}
	// The stated means agree with the category values to the README's rounding.
	for ds, sizes := range p.Tables {
		for size, tab := range sizes {
			var e, u float64
			for _, c := range tab.Categories {
				e += c.EfficientAD
				u += c.PUAD
			}
			n := float64(len(tab.Categories))
			if math.Abs(e/n-tab.Mean.EfficientAD) > 0.006 || math.Abs(u/n-tab.Mean.PUAD) > 0.006 {
				t.Errorf("%s %s: means %.3f %.3f, stated %v", ds, size, e/n, u/n, tab.Mean)
			}
		}
	}
}

func seed(k int) *int { return &k }

// locoRun is an ok run whose AUROCs are the published ones shifted by d (×100).
func locoRun(cat, size string, d float64, s *int) CategoryRun {
	pub, _ := Paper().Lookup(LOCODataset, size, cat)
	return CategoryRun{
		DatasetName: LOCODataset, Category: cat, Size: size, Extractor: "student", Seed: s, Status: StatusOK,
		EfficientADAUROC: (pub.EfficientAD + d) / 100, PUADAUROC: (pub.PUAD + d) / 100,
		EfficientADPerClass: []metrics.ClassAUROC{{Class: LogicalClass, AUROC: 0.70}, {Class: StructuralClass, AUROC: 0.90}},
		PUADPerClass:        []metrics.ClassAUROC{{Class: LogicalClass, AUROC: 0.80}, {Class: StructuralClass, AUROC: 0.89}},
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestBuildReportFullTable(t *testing.T) {
	var runs []CategoryRun
	for _, c := range Paper().Categories(LOCODataset, "s") {
		runs = append(runs, locoRun(c, "s", 0, nil))
	}
	r := BuildReport(runs, Paper())
	if len(r.Tables) != 1 {
		t.Fatalf("%d tables", len(r.Tables))
	}
	tab := r.Tables[0]
	if len(tab.Rows) != 5 || tab.Mean == nil || tab.MeanOf != [2]int{5, 5} || !tab.HasTypes {
		t.Fatalf("table %+v", tab)
	}
	for _, row := range tab.Rows {
		if !near(*row.EfficientAD.Diff, 0) || !near(*row.PUAD.Diff, 0) {
			t.Errorf("%s: diffs %v %v", row.Category, *row.EfficientAD.Diff, *row.PUAD.Diff)
		}
	}
	// Exactly the published categories: the published mean is the README's.
	if *tab.Mean.EfficientAD.Published != 89.22 || *tab.Mean.PUAD.Published != 93.18 {
		t.Errorf("published means %v %v", *tab.Mean.EfficientAD.Published, *tab.Mean.PUAD.Published)
	}
	if !near(tab.Mean.EfficientAD.Measured.Mean, 89.22) || !near(tab.Mean.PUAD.Measured.Mean, 93.178) {
		t.Errorf("measured means %+v %+v", tab.Mean.EfficientAD.Measured, tab.Mean.PUAD.Measured)
	}
	if !near(tab.Mean.Types.PUADLogical.Mean, 80) || !near(tab.Mean.Types.EfficientADStructural.Mean, 90) {
		t.Errorf("type means %+v", tab.Mean.Types)
	}
	var puadS *ComparisonRow
	for i := range r.Comparison {
		if r.Comparison[i].Method == "PUAD (S)" {
			puadS = &r.Comparison[i]
		} else if r.Comparison[i].Measured != nil && !strings.Contains(r.Comparison[i].Method, "(S, PUAD") {
			t.Errorf("%s has a measured value", r.Comparison[i].Method)
		}
	}
	if puadS == nil || puadS.Measured == nil || !near(*puadS.Measured, 93.178) {
		t.Errorf("comparison row PUAD (S): %+v", puadS)
	}
}

func TestBuildReportMissingSeedsAndExtractor(t *testing.T) {
	runs := []CategoryRun{
		locoRun("breakfast_box", "s", -1, seed(0)),
		locoRun("breakfast_box", "s", 0, seed(1)),
		locoRun("breakfast_box", "s", 1, seed(2)),
		locoRun("pushpins", "s", 2, seed(0)),
		locoRun("pushpins", "s", 2, seed(1)),
		locoRun("pushpins", "s", 2, seed(2)),
		{DatasetName: LOCODataset, Category: "juice_bottle", Size: "s", Extractor: "student", Seed: seed(0), Status: StatusMissing, Reason: "no student.pt"},
		{DatasetName: MVTecADataset, Category: "bottle", Size: "m", Extractor: "teacher", Status: StatusOK, EfficientADAUROC: 0.99, PUADAUROC: 0.98},
	}
	r := BuildReport(runs, Paper(), "a note")
	if len(r.Tables) != 2 || r.Tables[0].DatasetName != LOCODataset || r.Tables[1].DatasetName != MVTecADataset {
		t.Fatalf("tables %+v", r.Tables)
	}
	loco := r.Tables[0]
	bb := loco.Rows[0]
	if bb.Category != "breakfast_box" || bb.Runs != 3 || bb.EfficientAD.Measured.N != 3 ||
		!near(bb.EfficientAD.Measured.Mean, 83.75) || !near(bb.EfficientAD.Measured.Std, 1) {
		t.Errorf("breakfast_box: %+v %+v", bb, bb.EfficientAD.Measured)
	}
	jb := loco.Rows[1]
	if jb.Status != StatusMissing || !strings.Contains(jb.Reason, "seed 0: no student.pt") || jb.EfficientAD.Measured != nil || *jb.EfficientAD.Published != 97.90 {
		t.Errorf("juice_bottle: %+v", jb)
	}
	// Mean of 2 of 3: the published mean of the same two categories.
	m := loco.Mean
	if loco.MeanOf != [2]int{2, 3} || !near(*m.EfficientAD.Published, (83.75+96.84)/2) || !near(*m.EfficientAD.Diff, 1) {
		t.Errorf("mean %+v %+v", loco.MeanOf, m.EfficientAD)
	}
	// Per-seed means: (−1+2)/2, (0+2)/2, (1+2)/2 above the published → std 0.5.
	if m.EfficientAD.Measured.N != 3 || !near(m.EfficientAD.Measured.Std, 0.5) {
		t.Errorf("mean spread %+v", m.EfficientAD.Measured)
	}
	if len(r.Comparison) != 0 {
		t.Errorf("comparison without a full LOCO table: %+v", r.Comparison)
	}
	ad := r.Tables[1]
	if ad.Extractor != "teacher" || ad.Rows[0].PUAD.Published != nil || *ad.Rows[0].EfficientAD.Published != 100 || ad.HasTypes {
		t.Errorf("teacher table %+v", ad.Rows[0])
	}

	// CSV: one line per row and mean row, numbers that parse back.
	var b bytes.Buffer
	if err := r.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+4+2 || strings.Join(recs[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("csv: %q", recs)
	}
	if rec := recs[1]; rec[3] != "breakfast_box" || rec[5] != "3" || rec[6] != "83.75" || rec[7] != "1" {
		t.Errorf("csv row %q", rec)
	}
	if rec := recs[2]; rec[4] != "missing" || rec[6] != "" || rec[18] != "seed 0: no student.pt" {
		t.Errorf("csv missing row %q", rec)
	}
	// JSON round trip.
	data, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Runs) != len(runs) || back.Tables[0].Mean.EfficientAD.Measured.Std != m.EfficientAD.Measured.Std {
		t.Errorf("JSON round trip lost data")
	}
}

// TestReportGolden pins the text and Markdown layout (go test -run Golden -update rewrites them).
func TestReportGolden(t *testing.T) {
	runs := []CategoryRun{
		locoRun("breakfast_box", "s", -0.5, nil),
		locoRun("screw_bag", "s", 1.25, nil),
		{DatasetName: LOCODataset, Category: "pushpins", Size: "s", Extractor: "student", Status: StatusMissing, Reason: "category folder not found"},
		{DatasetName: MVTecADataset, Category: "bottle", Size: "s", Extractor: "student", Status: StatusFailed, Reason: "validation statistics: empty"},
		{DatasetName: MVTecADataset, Category: "cable", Size: "s", Extractor: "student", Status: StatusOK, EfficientADAUROC: 0.95, PUADAUROC: 0.9575,
			PUADPerClass: []metrics.ClassAUROC{{Class: "bent_wire", AUROC: 1}}},
	}
	r := BuildReport(runs, Paper(), "a note")
	for _, f := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"report_golden.txt", func(b *bytes.Buffer) error { return r.WriteText(b) }},
		{"report_golden.md", func(b *bytes.Buffer) error { return r.WriteMarkdown(b) }},
	} {
		var b bytes.Buffer
		if err := f.write(&b); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", f.name)
		if *updateGolden {
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if b.String() != string(want) {
			t.Errorf("%s differs (go test -run Golden -update rewrites it):\n%s", f.name, b.String())
		}
	}
}

func loc(v float64) *float64 { return &v }

// Runs with localisation results add the localisation column (and its CSV
// columns); the published column stays empty where no value is recorded.
func TestReportLocalization(t *testing.T) {
	bb := locoRun("breakfast_box", "s", 0, nil)
	bb.Localization, bb.LocalizationMetric = loc(0.5), MetricAUSPRO05
	sb := locoRun("screw_bag", "s", 0, nil)
	sb.Localization, sb.LocalizationMetric = loc(0.625), MetricAUSPRO05
	pp := locoRun("pushpins", "s", 0, nil) // no ground truth
	cable := CategoryRun{DatasetName: MVTecADataset, Category: "cable", Size: "s", Extractor: "student", Status: StatusOK,
		EfficientADAUROC: 0.95, PUADAUROC: 0.9575, Localization: loc(0.9), LocalizationMetric: MetricAUPRO}
	r := BuildReport([]CategoryRun{bb, sb, pp, cable}, Paper())
	if len(r.Tables) != 2 || r.Tables[0].LocalizationMetric != MetricAUSPRO05 || r.Tables[1].LocalizationMetric != MetricAUPRO {
		t.Fatalf("tables %+v", r.Tables)
	}
	lt := r.Tables[0]
	if m := lt.Mean.Localization; m == nil || !near(m.Measured.Mean, 56.25) || m.Published != nil || m.Diff != nil {
		t.Errorf("LOCO localisation mean %+v", lt.Mean.Localization)
	}
	if lt.Rows[1].Category != "pushpins" || lt.Rows[1].Localization != nil {
		t.Errorf("pushpins %+v", lt.Rows[1])
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"EfficientAD AU-sPRO@0.05", "EfficientAD AU-PRO", "50.00", "62.50", "90.00"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text lacks %q:\n%s", s, text.String())
		}
	}
	var b bytes.Buffer
	if err := r.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	n := len(CSVHeader)
	if len(recs[0]) != n+len(CSVLocalizationHeader) || recs[1][n] != MetricAUSPRO05 || recs[1][n+1] != "50" || recs[1][n+2] != "" {
		t.Errorf("csv %q", recs[:2])
	}
}

// The published localisation values: EfficientAD-M's mean AU-PRO on MVTec
// AD, with its source; no per-category values and nothing for size S.
func TestPaperLocalization(t *testing.T) {
	p := Paper()
	m := p.Tables[MVTecADataset]["m"].Mean
	if m.Localization == nil || *m.Localization != 93.5 || !strings.Contains(m.LocalizationSource, "arXiv 2303.14535") {
		t.Errorf("MVTec AD M mean: %+v", m)
	}
	for dataset, sizes := range p.Tables {
		for size, tab := range sizes {
			for c, s := range tab.Categories {
				if s.Localization != nil {
					t.Errorf("%s %s %s: unexpected published localisation %v", dataset, size, c, *s.Localization)
				}
			}
			if tab.Mean.Localization != nil && (dataset != MVTecADataset || size != "m") {
				t.Errorf("%s %s: unexpected published localisation mean", dataset, size)
			}
		}
	}
	for _, bad := range []string{
		`{"d": {"m": {"categories": {"a": {"efficient_ad": 1, "puad": 2, "localization": 3}}, "mean": {"efficient_ad": 1, "puad": 2}}}}`,
		`{"d": {"m": {"categories": {}, "mean": {"efficient_ad": 1, "puad": 2, "localization": 3}}}}`,
	} {
		if _, err := ParsePaperResults([]byte(bad)); err == nil || !strings.Contains(err.Error(), "localization_source") {
			t.Errorf("a localisation value without its source: %v", err)
		}
	}
}

// mvtecLocRuns are runs of every MVTec AD category at size, each with the
// AU-PRO loc.
func mvtecLocRuns(size string, loc float64) []CategoryRun {
	var runs []CategoryRun
	for _, c := range Paper().Categories(MVTecADataset, size) {
		runs = append(runs, CategoryRun{DatasetName: MVTecADataset, Category: c, Size: size, Extractor: "student", Status: StatusOK,
			EfficientADAUROC: 0.99, PUADAUROC: 0.98, Localization: &loc, LocalizationMetric: MetricAUPRO})
	}
	return runs
}

// With every MVTec AD category at size M, the mean row's AU-PRO stands
// beside the published mean with the difference, and the table names the
// source; with a category missing, or at size S, the paper column stays
// empty.
func TestReportPublishedLocalizationMean(t *testing.T) {
	r := BuildReport(mvtecLocRuns("m", 0.9), Paper())
	mean := r.Tables[0].Mean.Localization
	if mean == nil || mean.Published == nil || *mean.Published != 93.5 || mean.Diff == nil || !near(*mean.Diff, -3.5) || mean.Source == "" {
		t.Fatalf("mean %+v", mean)
	}
	if row := r.Tables[0].Rows[0].Localization; row.Published != nil || row.Diff != nil || row.Source != "" {
		t.Errorf("a category row got a published value: %+v", row)
	}
	var text, md bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{text.String(), md.String()} {
		for _, s := range []string{"93.50", "-3.50", "mean from the EfficientAD paper", "https://beta.hyper.ai/en/papers/2303.14535"} {
			if !strings.Contains(out, s) {
				t.Errorf("output lacks %q:\n%s", s, out)
			}
		}
	}
	var b bytes.Buffer
	if err := r.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	last, n := recs[len(recs)-1], len(CSVHeader)
	if last[n+2] != "93.5" || last[n+3] != "-3.5" {
		t.Errorf("csv mean row %q", last)
	}

	partial := mvtecLocRuns("m", 0.9)[1:]
	s := mvtecLocRuns("s", 0.9)
	for name, runs := range map[string][]CategoryRun{"14 of 15": partial, "size S": s} {
		r := BuildReport(runs, Paper())
		if m := r.Tables[0].Mean.Localization; m.Published != nil || m.Diff != nil || m.Source != "" {
			t.Errorf("%s: mean %+v", name, m)
		}
		var text bytes.Buffer
		if err := r.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(text.String(), "2303.14535") {
			t.Errorf("%s: the text names a source of no value shown", name)
		}
	}
}
