package dataset

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ValidationTarget is what Validate checks: a dataset's profile and,
// for the checks a profile cannot decide, the files it was computed from.
type ValidationTarget struct {
	// Name names the dataset (a version reference, a path) in the report.
	Name string
	// Profile is the profile of the data; required.
	Profile *Profile
	// Files are local paths to scan when a check needs the data (regex,
	// unique, a domain when the frequent counts are not exact, exact counts
	// of values out of range); nil reports such checks as skipped, with the
	// reason.
	Files []string
	// ReadOptions are the options to open Files with; Validate sets the
	// column projection itself.
	ReadOptions ReadOptions
	// Open opens one of Files; nil means OpenFile. Set it to scan files
	// that are not local paths (a blob store's objects through NewReader,
	// say); Files are then whatever names Open understands.
	Open func(ctx context.Context, file string, opts ReadOptions) (Reader, error)
	// Baseline is the previous version's profile, for row_count_change.
	Baseline *Profile
}

// AnomalyKind names a kind of anomaly.
type AnomalyKind string

// Anomaly kinds, after TensorFlow Data Validation's.
const (
	AnomalyMissingColumn    AnomalyKind = "missing_column"    // a schema column is not in the data
	AnomalyUnexpectedColumn AnomalyKind = "unexpected_column" // a data column is not in the schema
	AnomalyTypeMismatch     AnomalyKind = "type_mismatch"     // the data's type is not the schema's
	AnomalyNullFraction     AnomalyKind = "null_fraction"     // more nulls than allowed
	AnomalyOutOfDomain      AnomalyKind = "out_of_domain"     // values outside a categorical domain
	AnomalyOutOfRange       AnomalyKind = "out_of_range"      // values below min or above max
	AnomalyRowCount         AnomalyKind = "row_count"         // row count outside the schema's bounds
	AnomalyRowCountChange   AnomalyKind = "row_count_change"  // row count changed too much against the baseline
	AnomalyEmptyData        AnomalyKind = "empty_data"        // no rows at all
)

// Anomaly is one way the data does not fit the schema. Message is one line
// for people; the other fields are for programs, each set only for the
// kinds that say so.
type Anomaly struct {
	Kind     AnomalyKind `json:"kind"`
	Column   string      `json:"column,omitempty"`
	Severity Severity    `json:"severity"`
	Message  string      `json:"message"`

	// Expected is the schema's type (type_mismatch, missing_column); Actual
	// the data's (type_mismatch, unexpected_column).
	Expected Type `json:"expected,omitempty"`
	Actual   Type `json:"actual,omitempty"`
	// Count offending values out of Total: null rows out of rows
	// (null_fraction), values outside the domain or range out of the
	// column's non-null values (out_of_domain, out_of_range), rows
	// (row_count, row_count_change, with Baseline the baseline's rows).
	Count    int64 `json:"count,omitempty"`
	Total    int64 `json:"total,omitempty"`
	Baseline int64 `json:"baseline,omitempty"`
	// Fraction is Count/Total, or the relative row count change; Allowed its
	// bound (null_fraction, row_count_change).
	Fraction *float64 `json:"fraction,omitempty"`
	Allowed  *float64 `json:"allowed,omitempty"`
	// Values are the most frequent values outside the domain (up to 10).
	Values []ValueShare `json:"values,omitempty"`
	// Below and Above count values below Min and above Max (out_of_range;
	// Min and Max are also row_count's bounds).
	Below int64    `json:"below,omitempty"`
	Above int64    `json:"above,omitempty"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
	// Approximate says the counts come from sketches, not from the data.
	Approximate bool `json:"approximate,omitempty"`
}

// ValueShare is a value, how often it occurs and its share of the column's
// non-null values.
type ValueShare struct {
	Value string  `json:"value"`
	Count int64   `json:"count"`
	Share float64 `json:"share"`
}

// ExpectationResult is the outcome of one expectation.
type ExpectationResult struct {
	Kind   ExpectationKind `json:"kind"`
	Column string          `json:"column,omitempty"`
	// Params are the expectation's parameters (min, max, q, values, pattern).
	Params   map[string]any `json:"params,omitempty"`
	Success  bool           `json:"success"`
	Skipped  bool           `json:"skipped,omitempty"`
	Mostly   float64        `json:"mostly,omitempty"`
	Severity Severity       `json:"severity"`
	// Observed is the share of values that passed (value expectations) or
	// the statistic checked (mean, quantile, row count); nil when there was
	// nothing to observe.
	Observed *float64 `json:"observed,omitempty"`
	// Elements values were checked and Unexpected of them failed (value
	// expectations).
	Elements   int64 `json:"element_count,omitempty"`
	Unexpected int64 `json:"unexpected_count,omitempty"`
	// Examples are up to 10 unexpected values.
	Examples []Example `json:"examples,omitempty"`
	// Approximate says Observed comes from sketches (see Message).
	Approximate bool   `json:"approximate,omitempty"`
	Message     string `json:"message,omitempty"`
}

// Example is an unexpected value: with its count when taken from the
// profile, or where it was found when taken from a scan (Line in text
// formats, Row always).
type Example struct {
	Value string `json:"value"`
	Count int64  `json:"count,omitempty"`
	File  string `json:"file,omitempty"`
	Line  int64  `json:"line,omitempty"`
	Row   int64  `json:"row,omitempty"`
}

// SkippedCheck is an anomaly check that needed the data when none was
// given, or could not be decided.
type SkippedCheck struct {
	Check  AnomalyKind `json:"check"`
	Column string      `json:"column,omitempty"`
	Reason string      `json:"reason"`
}

// Report is the outcome of Validate.
type Report struct {
	Dataset      string              `json:"dataset"`
	Rows         int64               `json:"rows"`
	Anomalies    []Anomaly           `json:"anomalies"`
	Expectations []ExpectationResult `json:"expectations"`
	Skipped      []SkippedCheck      `json:"skipped,omitempty"`
	// Scanned lists the files read for checks the profile could not decide.
	Scanned []string `json:"scanned,omitempty"`
	// Errors and Warnings count anomalies and failed expectations by severity.
	Errors   int `json:"errors"`
	Warnings int `json:"warnings"`
}

// HasErrors reports whether an anomaly or failed expectation of error
// severity exists: the data must not be used.
func (r *Report) HasErrors() bool { return r.Errors > 0 }

// maxExamples bounds the examples and offending values a report lists.
const maxExamples = 10

// Validate checks a dataset against a schema. Everything the profile
// decides is decided from it; the checks that need the data (see
// ValidationTarget.Files) are run together in one scan of the files,
// reading only the columns they need.
//
// Anomalies are reported per schema column in schema order (missing,
// type mismatch, null fraction, domain, range), then unexpected columns,
// after the dataset-level ones (empty data, row count, row count change).
// Expectations are reported in schema order. An error is returned only when
// the inputs are unusable (no profile, a file that cannot be read).
func Validate(ctx context.Context, s *Schema, t ValidationTarget) (*Report, error) {
	if s == nil {
		return nil, errors.New("validate: no schema")
	}
	if t.Profile == nil {
		return nil, fmt.Errorf("validate %s: no profile", t.Name)
	}
	v := &validation{s: s, t: t, p: t.Profile, r: &Report{Dataset: t.Name, Rows: t.Profile.Rows}, scan: &scanPlan{}}
	v.datasetChecks()
	v.columnChecks()
	v.expectationChecks()
	if err := v.runScan(ctx); err != nil {
		return nil, err
	}
	for _, f := range v.afterScan {
		f()
	}
	for _, slot := range v.anomalies {
		v.r.Anomalies = append(v.r.Anomalies, slot()...)
	}
	for _, slot := range v.results {
		v.r.Expectations = append(v.r.Expectations, slot())
	}
	if v.r.Anomalies == nil {
		v.r.Anomalies = []Anomaly{}
	}
	if v.r.Expectations == nil {
		v.r.Expectations = []ExpectationResult{}
	}
	for _, a := range v.r.Anomalies {
		v.r.count(a.Severity)
	}
	for _, e := range v.r.Expectations {
		if !e.Success && !e.Skipped {
			v.r.count(e.Severity)
		}
	}
	return v.r, nil
}

func (r *Report) count(s Severity) {
	if s == SeverityWarning {
		r.Warnings++
	} else {
		r.Errors++
	}
}

// validation is one run of Validate. Checks append slots that produce their
// outcome once the scan, if any, has run.
type validation struct {
	s         *Schema
	t         ValidationTarget
	p         *Profile
	r         *Report
	scan      *scanPlan
	anomalies []func() []Anomaly
	results   []func() ExpectationResult
	afterScan []func()
}

func (v *validation) add(as ...Anomaly) {
	v.anomalies = append(v.anomalies, func() []Anomaly { return as })
}

func (v *validation) skip(kind AnomalyKind, col, reason string) {
	v.r.Skipped = append(v.r.Skipped, SkippedCheck{Check: kind, Column: col, Reason: reason})
}

func ptr[T any](x T) *T { return &x }

func (v *validation) datasetChecks() {
	rows := v.p.Rows
	if rows == 0 {
		v.add(Anomaly{Kind: AnomalyEmptyData, Severity: SeverityError, Message: "the data has no rows"})
	}
	if rc := v.s.RowCount; rc != nil {
		if (rc.Min != nil && rows < *rc.Min) || (rc.Max != nil && rows > *rc.Max) {
			a := Anomaly{Kind: AnomalyRowCount, Severity: SeverityError, Count: rows,
				Message: fmt.Sprintf("%d rows, expected %s", rows, countRange(rc.Min, rc.Max))}
			if rc.Min != nil {
				a.Min = ptr(float64(*rc.Min))
			}
			if rc.Max != nil {
				a.Max = ptr(float64(*rc.Max))
			}
			v.add(a)
		}
	}
	if m := v.s.MaxRowCountChange; m != nil && v.t.Baseline != nil {
		base := v.t.Baseline.Rows
		var change float64
		switch {
		case base > 0:
			change = float64(rows-base) / float64(base)
		case rows > 0:
			change = math.Inf(1)
		}
		if math.Abs(change) > *m {
			a := Anomaly{Kind: AnomalyRowCountChange, Severity: SeverityError, Count: rows, Baseline: base, Allowed: ptr(*m),
				Message: fmt.Sprintf("%d rows against %d in the baseline (%s), at most ±%s allowed", rows, base, signedPercent(change), percent(*m))}
			if !math.IsInf(change, 0) {
				a.Fraction = ptr(change)
			}
			v.add(a)
		}
	}
}

func countRange(lo, hi *int64) string {
	switch {
	case lo != nil && hi != nil:
		return fmt.Sprintf("between %d and %d", *lo, *hi)
	case lo != nil:
		return fmt.Sprintf("at least %d", *lo)
	case hi != nil:
		return fmt.Sprintf("at most %d", *hi)
	}
	return "any number"
}

// compatible reports whether data of type data satisfies a schema type:
// the same type, or integers where floats are expected.
func compatible(schema, data Type) bool {
	// Text whose values all happen to parse as numbers, booleans or times
	// (a batch of numeric-looking codes) is still valid text: a stored
	// profile records the narrowest type the values had, so a string column
	// accepts every type.
	return schema == data || schema == TypeString || (schema == TypeFloat && data == TypeInteger)
}

func (v *validation) columnChecks() {
	for _, cs := range v.s.Columns {
		sev := cs.Severity.orDefault()
		pc := v.p.Column(cs.Name)
		if pc == nil {
			v.add(Anomaly{Kind: AnomalyMissingColumn, Column: cs.Name, Severity: sev, Expected: cs.Type,
				Message: fmt.Sprintf("column %q (%s) is missing", cs.Name, cs.Type)})
			continue
		}
		if pc.Count > 0 && !compatible(cs.Type, pc.Type) {
			v.add(Anomaly{Kind: AnomalyTypeMismatch, Column: cs.Name, Severity: sev, Expected: cs.Type, Actual: pc.Type,
				Message: fmt.Sprintf("column %q is %s, expected %s", cs.Name, pc.Type, cs.Type)})
			continue
		}
		if v.p.Rows > 0 {
			allowed := cs.AllowedNullFraction()
			f := float64(pc.Nulls) / float64(v.p.Rows)
			if f > allowed {
				v.add(Anomaly{Kind: AnomalyNullFraction, Column: cs.Name, Severity: sev, Count: pc.Nulls, Total: v.p.Rows,
					Fraction: ptr(f), Allowed: ptr(allowed),
					Message: fmt.Sprintf("%s of rows are null (%d of %d), at most %s allowed", percent(f), pc.Nulls, v.p.Rows, percent(allowed))})
			}
		}
		if pc.Count == 0 {
			continue
		}
		if len(cs.Domain) > 0 {
			v.domainCheck(cs, pc, sev)
		}
		if cs.Min != nil || cs.Max != nil {
			v.rangeCheck(cs, pc, sev)
		}
	}
	if len(v.s.Columns) == 0 {
		return
	}
	for _, pc := range v.p.Columns {
		if v.s.Column(pc.Name) == nil {
			v.add(Anomaly{Kind: AnomalyUnexpectedColumn, Column: pc.Name, Severity: SeverityError, Actual: pc.Type,
				Message: fmt.Sprintf("column %q (%s) is not in the schema", pc.Name, pc.Type)})
		}
	}
}

// canonicalSet converts schema values to the canonical text of the data's
// type; values that are not of that type stay as written (and match nothing).
func canonicalSet(t Type, values []string) map[string]bool {
	set := make(map[string]bool, len(values))
	for _, s := range values {
		c, _ := canonicalText(t, s)
		set[c] = true
		// Profiles count long values under a stand-in key.
		set[FrequentKey(c)] = true
	}
	return set
}

// valuesCounted returns the number of a column's values that value checks
// look at: non-null and not NaN.
func valuesCounted(pc *ColumnProfile) int64 { return pc.Count - pc.NaN }

func (v *validation) domainCheck(cs *ColumnSchema, pc *ColumnProfile, sev Severity) {
	set := canonicalSet(pc.Type, cs.Domain)
	total := valuesCounted(pc)
	build := func(counts map[string]int64, overflow int64, approx bool) []Anomaly {
		var out int64
		vals := make([]ValueShare, 0, len(counts))
		for val, n := range counts {
			out += n
			vals = append(vals, ValueShare{Value: val, Count: n, Share: share(n, total)})
		}
		out += overflow
		if out == 0 {
			return nil
		}
		slices.SortFunc(vals, func(a, b ValueShare) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Value, b.Value))
		})
		vals = vals[:min(len(vals), maxExamples)]
		names := make([]string, len(vals))
		for i, x := range vals {
			names[i] = fmt.Sprintf("%q %s (%d)", x.Value, percent(x.Share), x.Count)
		}
		more := ""
		if n := len(counts) - len(vals); n > 0 || overflow > 0 {
			more = ", …"
		}
		approxNote := ""
		if approx {
			approxNote = " (approximate counts)"
		}
		return []Anomaly{{Kind: AnomalyOutOfDomain, Column: cs.Name, Severity: sev, Count: out, Total: total,
			Fraction: ptr(share(out, total)), Values: vals, Approximate: approx,
			Message: fmt.Sprintf("%s (%s) outside the domain%s: %s%s", plural(out, "value"), percent(share(out, total)), approxNote, strings.Join(names, ", "), more)}}
	}
	f := pc.Frequent
	if f != nil && f.Exact() {
		counts := map[string]int64{}
		for _, it := range f.Items() {
			if !set[it.Value] {
				counts[it.Value] = it.Count
			}
		}
		v.anomalies = append(v.anomalies, func() []Anomaly { return build(counts, 0, false) })
		return
	}
	if len(v.t.Files) > 0 {
		dc := &domainScan{set: set, counts: map[string]int64{}}
		v.scan.add(pc, dc)
		v.anomalies = append(v.anomalies, func() []Anomaly { return build(dc.counts, dc.overflow, false) })
		return
	}
	// Without the data, the values the inexact counter still tracks are
	// known to occur; their counts are estimates.
	counts := map[string]int64{}
	if f != nil {
		for _, it := range f.Items() {
			if !set[it.Value] {
				counts[it.Value] = it.Count
			}
		}
	}
	v.skip(AnomalyOutOfDomain, cs.Name, "the column has more distinct values than the profile counts exactly; pass the data files for exact counts")
	v.anomalies = append(v.anomalies, func() []Anomaly { return build(counts, 0, true) })
}

func (v *validation) rangeCheck(cs *ColumnSchema, pc *ColumnProfile, sev Severity) {
	if pc.Type != TypeInteger && pc.Type != TypeFloat && pc.Type != TypeTimestamp {
		return
	}
	lo, hi := cs.Min, cs.Max
	total := valuesCounted(pc)
	below := pc.Min != nil && lo != nil && *pc.Min < *lo
	above := pc.Max != nil && hi != nil && *pc.Max > *hi
	// Infinite values are out of a range closed on both ends; with one open
	// end their sign, which the profile does not keep, decides.
	infOut := pc.Inf > 0 && lo != nil && hi != nil
	infUnknown := pc.Inf > 0 && !infOut
	if !below && !above && !infOut && !infUnknown {
		return
	}
	build := func(nBelow, nAbove, other int64, approx bool) []Anomaly {
		n := nBelow + nAbove + other
		if n == 0 {
			return nil
		}
		a := Anomaly{Kind: AnomalyOutOfRange, Column: cs.Name, Severity: sev, Count: n, Total: total, Below: nBelow, Above: nAbove,
			Fraction: ptr(share(n, total)), Min: lo, Max: hi, Approximate: approx}
		parts := []string{}
		if nBelow > 0 {
			parts = append(parts, fmt.Sprintf("%d below %s (profile minimum %s)", nBelow, formatValue(*lo, pc.Type), formatValue(*pc.Min, pc.Type)))
		}
		if nAbove > 0 {
			parts = append(parts, fmt.Sprintf("%d above %s (profile maximum %s)", nAbove, formatValue(*hi, pc.Type), formatValue(*pc.Max, pc.Type)))
		}
		if other > 0 {
			parts = append(parts, fmt.Sprintf("%d infinite", other))
		}
		est := ""
		if approx {
			est = "about "
		}
		a.Message = fmt.Sprintf("%s%s (%s) outside the range %s: %s", est, plural(n, "value"), percent(share(n, total)), rangeText(lo, hi, pc.Type), strings.Join(parts, ", "))
		return []Anomaly{a}
	}
	if len(v.t.Files) > 0 {
		rc := &rangeScan{lo: lo, hi: hi}
		v.scan.add(pc, rc)
		v.anomalies = append(v.anomalies, func() []Anomaly { return build(rc.below, rc.above, 0, false) })
		return
	}
	if infUnknown && !below && !above {
		v.skip(AnomalyOutOfRange, cs.Name, fmt.Sprintf("%d infinite values of unknown sign; pass the data files to check them", pc.Inf))
		return
	}
	q := pc.QuantileSketch
	if q == nil {
		v.skip(AnomalyOutOfRange, cs.Name, "the profile has no quantile sketch for this column; pass the data files to check it")
		return
	}
	var nBelow, nAbove int64
	finite := float64(q.Count())
	if below {
		nBelow = max(1, int64(math.Round(finite*q.CDF(math.Nextafter(*lo, math.Inf(-1))))))
	}
	if above {
		nAbove = max(1, int64(math.Round(finite*(1-q.CDF(*hi)))))
	}
	var other int64
	if infOut {
		other = pc.Inf
	}
	// A sketch that has compacted nothing (rank error 0) counts exactly.
	approx := q.RankError() > 0
	v.anomalies = append(v.anomalies, func() []Anomaly { return build(nBelow, nAbove, other, approx) })
}

func rangeText(lo, hi *float64, t Type) string {
	l, h := "-∞", "+∞"
	if lo != nil {
		l = formatValue(*lo, t)
	}
	if hi != nil {
		h = formatValue(*hi, t)
	}
	return "[" + l + ", " + h + "]"
}

// formatValue formats a number of a column of type t (timestamps as times).
func formatValue(x float64, t Type) string {
	if t == TypeTimestamp && x == math.Trunc(x) && math.Abs(x) < 1<<62 {
		return FormatMicros(int64(x))
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

// plural formats a count of things: "1 value", "2 values".
func plural(n int64, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.FormatInt(n, 10) + " " + thing + "s"
}

// formatStat formats a statistic (a mean, a quantile) of a column of type t
// to six significant digits.
func formatStat(x float64, t Type) string {
	if t == TypeTimestamp {
		return formatValue(math.Round(x), t)
	}
	return strconv.FormatFloat(x, 'g', 6, 64)
}

func share(n, total int64) float64 {
	if total == 0 {
		return 0
	}
	return float64(n) / float64(total)
}

// percent formats a fraction as a percentage with up to three significant
// digits below 10%.
func percent(f float64) string {
	p := 100 * f
	switch {
	case p == 0 || p == 100:
		return strconv.FormatFloat(p, 'f', 0, 64) + "%"
	case p < 10:
		return strconv.FormatFloat(p, 'g', 3, 64) + "%"
	}
	return strconv.FormatFloat(p, 'f', 1, 64) + "%"
}

func signedPercent(f float64) string {
	if math.IsInf(f, 1) {
		return "+∞%"
	}
	if f >= 0 {
		return "+" + percent(f)
	}
	return "-" + percent(-f)
}

// WriteText writes the report for people: a summary line, the anomalies,
// the expectations, the checks skipped and the verdict.
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	failed := 0
	for _, e := range r.Expectations {
		if !e.Success && !e.Skipped {
			failed++
		}
	}
	ew.printf("Validation of %s: %d rows, %d anomalies, %d of %d expectations failed\n",
		cmp.Or(r.Dataset, "data"), r.Rows, len(r.Anomalies), failed, len(r.Expectations))
	if len(r.Anomalies) > 0 {
		ew.printf("\nAnomalies\n")
		for _, a := range r.Anomalies {
			col := a.Column
			if col == "" {
				col = "-"
			}
			ew.printf("  %-8s %-18s %-16s %s\n", a.Severity, a.Kind, col, a.Message)
		}
	}
	if len(r.Expectations) > 0 {
		ew.printf("\nExpectations\n")
		for _, e := range r.Expectations {
			status := "ok"
			switch {
			case e.Skipped:
				status = "skipped"
			case !e.Success && e.Severity == SeverityWarning:
				status = "WARNING"
			case !e.Success:
				status = "FAILED"
			}
			ew.printf("  %-8s %-36s %s\n", status, e.Title(), e.Message)
			if len(e.Examples) > 0 {
				ex := make([]string, len(e.Examples))
				for i, x := range e.Examples {
					ex[i] = x.String()
				}
				ew.printf("  %-8s %-36s examples: %s\n", "", "", strings.Join(ex, ", "))
			}
		}
	}
	if len(r.Skipped) > 0 {
		ew.printf("\nNot checked\n")
		for _, s := range r.Skipped {
			ew.printf("  %-18s %-16s %s\n", s.Check, cmp.Or(s.Column, "-"), s.Reason)
		}
	}
	verdict := "PASSED"
	if r.HasErrors() {
		verdict = "FAILED"
	}
	ew.printf("\nResult: %s (%d errors, %d warnings)\n", verdict, r.Errors, r.Warnings)
	return ew.err
}

// Title names an expectation with its column and main parameters, as in
// between(wind, 0, 20).
func (e *ExpectationResult) Title() string {
	args := []string{}
	if e.Column != "" {
		args = append(args, e.Column)
	}
	for _, k := range []string{"q", "min", "max", "values", "pattern"} {
		if x, ok := e.Params[k]; ok {
			args = append(args, fmt.Sprintf("%s=%v", k, x))
		}
	}
	return string(e.Kind) + "(" + strings.Join(args, ", ") + ")"
}

// String formats an example as a value with its count or its place.
func (x Example) String() string {
	s := strconv.Quote(x.Value)
	switch {
	case x.Count > 0:
		s += fmt.Sprintf(" ×%d", x.Count)
	case x.Line > 0:
		s += fmt.Sprintf(" (%s:%d)", x.File, x.Line)
	case x.Row > 0:
		s += fmt.Sprintf(" (%s row %d)", x.File, x.Row)
	}
	return s
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

// A scan reads the target's files once for every check that needs the data.

// scanValue is one non-null value as the checks see it.
type scanValue struct {
	text  string  // canonical text of the data's type (see canonicalText)
	raw   string  // the text in the file (text formats), else text
	num   float64 // the number (timestamps in microseconds, booleans 0/1)
	isNum bool
	file  string
	line  int64
	row   int64
}

func (sv *scanValue) example() Example {
	return Example{Value: sv.raw, File: sv.file, Line: sv.line, Row: sv.row}
}

// valueCheck observes every non-null, non-NaN value of its column.
type valueCheck interface {
	observe(v *scanValue)
}

type scanColumn struct {
	name   string
	typ    Type // the data's type
	checks []valueCheck
}

type scanPlan struct {
	cols []*scanColumn
}

func (s *scanPlan) add(pc *ColumnProfile, c valueCheck) {
	for _, sc := range s.cols {
		if sc.name == pc.Name {
			sc.checks = append(sc.checks, c)
			return
		}
	}
	s.cols = append(s.cols, &scanColumn{name: pc.Name, typ: pc.Type, checks: []valueCheck{c}})
}

// runScan reads the files, when some check needs them.
func (v *validation) runScan(ctx context.Context) error {
	if len(v.scan.cols) == 0 {
		return nil
	}
	names := make([]string, len(v.scan.cols))
	for i, sc := range v.scan.cols {
		names[i] = sc.name
	}
	open := v.t.Open
	if open == nil {
		open = OpenFile
	}
	for _, path := range v.t.Files {
		if err := scanFile(ctx, open, path, v.t.ReadOptions, names, v.scan); err != nil {
			return fmt.Errorf("validate %s: %w", v.t.Name, err)
		}
		v.r.Scanned = append(v.r.Scanned, path)
	}
	return nil
}

func scanFile(ctx context.Context, open func(context.Context, string, ReadOptions) (Reader, error), path string, opts ReadOptions, names []string, plan *scanPlan) error {
	// The projection may name only columns the file has: look first.
	opts.Columns = nil
	r, err := open(ctx, path, opts)
	if err != nil {
		return err
	}
	var present []string
	for _, c := range r.Columns() {
		if slices.Contains(names, c.Name) {
			present = append(present, c.Name)
		}
	}
	if err := r.Close(); err != nil {
		return err
	}
	if len(present) == 0 {
		return nil
	}
	opts.Columns = present
	if r, err = open(ctx, path, opts); err != nil {
		return err
	}
	defer r.Close()
	index := map[string]int{}
	for i, c := range r.Columns() {
		index[c.Name] = i
	}
	var sv scanValue
	sv.file = path
	var buf []byte
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, sc := range plan.cols {
			ci, ok := index[sc.name]
			if !ok || ci >= len(b.Cols) {
				continue // not in this file: reported as missing
			}
			cv := &b.Cols[ci]
			for i := range b.Rows {
				if cv.Null != nil && cv.Null[i] {
					continue
				}
				sv.line, sv.row = rowPos(b, i)
				sv.isNum, sv.num = false, 0
				switch cv.Kind {
				case KindText:
					s := cv.Text[i]
					if IsNullToken(s) {
						continue
					}
					sv.raw, sv.text = s, s
					if sc.typ != TypeString {
						tv := ParseText(s)
						switch tv.Type {
						case TypeInteger:
							sv.num, sv.isNum = float64(tv.Int), true
						case TypeFloat:
							if tv.Float != tv.Float {
								continue // NaN: not a value for value checks
							}
							sv.num, sv.isNum = tv.Float, true
						case TypeBoolean:
							sv.num, sv.isNum = b2f(tv.Bool), true
						case TypeTimestamp:
							sv.num, sv.isNum = float64(tv.Micros), true
						}
						if sv.isNum {
							sv.text, _ = canonicalText(sc.typ, s)
						}
					}
				case KindInt:
					x := cv.Int[i]
					sv.num, sv.isNum = float64(x), true
					buf = strconv.AppendInt(buf[:0], x, 10)
					sv.text = string(buf)
					sv.raw = sv.text
				case KindFloat:
					x := cv.Float[i]
					if x != x {
						continue
					}
					sv.num, sv.isNum = x, true
					sv.text = strconv.FormatFloat(x, 'g', -1, 64)
					sv.raw = sv.text
				case KindBool:
					sv.num, sv.isNum = b2f(cv.Bool[i]), true
					sv.text = strconv.FormatBool(cv.Bool[i])
					sv.raw = sv.text
				case KindTimestamp:
					x := cv.Int[i]
					sv.num, sv.isNum = float64(x), true
					sv.text = FormatMicros(x)
					sv.raw = sv.text
				}
				for _, c := range sc.checks {
					c.observe(&sv)
				}
			}
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// maxDomainCounts bounds the distinct out-of-domain values a scan counts one
// by one; the rest are counted together.
const maxDomainCounts = 10000

type domainScan struct {
	set      map[string]bool
	counts   map[string]int64
	overflow int64
}

func (d *domainScan) observe(v *scanValue) {
	if d.set[v.text] {
		return
	}
	if _, ok := d.counts[v.text]; ok || len(d.counts) < maxDomainCounts {
		d.counts[strings.Clone(v.text)]++
		return
	}
	d.overflow++
}

type rangeScan struct {
	lo, hi       *float64
	below, above int64
}

func (r *rangeScan) observe(v *scanValue) {
	if !v.isNum {
		return
	}
	if r.lo != nil && v.num < *r.lo {
		r.below++
	}
	if r.hi != nil && v.num > *r.hi {
		r.above++
	}
}
