package dataset

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mloop/mloop/internal/realdata"
)

// expectationRows are 100 rows: id 1..100; score 0.5..99.5 (mean 50);
// cat a×60, b×30, c×10; code A-000..A-099 with "bad" at i=10,20,30; opt
// null every tenth row.
func expectationRows() [][]string {
	rows := [][]string{{"id", "score", "cat", "code", "opt"}}
	for i := range 100 {
		cat := "a"
		switch {
		case i >= 90:
			cat = "c"
		case i >= 60:
			cat = "b"
		}
		code := fmt.Sprintf("A-%03d", i)
		if i == 10 || i == 20 || i == 30 {
			code = "bad"
		}
		opt := "x"
		if i%10 == 0 {
			opt = ""
		}
		rows = append(rows, []string{itoa(int64(i + 1)), fmt.Sprintf("%g", float64(i)+0.5), cat, code, opt})
	}
	return rows
}

// writeCSV writes rows to a CSV file in dir and returns its path.
func writeCSV(t *testing.T, dir, name string, rows [][]string) string {
	t.Helper()
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r, ",") + "\n")
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustValidate(t *testing.T, s *Schema, target ValidationTarget) *Report {
	t.Helper()
	r, err := Validate(context.Background(), s, target)
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	return r
}

type expectCase struct {
	name       string
	e          Expectation
	success    bool
	observed   float64 // NaN: not checked
	unexpected int64
	examples   []string
}

func expectationCases() []expectCase {
	nan := math.NaN()
	return []expectCase{
		{"not_null fails", Expectation{Kind: ExpectNotNull, Column: "opt"}, false, 0.9, 10, nil},
		{"not_null mostly", Expectation{Kind: ExpectNotNull, Column: "opt", Mostly: 0.9}, true, 0.9, 10, nil},
		{"not_null full column", Expectation{Kind: ExpectNotNull, Column: "id"}, true, 1, 0, nil},
		{"between inside", Expectation{Kind: ExpectBetween, Column: "score", Min: f64(0), Max: f64(200)}, true, 1, 0, nil},
		{"between all outside", Expectation{Kind: ExpectBetween, Column: "score", Min: f64(500)}, false, 0, 100, []string{"0.5"}},
		{"in_set mostly passes", Expectation{Kind: ExpectInSet, Column: "cat", Values: []string{"a", "b"}, Mostly: 0.9}, true, 0.9, 10, []string{"c"}},
		{"in_set mostly fails", Expectation{Kind: ExpectInSet, Column: "cat", Values: []string{"a", "b"}, Mostly: 0.95}, false, 0.9, 10, []string{"c"}},
		{"in_set integers", Expectation{Kind: ExpectInSet, Column: "id", Values: []string{"1", "2", "3"}, Mostly: 0.03}, true, 0.03, 97, nil},
		{"unique passes", Expectation{Kind: ExpectUnique, Column: "id"}, true, 1, 0, nil},
		{"unique fails", Expectation{Kind: ExpectUnique, Column: "cat"}, false, 0, 100, []string{"a", "b", "c"}},
		{"regex mostly passes", Expectation{Kind: ExpectRegex, Column: "code", Pattern: `^A-\d{3}$`, Mostly: 0.97}, true, 0.97, 3, []string{"bad"}},
		{"regex fails", Expectation{Kind: ExpectRegex, Column: "code", Pattern: `^A-\d{3}$`}, false, 0.97, 3, []string{"bad"}},
		{"mean_between passes", Expectation{Kind: ExpectMeanBetween, Column: "score", Min: f64(40), Max: f64(60)}, true, 50, 0, nil},
		{"mean_between fails", Expectation{Kind: ExpectMeanBetween, Column: "score", Min: f64(50.5)}, false, 50, 0, nil},
		{"quantile_between passes", Expectation{Kind: ExpectQuantileBetween, Column: "score", Quantile: 0.5, Min: f64(45), Max: f64(55)}, true, nan, 0, nil},
		{"quantile_between fails", Expectation{Kind: ExpectQuantileBetween, Column: "score", Quantile: 0.99, Max: f64(10)}, false, nan, 0, nil},
		{"quantile 0 is the minimum", Expectation{Kind: ExpectQuantileBetween, Column: "score", Quantile: 0, Min: f64(0.5), Max: f64(0.5)}, true, 0.5, 0, nil},
		{"row_count_between fails", Expectation{Kind: ExpectRowCountBetween, Min: f64(1), Max: f64(50)}, false, 100, 0, nil},
		{"row_count_between passes", Expectation{Kind: ExpectRowCountBetween, Min: f64(100), Max: f64(100)}, true, 100, 0, nil},
		{"missing column", Expectation{Kind: ExpectUnique, Column: "nope"}, false, nan, 0, nil},
		{"mean of strings", Expectation{Kind: ExpectMeanBetween, Column: "cat", Min: f64(0)}, false, nan, 0, nil},
	}
}

func checkExpectation(t *testing.T, tt expectCase, got ExpectationResult) {
	t.Helper()
	if got.Success != tt.success || got.Skipped {
		t.Errorf("success got %v (skipped %v, %s), want %v", got.Success, got.Skipped, got.Message, tt.success)
	}
	if !math.IsNaN(tt.observed) && (got.Observed == nil || math.Abs(*got.Observed-tt.observed) > 1e-12) {
		t.Errorf("observed got %v (%s), want %g", fmtPtr(got.Observed), got.Message, tt.observed)
	}
	if got.Unexpected != tt.unexpected {
		t.Errorf("unexpected got %d, want %d", got.Unexpected, tt.unexpected)
	}
	var ex []string
	for _, x := range got.Examples {
		ex = append(ex, x.Value)
	}
	if tt.examples != nil && !slices.Equal(ex[:min(len(ex), len(tt.examples))], tt.examples) {
		t.Errorf("examples got %q, want %q first", ex, tt.examples)
	}
	if got.Severity != SeverityError || (tt.e.Kind.usesMostly() && got.Mostly != tt.e.MostlyOrDefault()) {
		t.Errorf("severity, mostly got %s %g, want error %g", got.Severity, got.Mostly, tt.e.MostlyOrDefault())
	}
}

func fmtPtr(x *float64) string {
	if x == nil {
		return "nil"
	}
	return fmt.Sprint(*x)
}

func TestValidateExpectationsFromProfile(t *testing.T) {
	p := mustProfileText(t, expectationRows(), 32, ProfileOptions{})
	for _, tt := range expectationCases() {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.e
			r := mustValidate(t, &Schema{Expectations: []*Expectation{&e}}, ValidationTarget{Name: "t", Profile: p})
			checkExpectation(t, tt, r.Expectations[0])
			if len(r.Scanned) != 0 {
				t.Errorf("scanned %v, want no scan", r.Scanned)
			}
			wantErrors := 0
			if !tt.success {
				wantErrors = 1
			}
			if r.Errors != wantErrors || r.HasErrors() != (wantErrors > 0) {
				t.Errorf("errors got %d, want %d", r.Errors, wantErrors)
			}
		})
	}
}

// TestValidateExpectationsByScan profiles with a frequent limit too small to
// count exactly, so that in_set, unique and regex need the data.
func TestValidateExpectationsByScan(t *testing.T) {
	rows := expectationRows()
	path := writeCSV(t, t.TempDir(), "data.csv", rows)
	p := mustProfileText(t, rows, 32, ProfileOptions{FrequentLimit: 2})
	for _, tt := range expectationCases() {
		if k := tt.e.Kind; k != ExpectInSet && k != ExpectUnique && k != ExpectRegex || p.Column(tt.e.Column) == nil {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			e := tt.e
			s := &Schema{Expectations: []*Expectation{&e}}
			r := mustValidate(t, s, ValidationTarget{Name: "t", Profile: p, Files: []string{path}})
			if len(r.Scanned) != 1 {
				t.Errorf("scanned %v, want the file", r.Scanned)
			}
			got := r.Expectations[0]
			checkExpectation(t, tt, got)
			for _, x := range got.Examples {
				if x.File != path || x.Line < 2 || x.Row != x.Line-1 {
					t.Errorf("example %+v does not say where it is", x)
				}
			}
			r = mustValidate(t, s, ValidationTarget{Name: "t", Profile: p})
			if got := r.Expectations[0]; tt.e.MostlyOrDefault() < 1 && (!got.Skipped || !strings.Contains(got.Message, "data files")) {
				t.Errorf("without files got skipped %v %q, want skipped asking for the data", got.Skipped, got.Message)
			}
			if r.Errors > 0 && tt.e.MostlyOrDefault() < 1 {
				t.Errorf("a skipped check counted as %d errors", r.Errors)
			}
		})
	}
}

// TestValidateBetweenEstimates checks between decided from the quantile
// sketch when the estimate is clear of mostly, and by a scan when it is not.
func TestValidateBetweenEstimates(t *testing.T) {
	rows := [][]string{{"score"}}
	for i := range 1000 {
		rows = append(rows, []string{fmt.Sprintf("%g", float64(i)+0.5)})
	}
	path := writeCSV(t, t.TempDir(), "data.csv", rows)
	// A small k makes the sketch compact, so that its counts are estimates.
	p := mustProfileText(t, rows, 128, ProfileOptions{QuantileK: 50})
	eps := p.Column("score").QuantileSketch.RankError()
	if eps == 0 || 2*eps > 0.2 {
		t.Fatalf("rank error %g: the cases below need 0 < 2ε ≤ 0.2", eps)
	}
	// 900 of the 1000 scores are ≤ 899.9.
	tests := []struct {
		mostly  float64
		files   bool
		success bool
		approx  bool
		scanned bool
	}{
		{1, false, false, true, false},    // the maximum is above: certain failure
		{0.5, true, true, true, false},    // 0.9 ± 2ε is clear of 0.5: no scan
		{0.99, false, false, true, false}, // undecided, no files: the estimate decides
		{0.9, true, true, false, true},    // undecided: the scan decides
		{0.91, true, false, false, true},
	}
	for _, tt := range tests {
		e := &Expectation{Kind: ExpectBetween, Column: "score", Max: f64(899.9), Mostly: tt.mostly}
		target := ValidationTarget{Name: "t", Profile: p}
		if tt.files {
			target.Files = []string{path}
		}
		r := mustValidate(t, &Schema{Expectations: []*Expectation{e}}, target)
		got := r.Expectations[0]
		if got.Success != tt.success || got.Approximate != tt.approx || (len(r.Scanned) > 0) != tt.scanned || math.Abs(*got.Observed-0.9) > 2*eps {
			t.Errorf("mostly %g files %v: got success %v approx %v scanned %v observed %g (%s), want %v %v %v 0.9",
				tt.mostly, tt.files, got.Success, got.Approximate, r.Scanned, *got.Observed, got.Message, tt.success, tt.approx, tt.scanned)
		}
		if tt.scanned && (got.Unexpected != 100 || *got.Observed != 0.9) {
			t.Errorf("mostly %g: scanned unexpected got %d observed %g, want 100 0.9", tt.mostly, got.Unexpected, *got.Observed)
		}
	}
}

func kinds(as []Anomaly) []string {
	var out []string
	for _, a := range as {
		out = append(out, string(a.Kind)+":"+a.Column)
	}
	return out
}

func TestValidateAnomaliesFromProfile(t *testing.T) {
	p := mustProfileText(t, expectationRows(), 32, ProfileOptions{})
	s := &Schema{Columns: []*ColumnSchema{
		{Name: "id", Type: TypeFloat, Min: f64(1), Max: f64(90)}, // integers satisfy float
		{Name: "score", Type: TypeInteger},
		{Name: "cat", Type: TypeString, Domain: []string{"a", "b"}},
		{Name: "opt", Type: TypeString, Nullable: true, MaxNullFraction: f64(0.05), Severity: SeverityWarning},
		{Name: "missing", Type: TypeBoolean},
	}}
	r := mustValidate(t, s, ValidationTarget{Name: "t", Profile: p})
	want := []string{"out_of_range:id", "type_mismatch:score", "out_of_domain:cat", "null_fraction:opt", "missing_column:missing", "unexpected_column:code"}
	if got := kinds(r.Anomalies); !slices.Equal(got, want) {
		t.Fatalf("anomalies got %v, want %v", got, want)
	}
	rng, tm, dom, nf := r.Anomalies[0], r.Anomalies[1], r.Anomalies[2], r.Anomalies[3]
	// 100 values fit in the sketch uncompacted: its counts are exact.
	if rng.Approximate || rng.Above != 10 || rng.Below != 0 || rng.Total != 100 {
		t.Errorf("out_of_range got above %d below %d approx %v, want exactly 10 above", rng.Above, rng.Below, rng.Approximate)
	}
	if tm.Expected != TypeInteger || tm.Actual != TypeFloat {
		t.Errorf("type_mismatch got expected %s actual %s, want integer float", tm.Expected, tm.Actual)
	}
	if len(dom.Values) != 1 || dom.Values[0] != (ValueShare{Value: "c", Count: 10, Share: 0.1}) || dom.Count != 10 || dom.Approximate {
		t.Errorf("out_of_domain got %+v, want c×10 (10%%)", dom.Values)
	}
	if nf.Count != 10 || *nf.Fraction != 0.1 || *nf.Allowed != 0.05 || nf.Severity != SeverityWarning {
		t.Errorf("null_fraction got %d %g allowed %g severity %s, want 10 0.1 0.05 warning", nf.Count, *nf.Fraction, *nf.Allowed, nf.Severity)
	}
	if r.Errors != 5 || r.Warnings != 1 {
		t.Errorf("errors, warnings got %d %d, want 5 1", r.Errors, r.Warnings)
	}
}

func TestValidateRange(t *testing.T) {
	rows := [][]string{{"score"}}
	for i := range 1000 {
		rows = append(rows, []string{fmt.Sprintf("%g", float64(i)+0.5)})
	}
	path := writeCSV(t, t.TempDir(), "data.csv", rows)
	p := mustProfileText(t, rows, 128, ProfileOptions{QuantileK: 50})
	eps := p.Column("score").QuantileSketch.RankError()
	s := &Schema{Columns: []*ColumnSchema{{Name: "score", Type: TypeFloat, Min: f64(20), Max: f64(970)}}}
	// 20 values below 20, 30 above 970.
	r := mustValidate(t, s, ValidationTarget{Name: "t", Profile: p})
	a := r.Anomalies[0]
	if a.Kind != AnomalyOutOfRange || !a.Approximate || math.Abs(float64(a.Below-20)) > eps*1000+1 || math.Abs(float64(a.Above-30)) > eps*1000+1 {
		t.Errorf("from the sketch got %+v, want about 20 below and 30 above (±%g)", a, eps*1000)
	}
	r = mustValidate(t, s, ValidationTarget{Name: "t", Profile: p, Files: []string{path}})
	a = r.Anomalies[0]
	if a.Kind != AnomalyOutOfRange || a.Below != 20 || a.Above != 30 || a.Count != 50 || a.Approximate || len(r.Scanned) != 1 {
		t.Errorf("by scan got %+v, want exactly 20 below and 30 above", a)
	}
	s.Columns[0].Min, s.Columns[0].Max = f64(0), f64(1000)
	if r := mustValidate(t, s, ValidationTarget{Name: "t", Profile: p, Files: []string{path}}); len(r.Anomalies) != 0 || len(r.Scanned) != 0 {
		t.Errorf("values inside the range got %v (scanned %v), want no anomaly and no scan", kinds(r.Anomalies), r.Scanned)
	}
}

func TestValidateDatasetChecks(t *testing.T) {
	p := mustProfileText(t, expectationRows(), 32, ProfileOptions{})
	base := &Profile{Rows: 80}
	s := &Schema{RowCount: &CountRange{Min: i64(200)}, MaxRowCountChange: f64(0.2)}
	r := mustValidate(t, s, ValidationTarget{Name: "t", Profile: p, Baseline: base})
	if got, want := kinds(r.Anomalies), []string{"row_count:", "row_count_change:"}; !slices.Equal(got, want) {
		t.Fatalf("anomalies got %v, want %v", got, want)
	}
	if c := r.Anomalies[1]; *c.Fraction != 0.25 || c.Baseline != 80 || c.Count != 100 {
		t.Errorf("row_count_change got %+v, want +25%% from 80 to 100", c)
	}
	s.MaxRowCountChange = f64(0.25)
	s.RowCount = nil
	if r := mustValidate(t, s, ValidationTarget{Profile: p, Baseline: base}); len(r.Anomalies) != 0 {
		t.Errorf("change at the bound got %v, want none", kinds(r.Anomalies))
	}
	empty := &Profile{Columns: []*ColumnProfile{{Name: "a", Type: TypeString}}}
	r = mustValidate(t, &Schema{Columns: []*ColumnSchema{{Name: "a", Type: TypeInteger}}}, ValidationTarget{Profile: empty})
	if got, want := kinds(r.Anomalies), []string{"empty_data:"}; !slices.Equal(got, want) {
		t.Errorf("empty data got %v, want %v", got, want)
	}
	if _, err := Validate(context.Background(), s, ValidationTarget{Name: "x"}); err == nil {
		t.Error("no profile: got no error")
	}
}

func TestReportWriteText(t *testing.T) {
	p := mustProfileText(t, expectationRows(), 32, ProfileOptions{})
	s := &Schema{
		Columns: []*ColumnSchema{{Name: "cat", Type: TypeString, Domain: []string{"a", "b"}}},
		Expectations: []*Expectation{
			{Kind: ExpectRegex, Column: "code", Pattern: `^A`, Severity: SeverityWarning},
			{Kind: ExpectNotNull, Column: "id"},
		},
	}
	r := mustValidate(t, s, ValidationTarget{Name: "orders@3", Profile: p})
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"Validation of orders@3: 100 rows, 5 anomalies, 1 of 2 expectations failed",
		`out_of_domain      cat              10 values (10.0%) outside the domain: "c" 10.0% (10)`,
		"WARNING  regex(code, pattern=^A)",
		`examples: "bad" ×3`,
		"ok       not_null(id)",
		"Result: FAILED (5 errors, 1 warnings)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report does not contain %q:\n%s", want, out)
		}
	}
}

// TestValidateSeattleBrokenCopy infers a schema from the real Seattle
// weather file, then validates a copy with a renamed column, nulls injected
// in one column and an unknown category: exactly those anomalies come out.
func TestValidateSeattleBrokenCopy(t *testing.T) {
	path := realdata.Path(t, "seattle-weather.csv")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	profileFile := func(path string) *Profile {
		t.Helper()
		r, err := OpenFile(ctx, path, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		p, err := ProfileReader(ctx, path, r, ProfileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ref := profileFile(path)
	schema := InferSchema(ref, InferOptions{Dataset: "seattle-weather"})
	if c := schema.Column("weather"); c == nil || !slices.Equal(c.Domain, []string{"drizzle", "fog", "rain", "snow", "sun"}) {
		t.Fatalf("inferred weather domain got %+v, want the five kinds of weather", c)
	}
	// The schema survives YAML, as a user would edit it.
	y, err := schema.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if schema, err = ParseSchema(y); err != nil {
		t.Fatal(err)
	}
	if r := mustValidate(t, schema, ValidationTarget{Name: "original", Profile: ref, Files: []string{path}}); len(r.Anomalies) != 0 || r.HasErrors() {
		t.Fatalf("the original has anomalies %v", kinds(r.Anomalies))
	}

	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	header := strings.Split(lines[0], ",")
	col := func(name string) int { return slices.Index(header, name) }
	wind, weather := col("wind"), col("weather")
	header[col("temp_max")] = "tmax"
	lines[0] = strings.Join(header, ",")
	nulls := 0
	for i := 1; i < len(lines); i++ {
		f := strings.Split(lines[i], ",")
		if i%20 == 0 {
			f[wind] = ""
			nulls++
		}
		if i == 100 {
			f[weather] = "hail"
		}
		lines[i] = strings.Join(f, ",")
	}
	broken := filepath.Join(t.TempDir(), "broken.csv")
	if err := os.WriteFile(broken, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rows := int64(len(lines) - 1)
	bp := profileFile(broken)
	for _, files := range [][]string{nil, {broken}} {
		r := mustValidate(t, schema, ValidationTarget{Name: "broken", Profile: bp, Files: files, Baseline: ref})
		want := []string{"missing_column:temp_max", "null_fraction:wind", "out_of_domain:weather", "unexpected_column:tmax"}
		if got := kinds(r.Anomalies); !slices.Equal(got, want) {
			t.Fatalf("files %v: anomalies got %v, want %v", files, got, want)
		}
		nf, dom := r.Anomalies[1], r.Anomalies[2]
		if nf.Count != int64(nulls) || *nf.Fraction != float64(nulls)/float64(rows) || *nf.Allowed != 0 {
			t.Errorf("null_fraction got %d (%g, allowed %g), want %d (%g, allowed 0)", nf.Count, *nf.Fraction, *nf.Allowed, nulls, float64(nulls)/float64(rows))
		}
		if want := (ValueShare{Value: "hail", Count: 1, Share: 1 / float64(rows)}); len(dom.Values) != 1 || dom.Values[0] != want {
			t.Errorf("out_of_domain values got %+v, want %+v", dom.Values, want)
		}
		if !r.HasErrors() || r.Errors != 4 || len(r.Skipped) != 0 {
			t.Errorf("errors got %d (skipped %v), want 4", r.Errors, r.Skipped)
		}
	}
}

var update = flag.Bool("update", false, "rewrite golden files")

// TestValidateOrdersGolden validates a small file against a hand-written
// schema in which every check targets one planted problem, and compares the
// text report with testdata/validate/orders.report.golden (go test -update
// rewrites it).
func TestValidateOrdersGolden(t *testing.T) {
	const dir = "testdata/validate"
	data, err := os.ReadFile(filepath.Join(dir, "orders.schema.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSchema(data)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	path := filepath.Join(dir, "orders.csv")
	r, err := OpenFile(ctx, path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ProfileReader(ctx, path, r, ProfileOptions{Types: s.Types()})
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	rep := mustValidate(t, s, ValidationTarget{Name: "orders.csv", Profile: p, Files: []string{path}, Baseline: &Profile{Rows: 20}})
	want := []string{"row_count_change:", "out_of_range:amount", "out_of_domain:status"}
	if got := kinds(rep.Anomalies); !slices.Equal(got, want) {
		t.Errorf("anomalies got %v, want %v", got, want)
	}
	var failed []string
	for _, e := range rep.Expectations {
		if !e.Success {
			failed = append(failed, string(e.Kind)+":"+e.Column)
		}
	}
	if want := []string{"unique:order_id", "regex:email", "not_null:amount", "row_count_between:"}; !slices.Equal(failed, want) {
		t.Errorf("failed expectations got %v, want %v", failed, want)
	}
	if rep.Errors != 6 || rep.Warnings != 1 {
		t.Errorf("errors, warnings got %d %d, want 6 1", rep.Errors, rep.Warnings)
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join(dir, "orders.report.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want2, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != string(want2) {
		t.Errorf("report got\n%s\nwant\n%s", got, want2)
	}
}

// TestValidateOpenHook scans data that is not in a local file through
// ValidationTarget.Open.
func TestValidateOpenHook(t *testing.T) {
	rows := expectationRows()
	var csv strings.Builder
	for _, r := range rows {
		csv.WriteString(strings.Join(r, ",") + "\n")
	}
	data := []byte(csv.String())
	var opened []string
	open := func(ctx context.Context, name string, opts ReadOptions) (Reader, error) {
		opened = append(opened, fmt.Sprintf("%s%v", name, opts.Columns))
		opts.Format = FormatCSV
		return NewReader(name, bytes.NewReader(data), int64(len(data)), opts)
	}
	p := mustProfileText(t, rows, 32, ProfileOptions{FrequentLimit: 2})
	e := &Expectation{Kind: ExpectRegex, Column: "code", Pattern: `^A-\d{3}$`}
	r := mustValidate(t, &Schema{Expectations: []*Expectation{e}}, ValidationTarget{Name: "blob", Profile: p, Files: []string{"blob:1"}, Open: open})
	if got := r.Expectations[0]; got.Unexpected != 3 || got.Elements != 100 {
		t.Errorf("regex by scan got %d of %d unexpected, want 3 of 100", got.Unexpected, got.Elements)
	}
	if want := []string{"blob:1[]", "blob:1[code]"}; !slices.Equal(opened, want) {
		t.Errorf("opened %q, want %q (the header, then the projection)", opened, want)
	}
}

// TestValidateStringAcceptsNumericText checks that a string column whose
// values in this data all look like numbers is no type mismatch: a version's
// profile records the narrowest type its text had.
func TestValidateStringAcceptsNumericText(t *testing.T) {
	p := mustProfileText(t, expectationRows(), 32, ProfileOptions{})
	s := &Schema{Columns: []*ColumnSchema{{Name: "id", Type: TypeString}, {Name: "score", Type: TypeString}}}
	r := mustValidate(t, s, ValidationTarget{Name: "t", Profile: p})
	for _, a := range r.Anomalies {
		if a.Kind == AnomalyTypeMismatch {
			t.Errorf("got %s on %s, want numeric text accepted as string", a.Kind, a.Column)
		}
	}
}
