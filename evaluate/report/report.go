package report

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/puad-go/puad/evaluate/metrics"
)

// Anomaly classes of MVTec LOCO AD (the test folder names).
const (
	LogicalClass    = "logical_anomalies"
	StructuralClass = "structural_anomalies"
)

// Dataset folder names of the two benchmarks.
const (
	LOCODataset   = "mvtec_loco_anomaly_detection"
	MVTecADataset = "mvtec_anomaly_detection"
)

// PaperExtractor is the feature extractor of the published PUAD values:
// the README reports PUAD with the student's output as features, so only
// runs with this extractor are set beside them.
const PaperExtractor = "student"

//go:embed paper_results.json
var paperResultsJSON []byte

// PaperScores are the published image AUROCs (×100) of one row.
type PaperScores struct {
	EfficientAD float64 `json:"efficient_ad"`
	PUAD        float64 `json:"puad"`
	// Localization is EfficientAD's published localisation result ×100
	// (LocalizationMetric of the dataset), absent when none is recorded.
	// Only values the EfficientAD authors published belong here, never a
	// third party's reproduction.
	Localization *float64 `json:"localization,omitempty"`
	// LocalizationSource names where Localization was found (required
	// with it).
	LocalizationSource string `json:"localization_source,omitempty"`
}

// PaperTable is one published table: a dataset at one EfficientAD size.
type PaperTable struct {
	Categories map[string]PaperScores `json:"categories"`
	Mean       PaperScores            `json:"mean"`
}

// MethodScore is one row of the README's comparison of mean AUROCs on
// MVTec LOCO AD.
type MethodScore struct {
	Method string  `json:"method"`
	AUROC  float64 `json:"auroc"`
}

// PaperResults are the tables of the PUAD README (paper_results.json):
// image AUROC ×100 per dataset, size and category, PUAD using the student's
// output as features.
type PaperResults struct {
	Source string
	// Tables maps dataset folder name → size ("s", "m") → table.
	Tables map[string]map[string]PaperTable
	// Comparison is the README's method comparison on MVTec LOCO AD, in its order.
	Comparison []MethodScore
}

var (
	paperOnce sync.Once
	paper     *PaperResults
)

// Paper returns the published results embedded in the package.
func Paper() *PaperResults {
	paperOnce.Do(func() {
		p, err := ParsePaperResults(paperResultsJSON)
		if err != nil {
			panic("report: embedded paper_results.json: " + err.Error())
		}
		paper = p
	})
	return paper
}

// ParsePaperResults reads the format of paper_results.json: "source", one
// object per dataset folder name ({size: {categories, mean}}) and
// "loco_method_comparison" (an object whose key order is kept).
func ParsePaperResults(data []byte) (*PaperResults, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, err
	}
	p := &PaperResults{Tables: map[string]map[string]PaperTable{}}
	for k, raw := range top {
		switch k {
		case "source":
			if err := json.Unmarshal(raw, &p.Source); err != nil {
				return nil, fmt.Errorf("source: %w", err)
			}
		case "loco_method_comparison":
			dec := json.NewDecoder(bytes.NewReader(raw))
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("%s: %w", k, err)
				}
				var v float64
				if err := dec.Decode(&v); err != nil {
					return nil, fmt.Errorf("%s: %v: %w", k, tok, err)
				}
				p.Comparison = append(p.Comparison, MethodScore{Method: fmt.Sprint(tok), AUROC: v})
			}
		default:
			var t map[string]PaperTable
			if err := json.Unmarshal(raw, &t); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if err := checkSources(t); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			p.Tables[k] = t
		}
	}
	return p, nil
}

// checkSources refuses a published localisation value without its source.
func checkSources(tables map[string]PaperTable) error {
	for size, t := range tables {
		for c, s := range t.Categories {
			if s.Localization != nil && s.LocalizationSource == "" {
				return fmt.Errorf("%s: %s: localization without localization_source", size, c)
			}
		}
		if t.Mean.Localization != nil && t.Mean.LocalizationSource == "" {
			return fmt.Errorf("%s: mean: localization without localization_source", size)
		}
	}
	return nil
}

// Lookup returns the published scores of a category.
func (p *PaperResults) Lookup(dataset, size, category string) (PaperScores, bool) {
	s, ok := p.Tables[dataset][size].Categories[category]
	return s, ok
}

// Categories returns the categories of a published table, sorted (the
// README's order).
func (p *PaperResults) Categories(dataset, size string) []string {
	var cs []string
	for c := range p.Tables[dataset][size].Categories {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	return cs
}

// DatasetTitle is a dataset folder's name as the README writes it.
func DatasetTitle(dataset string) string {
	switch dataset {
	case LOCODataset:
		return "MVTec LOCO AD"
	case MVTecADataset:
		return "MVTec AD"
	}
	return dataset
}

// RunStatus says whether a category could be evaluated.
type RunStatus string

// The states of a CategoryRun.
const (
	StatusOK      RunStatus = "ok"
	StatusMissing RunStatus = "missing" // the category folder or a model file is absent
	StatusFailed  RunStatus = "failed"  // training or evaluation failed
)

// CategoryRun is the outcome of one evaluation of one category at one size
// with one feature extractor, and, when models were trained per seed, one
// seed. AUROCs are in [0, 1], as Evaluate returns them.
type CategoryRun struct {
	DatasetName         string               `json:"dataset_name"`
	Category            string               `json:"category"`
	Size                string               `json:"size"`
	Extractor           string               `json:"feature_extractor"`
	Seed                *int                 `json:"seed,omitempty"`
	Status              RunStatus            `json:"status"`
	Reason              string               `json:"reason,omitempty"`
	EfficientADAUROC    float64              `json:"efficient_ad_auroc"`
	PUADAUROC           float64              `json:"puad_auroc"`
	EfficientADPerClass []metrics.ClassAUROC `json:"efficient_ad_auroc_per_class,omitempty"`
	PUADPerClass        []metrics.ClassAUROC `json:"puad_auroc_per_class,omitempty"`
	// Localization is EfficientAD's localisation result in [0, 1], named
	// by LocalizationMetric; nil without ground truth.
	Localization       *float64 `json:"localization,omitempty"`
	LocalizationMetric string   `json:"localization_metric,omitempty"`
}

// The localisation results the tables report: the AU-PRO (FPR ≤ 0.3) for
// MVTec AD masks, the AU-sPRO at FPR 0.05 (the mean of the logical and
// structural values) for MVTec LOCO AD.
const (
	MetricAUPRO    = "AU-PRO"
	MetricAUSPRO05 = "AU-sPRO@0.05"
)

// Stat is a measured AUROC ×100: the mean over N runs (seeds) and, for
// N > 1, the sample standard deviation (ddof = 1).
type Stat struct {
	Mean float64 `json:"mean"`
	Std  float64 `json:"std,omitempty"`
	N    int     `json:"n"`
}

// Cell is one method's column group in a row: measured, published and
// measured − published, all AUROC ×100.
type Cell struct {
	Measured  *Stat    `json:"measured,omitempty"`
	Published *float64 `json:"published,omitempty"`
	Diff      *float64 `json:"diff,omitempty"`
	// Source names where Published was found, when the published data
	// records it (localisation values).
	Source string `json:"source,omitempty"`
}

// TypeScores are AUROCs ×100 per anomaly type: each type's images against
// the good test images.
type TypeScores struct {
	EfficientADLogical    *Stat `json:"efficient_ad_logical,omitempty"`
	EfficientADStructural *Stat `json:"efficient_ad_structural,omitempty"`
	PUADLogical           *Stat `json:"puad_logical,omitempty"`
	PUADStructural        *Stat `json:"puad_structural,omitempty"`
}

// Row is one category of a table, or its mean row.
type Row struct {
	Category string    `json:"category"`
	Status   RunStatus `json:"status"`
	Reason   string    `json:"reason,omitempty"`
	// Runs is the number of successful runs (seeds) behind the row.
	Runs        int        `json:"runs"`
	EfficientAD Cell       `json:"efficient_ad"`
	PUAD        Cell       `json:"puad"`
	Types       TypeScores `json:"per_anomaly_type"`
	// Localization is EfficientAD's localisation result ×100 (the
	// table's LocalizationMetric); nil when the runs had no ground truth.
	Localization *Cell `json:"localization,omitempty"`
}

// Table is a dataset at one size with one feature extractor.
type Table struct {
	DatasetName string `json:"dataset_name"`
	Size        string `json:"size"`
	Extractor   string `json:"feature_extractor"`
	Rows        []Row  `json:"rows"`
	// Mean averages the categories that ran. When they are exactly the
	// published table's categories its published values are the README's
	// mean row; otherwise the mean of the published values of the same
	// categories. MeanOf says how many categories it covers of how many rows.
	Mean   *Row   `json:"mean,omitempty"`
	MeanOf [2]int `json:"mean_of"`
	// HasTypes is set when some category has logical or structural anomalies.
	HasTypes bool `json:"has_anomaly_types"`
	// LocalizationMetric names the localisation column, set when some
	// category has a localisation result.
	LocalizationMetric string `json:"localization_metric,omitempty"`
}

// Report is the reproduction of the README's tables.
type Report struct {
	Source     string          `json:"published_source"`
	Tables     []Table         `json:"tables"`
	Comparison []ComparisonRow `json:"loco_method_comparison,omitempty"`
	Notes      []string        `json:"notes,omitempty"`
	Runs       []CategoryRun   `json:"runs"`
}

// ComparisonRow is a row of the README's method comparison on MVTec LOCO
// AD, with the measured mean beside this implementation's rows when every
// published category of that table ran.
type ComparisonRow struct {
	Method    string   `json:"method"`
	Published float64  `json:"published"`
	Measured  *float64 `json:"measured,omitempty"`
}

// BuildReport groups runs into tables (by dataset, size and extractor),
// averages the runs of each category over seeds and sets the published
// values beside them. Published PUAD values apply only to the student
// extractor, the one the README reports. Notes are copied into the report.
func BuildReport(runs []CategoryRun, p *PaperResults, notes ...string) *Report {
	if p == nil {
		p = &PaperResults{}
	}
	r := &Report{Source: p.Source, Notes: notes, Runs: runs}
	type key struct{ dataset, size, extractor string }
	groups := map[key]map[string][]CategoryRun{}
	var keys []key
	for _, run := range runs {
		k := key{run.DatasetName, run.Size, run.Extractor}
		if groups[k] == nil {
			groups[k] = map[string][]CategoryRun{}
			keys = append(keys, k)
		}
		groups[k][run.Category] = append(groups[k][run.Category], run)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.dataset != b.dataset {
			return datasetRank(a.dataset) < datasetRank(b.dataset) ||
				datasetRank(a.dataset) == datasetRank(b.dataset) && a.dataset < b.dataset
		}
		if a.size != b.size {
			return sizeRank(a.size) < sizeRank(b.size) || sizeRank(a.size) == sizeRank(b.size) && a.size < b.size
		}
		return a.extractor > b.extractor // student before teacher
	})
	for _, k := range keys {
		r.Tables = append(r.Tables, buildTable(k.dataset, k.size, k.extractor, groups[k], p))
	}
	r.Comparison = buildComparison(r.Tables, p)
	return r
}

func datasetRank(d string) int {
	switch d {
	case LOCODataset:
		return 0
	case MVTecADataset:
		return 1
	}
	return 2
}

func sizeRank(s string) int {
	switch s {
	case "s":
		return 0
	case "m":
		return 1
	}
	return 2
}

// seedValues are the AUROCs ×100 of one seed's runs per category, from
// which the mean row's spread over seeds is computed.
type seedValues struct{ eff, puad map[string]float64 }

func buildTable(dataset, size, extractor string, byCat map[string][]CategoryRun, p *PaperResults) Table {
	t := Table{DatasetName: dataset, Size: size, Extractor: extractor}
	cats := make([]string, 0, len(byCat))
	for c := range byCat {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	perSeed := map[int]*seedValues{}
	var okCats []string
	for _, c := range cats {
		row := buildRow(c, byCat[c], perSeed)
		if row.Types != (TypeScores{}) {
			t.HasTypes = true
		}
		if pub, found := p.Lookup(dataset, size, c); found {
			row.EfficientAD.Published = ptr(pub.EfficientAD)
			if extractor == PaperExtractor {
				row.PUAD.Published = ptr(pub.PUAD)
			}
			if row.Localization != nil {
				row.Localization.Published, row.Localization.Source = pub.Localization, pub.LocalizationSource
			}
		}
		row.EfficientAD.setDiff()
		row.PUAD.setDiff()
		if row.Localization != nil {
			row.Localization.setDiff()
			t.LocalizationMetric = locMetric(byCat[c])
		}
		t.Rows = append(t.Rows, row)
		if row.Status == StatusOK {
			okCats = append(okCats, c)
		}
	}
	var okRows []*Row
	for i := range t.Rows {
		if t.Rows[i].Status == StatusOK {
			okRows = append(okRows, &t.Rows[i])
		}
	}
	t.MeanOf = [2]int{len(okRows), len(t.Rows)}
	if len(okRows) > 0 {
		t.Mean = buildMean(t, okRows, okCats, perSeed, p)
	}
	return t
}

// buildRow is the row of one category from its runs (one per seed),
// without the published values. It records the successful runs' AUROCs in
// perSeed.
func buildRow(category string, runs []CategoryRun, perSeed map[int]*seedValues) Row {
	row := Row{Category: category}
	var ok []CategoryRun
	var reasons []string
	for _, run := range runs {
		if run.Status == StatusOK {
			ok = append(ok, run)
			continue
		}
		reason := string(run.Status)
		if run.Reason != "" {
			reason = run.Reason
		}
		if run.Seed != nil {
			reason = fmt.Sprintf("seed %d: %s", *run.Seed, reason)
		}
		reasons = append(reasons, reason)
		if row.Status == "" || run.Status == StatusFailed {
			row.Status = run.Status
		}
	}
	row.Reason = strings.Join(reasons, "; ")
	row.Runs = len(ok)
	if len(ok) == 0 {
		return row
	}
	row.Status = StatusOK
	var eff, puad []float64
	types := map[string][]float64{}
	for _, run := range ok {
		eff = append(eff, 100*run.EfficientADAUROC)
		puad = append(puad, 100*run.PUADAUROC)
		for _, pc := range run.EfficientADPerClass {
			types["e"+pc.Class] = append(types["e"+pc.Class], 100*pc.AUROC)
		}
		for _, pc := range run.PUADPerClass {
			types["p"+pc.Class] = append(types["p"+pc.Class], 100*pc.AUROC)
		}
		seed := -1
		if run.Seed != nil {
			seed = *run.Seed
		}
		if perSeed[seed] == nil {
			perSeed[seed] = &seedValues{map[string]float64{}, map[string]float64{}}
		}
		perSeed[seed].eff[category] = 100 * run.EfficientADAUROC
		perSeed[seed].puad[category] = 100 * run.PUADAUROC
	}
	row.EfficientAD.Measured = statOf(eff)
	row.PUAD.Measured = statOf(puad)
	row.Types = TypeScores{
		EfficientADLogical: statOf(types["e"+LogicalClass]), EfficientADStructural: statOf(types["e"+StructuralClass]),
		PUADLogical: statOf(types["p"+LogicalClass]), PUADStructural: statOf(types["p"+StructuralClass]),
	}
	row.Localization = localizationCell(ok)
	return row
}

// locMetric is the localisation metric of the first run that has one.
func locMetric(runs []CategoryRun) string {
	for _, run := range runs {
		if run.LocalizationMetric != "" {
			return run.LocalizationMetric
		}
	}
	return ""
}

// localizationCell is the measured localisation ×100 of the runs that have
// one, nil when none has.
func localizationCell(runs []CategoryRun) *Cell {
	var v []float64
	for _, run := range runs {
		if run.Localization != nil {
			v = append(v, 100**run.Localization)
		}
	}
	if len(v) == 0 {
		return nil
	}
	return &Cell{Measured: statOf(v)}
}

// buildMean is the mean row of table t over the rows of the categories
// that ran (okRows, of the categories okCats).
func buildMean(t Table, okRows []*Row, okCats []string, perSeed map[int]*seedValues, p *PaperResults) *Row {
	mean := &Row{Category: "mean", Status: StatusOK}
	mean.Runs = okRows[0].Runs
	for _, r := range okRows {
		mean.Runs = min(mean.Runs, r.Runs)
	}
	pick := func(f func(*Row) *Stat) []float64 {
		var v []float64
		for _, r := range okRows {
			if s := f(r); s != nil {
				v = append(v, s.Mean)
			}
		}
		return v
	}
	mean.EfficientAD.Measured = meanStat(pick(func(r *Row) *Stat { return r.EfficientAD.Measured }))
	mean.PUAD.Measured = meanStat(pick(func(r *Row) *Stat { return r.PUAD.Measured }))
	if std, n := seedSpread(perSeed, okCats, func(s *seedValues) map[string]float64 { return s.eff }); n > 1 {
		mean.EfficientAD.Measured.Std, mean.EfficientAD.Measured.N = std, n
	}
	if std, n := seedSpread(perSeed, okCats, func(s *seedValues) map[string]float64 { return s.puad }); n > 1 {
		mean.PUAD.Measured.Std, mean.PUAD.Measured.N = std, n
	}
	mean.Types = TypeScores{
		EfficientADLogical:    meanStat(pick(func(r *Row) *Stat { return r.Types.EfficientADLogical })),
		EfficientADStructural: meanStat(pick(func(r *Row) *Stat { return r.Types.EfficientADStructural })),
		PUADLogical:           meanStat(pick(func(r *Row) *Stat { return r.Types.PUADLogical })),
		PUADStructural:        meanStat(pick(func(r *Row) *Stat { return r.Types.PUADStructural })),
	}
	// Published mean: the README's when exactly its categories ran, else the
	// mean of the published values of the categories that ran (if all have one).
	if pt, found := p.Tables[t.DatasetName][t.Size]; found && slices.Equal(okCats, p.Categories(t.DatasetName, t.Size)) {
		mean.EfficientAD.Published = ptr(pt.Mean.EfficientAD)
		if t.Extractor == PaperExtractor {
			mean.PUAD.Published = ptr(pt.Mean.PUAD)
		}
	} else {
		mean.EfficientAD.Published = meanPublished(okRows, func(r *Row) *float64 { return r.EfficientAD.Published })
		mean.PUAD.Published = meanPublished(okRows, func(r *Row) *float64 { return r.PUAD.Published })
	}
	mean.EfficientAD.setDiff()
	mean.PUAD.setDiff()
	mean.Localization = meanLocalization(okRows, t.DatasetName, t.Size, okCats, p)
	return mean
}

// meanLocalization is the mean row's localisation cell: the mean of the
// measured rows, beside the published mean when exactly the published
// categories ran, else the mean of the rows' published values; nil when no
// row has one.
func meanLocalization(okRows []*Row, dataset, size string, okCats []string, p *PaperResults) *Cell {
	var v []float64
	var withLoc []*Row
	for _, r := range okRows {
		if r.Localization != nil && r.Localization.Measured != nil {
			v = append(v, r.Localization.Measured.Mean)
			withLoc = append(withLoc, r)
		}
	}
	if len(v) == 0 {
		return nil
	}
	c := &Cell{Measured: meanStat(v)}
	if len(withLoc) == len(okRows) {
		if pt, found := p.Tables[dataset][size]; found && slices.Equal(okCats, p.Categories(dataset, size)) {
			c.Published, c.Source = pt.Mean.Localization, pt.Mean.LocalizationSource
		} else {
			c.Published = meanPublished(withLoc, func(r *Row) *float64 { return r.Localization.Published })
		}
	}
	c.setDiff()
	return c
}

// seedSpread is the sample standard deviation over seeds of the mean over
// cats of the values vals picks, and the number of seeds; (0, 0) when some
// seed lacks one of cats.
func seedSpread(perSeed map[int]*seedValues, cats []string, vals func(*seedValues) map[string]float64) (float64, int) {
	var means []float64
	for _, sv := range perSeed {
		m := vals(sv)
		var sum float64
		for _, c := range cats {
			v, found := m[c]
			if !found {
				return 0, 0
			}
			sum += v
		}
		means = append(means, sum/float64(len(cats)))
	}
	if s := statOf(means); s != nil {
		return s.Std, s.N
	}
	return 0, 0
}

func buildComparison(tables []Table, p *PaperResults) []ComparisonRow {
	if len(p.Comparison) == 0 {
		return nil
	}
	measured := map[string]*float64{}
	for _, t := range tables {
		if t.DatasetName != LOCODataset || t.Mean == nil {
			continue
		}
		if !slices.Equal(okCategories(t), p.Categories(LOCODataset, t.Size)) {
			continue
		}
		S := strings.ToUpper(t.Size)
		if t.Extractor == PaperExtractor {
			measured["EfficientAD ("+S+", PUAD implementation)"] = ptr(t.Mean.EfficientAD.Measured.Mean)
			measured["PUAD ("+S+")"] = ptr(t.Mean.PUAD.Measured.Mean)
		}
	}
	if len(measured) == 0 {
		return nil
	}
	var rows []ComparisonRow
	for _, m := range p.Comparison {
		rows = append(rows, ComparisonRow{Method: m.Method, Published: m.AUROC, Measured: measured[m.Method]})
	}
	return rows
}

func okCategories(t Table) []string {
	var cs []string
	for _, r := range t.Rows {
		if r.Status == StatusOK {
			cs = append(cs, r.Category)
		}
	}
	return cs
}

func ptr(v float64) *float64 { return &v }

func (c *Cell) setDiff() {
	if c.Measured != nil && c.Published != nil {
		c.Diff = ptr(c.Measured.Mean - *c.Published)
	}
}

// statOf is the mean and sample standard deviation of v (nil when empty).
func statOf(v []float64) *Stat {
	if len(v) == 0 {
		return nil
	}
	var sum float64
	for _, x := range v {
		sum += x
	}
	s := &Stat{Mean: sum / float64(len(v)), N: len(v)}
	if len(v) > 1 {
		var ss float64
		for _, x := range v {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.Std = math.Sqrt(ss / float64(len(v)-1))
	}
	return s
}

// meanStat is the mean of category means, without a spread (nil when empty).
func meanStat(v []float64) *Stat {
	s := statOf(v)
	if s != nil {
		s.Std, s.N = 0, 1
	}
	return s
}

func meanPublished(rows []*Row, f func(*Row) *float64) *float64 {
	var sum float64
	for _, r := range rows {
		v := f(r)
		if v == nil {
			return nil
		}
		sum += *v
	}
	return ptr(sum / float64(len(rows)))
}

// Formatting helpers: AUROC ×100 with two decimals, as the README.

func fmtStat(s *Stat) string {
	if s == nil {
		return "-"
	}
	if s.N > 1 {
		return fmt.Sprintf("%.2f ± %.2f", s.Mean, s.Std)
	}
	return fmt.Sprintf("%.2f", s.Mean)
}

func fmtPub(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *v)
}

func fmtDiff(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%+.2f", *v)
}

// fmtGain is PUAD − EfficientAD of two measured stats.
func fmtGain(eff, puad *Stat) string {
	if eff == nil || puad == nil {
		return "-"
	}
	return fmt.Sprintf("%+.2f", puad.Mean-eff.Mean)
}

// Title is the table's heading, in the README's words.
func (t Table) Title() string {
	S := strings.ToUpper(t.Size)
	return fmt.Sprintf("%s: AUROC ×100 of EfficientAD (%s) and PUAD (EfficientAD (%s) + %s output) per category",
		DatasetTitle(t.DatasetName), S, S, t.Extractor)
}

// TypesTitle is the heading of the per-anomaly-type table.
func (t Table) TypesTitle() string {
	return fmt.Sprintf("%s (%s, %s output): AUROC ×100 per anomaly type, each against the good test images",
		DatasetTitle(t.DatasetName), strings.ToUpper(t.Size), t.Extractor)
}

func (t Table) header() []string {
	S := strings.ToUpper(t.Size)
	h := []string{"category", "EfficientAD (" + S + ")", "paper", "diff",
		"PUAD (" + S + " + " + t.Extractor + ")", "paper", "diff"}
	if t.LocalizationMetric != "" {
		h = append(h, "EfficientAD "+t.LocalizationMetric, "paper", "diff")
	}
	return append(h, "note")
}

// localizationNote explains the localisation column; "" without one.
func (t Table) localizationNote() string {
	if t.LocalizationMetric == "" {
		return ""
	}
	n := "EfficientAD " + t.LocalizationMetric + ": localisation ×100 of EfficientAD's anomaly maps at the images' sizes; " +
		"its paper column holds EfficientAD's published values where recorded"
	for _, src := range t.localizationSources() {
		n += "; " + src
	}
	return n
}

// localizationSources lists the sources of the published localisation
// values in t, each once, as "<row>: <source>" (rows sharing a source
// joined).
func (t Table) localizationSources() []string {
	rows := map[string][]string{}
	var order []string
	add := func(label string, r *Row) {
		if r == nil || r.Localization == nil || r.Localization.Published == nil || r.Localization.Source == "" {
			return
		}
		src := r.Localization.Source
		if _, seen := rows[src]; !seen {
			order = append(order, src)
		}
		rows[src] = append(rows[src], label)
	}
	for i := range t.Rows {
		add(t.Rows[i].Category, &t.Rows[i])
	}
	add("mean", t.Mean)
	var out []string
	for _, src := range order {
		out = append(out, strings.Join(rows[src], ", ")+" from "+src)
	}
	return out
}

func (t Table) meanLabel() string {
	if t.MeanOf[0] == t.MeanOf[1] {
		return "mean"
	}
	return fmt.Sprintf("mean (%d of %d)", t.MeanOf[0], t.MeanOf[1])
}

func (t Table) cells() [][]string {
	var out [][]string
	line := func(label string, r *Row) []string {
		var out []string
		if r.Status != StatusOK {
			out = []string{label, string(r.Status), fmtPub(r.EfficientAD.Published), "-",
				string(r.Status), fmtPub(r.PUAD.Published), "-"}
		} else {
			out = []string{label, fmtStat(r.EfficientAD.Measured), fmtPub(r.EfficientAD.Published), fmtDiff(r.EfficientAD.Diff),
				fmtStat(r.PUAD.Measured), fmtPub(r.PUAD.Published), fmtDiff(r.PUAD.Diff)}
		}
		if t.LocalizationMetric != "" {
			loc := r.Localization
			if loc == nil {
				loc = &Cell{}
			}
			out = append(out, fmtStat(loc.Measured), fmtPub(loc.Published), fmtDiff(loc.Diff))
		}
		return append(out, r.Reason)
	}
	for i := range t.Rows {
		out = append(out, line(t.Rows[i].Category, &t.Rows[i]))
	}
	if t.Mean != nil {
		out = append(out, line(t.meanLabel(), t.Mean))
	}
	return out
}

func (t Table) typeHeader() []string {
	return []string{"category", "EfficientAD logical", "PUAD logical", "gain",
		"EfficientAD structural", "PUAD structural", "gain"}
}

func (t Table) typeCells() [][]string {
	var out [][]string
	line := func(label string, r *Row) []string {
		ty := r.Types
		return []string{label, fmtStat(ty.EfficientADLogical), fmtStat(ty.PUADLogical), fmtGain(ty.EfficientADLogical, ty.PUADLogical),
			fmtStat(ty.EfficientADStructural), fmtStat(ty.PUADStructural), fmtGain(ty.EfficientADStructural, ty.PUADStructural)}
	}
	for i := range t.Rows {
		r := &t.Rows[i]
		if r.Status == StatusOK && r.Types != (TypeScores{}) {
			out = append(out, line(r.Category, r))
		}
	}
	if t.Mean != nil && len(out) > 1 {
		out = append(out, line(t.meanLabel(), t.Mean))
	}
	return out
}

// WriteText writes the tables as aligned plain text.
func (r *Report) WriteText(w io.Writer) error {
	var b bytes.Buffer
	tw := func(header []string, rows [][]string) {
		// Every line has every cell, so that tabwriter aligns whole columns;
		// trailing blanks of empty last cells are cut afterwards.
		var buf bytes.Buffer
		t := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
		fmt.Fprintln(t, strings.Join(header, "\t"))
		for _, row := range rows {
			fmt.Fprintln(t, strings.Join(row, "\t"))
		}
		t.Flush()
		for _, ln := range strings.SplitAfter(buf.String(), "\n") {
			if ln != "" {
				b.WriteString(strings.TrimRight(ln, " \n") + "\n")
			}
		}
	}
	for i, t := range r.Tables {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(t.Title() + "\n")
		b.WriteString("(paper: the PUAD README; diff: measured − paper; ± is the standard deviation over seeds)\n")
		if n := t.localizationNote(); n != "" {
			b.WriteString("(" + n + ")\n")
		}
		tw(t.header(), t.cells())
		if tc := t.typeCells(); t.HasTypes && len(tc) > 0 {
			b.WriteString("\n" + t.TypesTitle() + "\n")
			b.WriteString("(gain: PUAD − EfficientAD; the README publishes no per-type values)\n")
			tw(t.typeHeader(), tc)
		}
	}
	if len(r.Comparison) > 0 {
		b.WriteString("\nMVTec LOCO AD: mean AUROC ×100 compared with other methods (published; measured where this run covers the table)\n")
		var rows [][]string
		for _, c := range r.Comparison {
			rows = append(rows, []string{c.Method, fmt.Sprintf("%.1f", c.Published), fmtPub(c.Measured)})
		}
		tw([]string{"method", "paper", "measured"}, rows)
	}
	for _, n := range r.Notes {
		b.WriteString("\nnote: " + n)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

// WriteMarkdown writes the tables as Markdown.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	md := func(header []string, rows [][]string) {
		esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
		cells := func(row []string) string {
			out := make([]string, len(header))
			for i := range out {
				if i < len(row) {
					out[i] = esc(row[i])
				}
			}
			return "| " + strings.Join(out, " | ") + " |\n"
		}
		b.WriteString(cells(header))
		seps := make([]string, len(header))
		for i := range seps {
			seps[i] = "---:"
			if i == 0 || header[i] == "note" || header[i] == "method" {
				seps[i] = "---"
			}
		}
		b.WriteString("|" + strings.Join(seps, "|") + "|\n")
		for _, row := range rows {
			b.WriteString(cells(row))
		}
	}
	b.WriteString("# PUAD reproduction\n\n")
	b.WriteString("Image AUROC ×100. *paper*: the PUAD README; *diff*: measured − paper; ± is the standard deviation over seeds.\n")
	for _, t := range r.Tables {
		b.WriteString("\n## " + t.Title() + "\n\n")
		if n := t.localizationNote(); n != "" {
			b.WriteString(n + ".\n\n")
		}
		md(t.header(), t.cells())
		if tc := t.typeCells(); t.HasTypes && len(tc) > 0 {
			b.WriteString("\n### " + t.TypesTitle() + "\n\n")
			b.WriteString("*gain*: PUAD − EfficientAD. The README publishes no per-type values.\n\n")
			md(t.typeHeader(), tc)
		}
	}
	if len(r.Comparison) > 0 {
		b.WriteString("\n## MVTec LOCO AD: mean AUROC ×100 compared with other methods\n\n")
		var rows [][]string
		for _, c := range r.Comparison {
			rows = append(rows, []string{c.Method, fmt.Sprintf("%.1f", c.Published), fmtPub(c.Measured)})
		}
		md([]string{"method", "paper", "measured"}, rows)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// CSVHeader is the first line WriteCSV writes.
var CSVHeader = []string{
	"dataset", "size", "feature_extractor", "category", "status", "runs",
	"efficient_ad", "efficient_ad_std", "efficient_ad_paper", "efficient_ad_diff",
	"puad", "puad_std", "puad_paper", "puad_diff",
	"efficient_ad_logical", "puad_logical", "efficient_ad_structural", "puad_structural", "reason",
}

// CSVLocalizationHeader are the columns WriteCSV appends to CSVHeader
// when some table has a localisation column.
var CSVLocalizationHeader = []string{
	"localization_metric", "efficient_ad_localization", "efficient_ad_localization_paper", "efficient_ad_localization_diff",
}

// WriteCSV writes one line per category and one per mean row (category
// "mean"), AUROC ×100 at full precision; empty fields are unknown. When
// some table has a localisation column, the CSVLocalizationHeader columns
// follow.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	withLoc := false
	for _, t := range r.Tables {
		withLoc = withLoc || t.LocalizationMetric != ""
	}
	header := CSVHeader
	if withLoc {
		header = append(append([]string(nil), CSVHeader...), CSVLocalizationHeader...)
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	num := func(v *float64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(*v, 'f', -1, 64)
	}
	mean := func(s *Stat) string {
		if s == nil {
			return ""
		}
		return num(&s.Mean)
	}
	std := func(s *Stat) string {
		if s == nil || s.N < 2 {
			return ""
		}
		return num(&s.Std)
	}
	for _, t := range r.Tables {
		rows := t.Rows
		if t.Mean != nil {
			rows = append(append([]Row(nil), rows...), *t.Mean)
		}
		for _, row := range rows {
			ty := row.Types
			rec := []string{t.DatasetName, t.Size, t.Extractor, row.Category, string(row.Status), strconv.Itoa(row.Runs),
				mean(row.EfficientAD.Measured), std(row.EfficientAD.Measured), num(row.EfficientAD.Published), num(row.EfficientAD.Diff),
				mean(row.PUAD.Measured), std(row.PUAD.Measured), num(row.PUAD.Published), num(row.PUAD.Diff),
				mean(ty.EfficientADLogical), mean(ty.PUADLogical), mean(ty.EfficientADStructural), mean(ty.PUADStructural), row.Reason}
			if withLoc {
				loc := row.Localization
				if loc == nil {
					loc = &Cell{}
				}
				rec = append(rec, t.LocalizationMetric, mean(loc.Measured), num(loc.Published), num(loc.Diff))
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// JSON returns the report as indented JSON.
func (r *Report) JSON() ([]byte, error) {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
