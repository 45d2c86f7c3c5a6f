package dataset

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/mloop/mloop/internal/stats"
)

// Method names a drift statistic. For a reference column R and a current
// column C (nulls, NaN and ±Inf left out) the methods compute:
//
//   - ks: scipy.stats.ks_2samp(R, C, method="auto"): statistic and p-value
//     (exact when max(n, m) ≤ 10000, asymptotic otherwise). Numeric columns.
//   - wasserstein: Evidently's normed Wasserstein distance,
//     scipy.stats.wasserstein_distance(R, C) / max(np.std(R), 0.001); the raw
//     distance is reported in MethodResult.Distance. Numeric columns.
//   - psi, jensenshannon, chisquare: computed on counts binned as
//     Evidently's get_binned_data does. A numeric column whose reference has
//     more than 20 distinct values is cut into the bins of
//     np.histogram_bin_edges(concat(R, C), bins="sturges") (or into
//     DriftOptions.Bins equal-width bins over the same range) and counted as
//     np.histogram counts (bins half-open [a, b), the last one closed);
//     otherwise (string and boolean columns, and numeric columns with at most
//     20 distinct reference values) every value of either side is a
//     category. Results report the bin edges or categories and both count
//     vectors.
//     psi is Σ (c−r)·ln(c/r) over bin proportions, an empty proportion
//     replaced by stats.PSIEpsilon = 0.0001 (Evidently's get_binned_data uses
//     0.0001 too, or a millionth of the smallest non-zero proportion when
//     that is below 0.0001; we always use 0.0001).
//     jensenshannon is scipy.spatial.distance.jensenshannon(r, c, base),
//     base e unless DriftOptions.JSBase says otherwise (Evidently uses 2).
//     chisquare is the test of homogeneity scipy.stats.chi2_contingency on
//     the 2×k table [reference counts; current counts] without the bins that
//     are empty on both sides (Yates' correction when k = 2, as in scipy).
//     Evidently instead tests the current counts for goodness of fit to the
//     reference proportions; the homogeneity test treats both sides as the
//     samples they are.
//   - ztest: the pooled two-proportion z-test of the share of the first
//     category (strings in byte order, false before true, the smaller of two
//     numbers) against all others, as Evidently's z_stat_test. Categorical
//     columns, and numeric columns with at most 2 distinct values.
//
// The p-value tests (ks, chisquare, ztest) find drift when p < threshold,
// the distances (wasserstein, psi, jensenshannon) when statistic ≥
// threshold, wasserstein only when the KS test is also significant (p < 0.01); see
// DefaultThreshold.
type Method string

// Drift methods.
const (
	// MethodKS is the two-sample Kolmogorov–Smirnov test (p-value).
	MethodKS Method = "ks"
	// MethodChiSquare is the chi-squared test of homogeneity on binned or
	// categorical counts (p-value).
	MethodChiSquare Method = "chisquare"
	// MethodJensenShannon is the Jensen–Shannon distance between binned or
	// categorical proportions.
	MethodJensenShannon Method = "jensenshannon"
	// MethodPSI is the population stability index between binned or
	// categorical proportions.
	MethodPSI Method = "psi"
	// MethodWasserstein is the first Wasserstein distance divided by the
	// reference standard deviation (at least 0.001), as Evidently's
	// "wasserstein"; the raw distance is reported alongside.
	MethodWasserstein Method = "wasserstein"
	// MethodZTest is the two-proportion z-test on the share of the first
	// category (p-value).
	MethodZTest Method = "ztest"
)

// Methods lists every drift method in the order reports use.
var Methods = []Method{MethodKS, MethodChiSquare, MethodJensenShannon, MethodPSI, MethodWasserstein, MethodZTest}

// DefaultThreshold returns the threshold a method uses unless
// DriftOptions.Thresholds overrides it: 0.05 for the p-value tests, 0.1 for
// psi and jensenshannon (Evidently's defaults), and 0.05 for the normed
// wasserstein distance, half of Evidently's 0.1.
//
// Why wasserstein differs: the normed distance is the mean absolute shift of
// the distribution's mass in reference standard deviations, so 0.1 lets a
// column's whole distribution move a tenth of a standard deviation unflagged.
// On real data (flights-3m, January against June 2001) that missed the one
// column that materially changed: delay, whose mean rose 43% (6.3 → 9.0
// minutes) and whose 99th percentile rose from 130 to 166 minutes, scores
// 0.0875; distance, whose distribution barely moved, scores 0.025 and the
// same month's origin mix 0.037 (Jensen–Shannon). 0.05 separates the two.
// Because two samples of a few thousand values from one distribution can be
// 0.03–0.05 apart by chance, a wasserstein distance at or above its
// threshold counts as drift only when the two-sample KS test also rejects
// equality at the 1% level (p < 0.01): drift must be both material and
// significant, and a column that did not change is flagged by chance in
// well under 1% of comparisons.
func DefaultThreshold(m Method) float64 {
	switch {
	case m.isPValue():
		return 0.05
	case m == MethodWasserstein:
		return 0.05
	}
	return 0.1
}

// wassersteinGateP is the KS p-value below which a wasserstein distance
// over its threshold counts as drift (see DefaultThreshold).
const wassersteinGateP = 0.01

// isPValue reports whether m decides on a p-value (drift when p < threshold)
// rather than on a distance (drift when statistic ≥ threshold).
func (m Method) isPValue() bool {
	return m == MethodKS || m == MethodChiSquare || m == MethodZTest
}

// numericOnly reports whether m needs numeric values.
func (m Method) numericOnly() bool {
	return m == MethodKS || m == MethodWasserstein
}

var methodAliases = map[string]Method{
	"ks": MethodKS, "kolmogorov-smirnov": MethodKS,
	"chisquare": MethodChiSquare, "chi2": MethodChiSquare, "chi-squared": MethodChiSquare, "chisquared": MethodChiSquare,
	"jensenshannon": MethodJensenShannon, "js": MethodJensenShannon, "jensen-shannon": MethodJensenShannon,
	"psi":         MethodPSI,
	"wasserstein": MethodWasserstein, "wasserstein_norm": MethodWasserstein,
	"ztest": MethodZTest, "z": MethodZTest,
}

// ParseMethods parses a comma-separated list of method names (case
// insensitive; the aliases chi2, js, wasserstein_norm and z are accepted),
// dropping duplicates. An empty or blank string gives nil, meaning the
// defaults; an unknown name is an error listing the valid ones.
func ParseMethods(s string) ([]Method, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []Method
	for _, part := range strings.Split(s, ",") {
		name := strings.ToLower(strings.TrimSpace(part))
		m, ok := methodAliases[name]
		if !ok {
			valid := make([]string, len(Methods))
			for i, m := range Methods {
				valid[i] = string(m)
			}
			return nil, fmt.Errorf("unknown drift method %q (valid: %s)", part, strings.Join(valid, ", "))
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// DriftOptions configure a drift comparison; the zero value gives Evidently's
// defaults. The default method of a column follows Evidently's
// get_default_stattest, with n the number of distinct values of both sides
// together: a reference of at most 1000 values gets a p-value test (ks for
// a numeric column with n > 5, else chisquare when n > 2 and ztest when
// n ≤ 2), a larger one a distance (wasserstein for a numeric column with
// n > 5, else jensenshannon). Boolean and string columns are categorical;
// integer, float and timestamp columns numeric.
type DriftOptions struct {
	// Methods, when set, replaces the default method of every column.
	// Methods that do not apply to a column (ks and wasserstein on a string
	// or boolean column) are skipped for it, with a note.
	Methods []Method
	// ColumnMethods sets the methods of single columns (it wins over
	// Methods); a method that does not apply to its column is an error.
	ColumnMethods map[string][]Method
	// Thresholds overrides DefaultThreshold per method.
	Thresholds map[Method]float64
	// DriftShare is the share of drifted columns at which the dataset counts
	// as drifted; 0 means 0.5.
	DriftShare float64
	// Columns restricts the comparison to these columns (each must exist on
	// both sides); empty means every column present on both sides, in the
	// reference's order.
	Columns []string
	// JSBase is the logarithm base of the Jensen–Shannon distance; 0 means e.
	JSBase float64
	// Bins, when positive, cuts numeric columns into this many equal-width
	// bins for psi, jensenshannon and chisquare instead of Sturges' rule.
	Bins int
}

// DriftReport is the outcome of a drift comparison.
type DriftReport struct {
	Mode         string        `json:"mode"` // "exact" (from the data) or "profile" (from two profiles)
	Reference    string        `json:"reference,omitempty"`
	Current      string        `json:"current,omitempty"`
	Columns      []ColumnDrift `json:"columns"`
	Drifted      int           `json:"drifted"`
	Share        float64       `json:"share"`
	DriftShare   float64       `json:"drift_share"`
	DatasetDrift bool          `json:"dataset_drift"`
	// OnlyInReference and OnlyInCurrent list the columns that are not on
	// both sides and so were not compared (a renamed or dropped column
	// shows in both lists); validation reports them as anomalies.
	OnlyInReference []string `json:"only_in_reference,omitempty"`
	OnlyInCurrent   []string `json:"only_in_current,omitempty"`
}

// ColumnDrift is one column's comparison. Method is the method whose
// decision is the column's: the default method, or the first one asked for.
type ColumnDrift struct {
	Column   string         `json:"column"`
	Type     Type           `json:"type"`
	RefCount int64          `json:"ref_count"`
	CurCount int64          `json:"cur_count"`
	Method   Method         `json:"method,omitempty"`
	Drift    bool           `json:"drift"`
	Results  []MethodResult `json:"results"`
	Note     string         `json:"note,omitempty"`
}

// MethodResult is one method's result on one column. PValue is set for the
// p-value tests, Distance (the raw Wasserstein distance) for wasserstein;
// binned methods report the bin edges (numeric bins) or categories and both
// count vectors they used.
type MethodResult struct {
	Method     Method    `json:"method"`
	Statistic  float64   `json:"statistic"`
	PValue     *float64  `json:"p_value,omitempty"`
	Threshold  float64   `json:"threshold"`
	Drift      bool      `json:"drift"`
	Distance   *float64  `json:"distance,omitempty"`
	BinEdges   []float64 `json:"bin_edges,omitempty"`
	Categories []string  `json:"categories,omitempty"`
	RefCounts  []float64 `json:"ref_counts,omitempty"`
	CurCounts  []float64 `json:"cur_counts,omitempty"`
	Note       string    `json:"note,omitempty"`
}

// Result returns the column's result for method m, or nil.
func (c *ColumnDrift) Result(m Method) *MethodResult {
	for i := range c.Results {
		if c.Results[i].Method == m {
			return &c.Results[i]
		}
	}
	return nil
}

// Column returns the drift of the named column, or nil.
func (r *DriftReport) Column(name string) *ColumnDrift {
	for i := range r.Columns {
		if r.Columns[i].Column == name {
			return &r.Columns[i]
		}
	}
	return nil
}

// WriteText writes the report as a table (one row per column and method)
// followed by the dataset verdict.
func (r *DriftReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COLUMN\tTYPE\tMETHOD\tSTATISTIC\tP-VALUE\tTHRESHOLD\tDRIFT")
	starred := false
	for _, c := range r.Columns {
		if len(c.Results) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t%s\n", c.Column, c.Type, yesNo(c.Drift))
		}
		for i, m := range c.Results {
			name, typ := c.Column, string(c.Type)
			if i > 0 {
				name, typ = "", ""
			}
			method := string(m.Method)
			if m.Method == c.Method && len(c.Results) > 1 {
				method += "*"
				starred = true
			}
			p := "-"
			if m.PValue != nil {
				p = fmtFloat(*m.PValue)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, typ, method, fmtFloat(m.Statistic), p, fmtFloat(m.Threshold), yesNo(m.Drift))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write drift report: %w", err)
	}
	var notes []string
	for _, c := range r.Columns {
		if c.Note != "" {
			notes = append(notes, fmt.Sprintf("%s: %s", c.Column, c.Note))
		}
		for _, m := range c.Results {
			if m.Note != "" {
				notes = append(notes, fmt.Sprintf("%s/%s: %s", c.Column, m.Method, m.Note))
			}
		}
	}
	if len(r.OnlyInReference) > 0 {
		notes = append(notes, "not compared, only in the reference: "+strings.Join(r.OnlyInReference, ", "))
	}
	if len(r.OnlyInCurrent) > 0 {
		notes = append(notes, "not compared, only in the current data: "+strings.Join(r.OnlyInCurrent, ", "))
	}
	var b strings.Builder
	for _, n := range notes {
		b.WriteString("note: " + n + "\n")
	}
	if starred {
		b.WriteString("* the method that decides the column\n")
	}
	verdict, rel := "no dataset drift", "<"
	if r.DatasetDrift {
		verdict, rel = "DATASET DRIFT", "≥"
	}
	fmt.Fprintf(&b, "%s (%s): %d of %d columns drifted, share %.3g %s drift_share %.3g\n",
		verdict, r.Mode, r.Drifted, len(r.Columns), r.Share, rel, r.DriftShare)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write drift report: %w", err)
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func fmtFloat(x float64) string { return strconv.FormatFloat(x, 'g', 4, 64) }

// columnKind groups column types by what drift can do with them.
type columnKind uint8

const (
	kindNumeric     columnKind = iota // integer, float
	kindTimestamp                     // numeric, but not comparable with plain numbers
	kindBoolean                       // categorical with categories false, true
	kindCategorical                   // strings
)

func kindOf(t Type) (columnKind, error) {
	switch t {
	case TypeInteger, TypeFloat:
		return kindNumeric, nil
	case TypeTimestamp:
		return kindTimestamp, nil
	case TypeBoolean:
		return kindBoolean, nil
	case TypeString:
		return kindCategorical, nil
	}
	return 0, fmt.Errorf("unknown column type %q", t)
}

func (k columnKind) numeric() bool { return k == kindNumeric || k == kindTimestamp }

// binning is the input of the binned methods (psi, jensenshannon,
// chisquare): numeric bins (Edges, len(Ref)+1 of them) or categories.
type binning struct {
	Edges      []float64
	Categories []string
	Ref, Cur   []float64
	Note       string
}

// colSource provides a column's method inputs, computed from the data
// (exact) or from profiles (approximate).
type colSource interface {
	// counts returns the non-null value counts of both sides.
	counts() (ref, cur int64)
	// distinct returns the number of distinct values of both sides together.
	distinct() int64
	// ks returns the KS statistic and p-value.
	ks() (stats.TestResult, string, error)
	// wasserstein returns the raw distance and the reference's population
	// standard deviation.
	wasserstein() (dist, refStd float64, note string, err error)
	// binned returns the counts psi, jensenshannon and chisquare use.
	binned() (*binning, error)
	// firstCategory returns the count of the first category on each side
	// and its name, for the z-test.
	firstCategory() (ref, cur float64, name string, ncat int64, note string, err error)
}

// normalized checks and completes opts.
func (o DriftOptions) normalized() (DriftOptions, error) {
	if o.DriftShare == 0 {
		o.DriftShare = 0.5
	}
	if !(o.DriftShare > 0 && o.DriftShare <= 1) {
		return o, fmt.Errorf("drift_share %v: want a share in (0, 1]", o.DriftShare)
	}
	if o.JSBase != 0 && (!(o.JSBase > 0) || o.JSBase == 1 || math.IsInf(o.JSBase, 0)) {
		return o, fmt.Errorf("jensen-shannon base %v: want a positive base other than 1", o.JSBase)
	}
	if o.Bins < 0 || o.Bins > 1<<20 {
		return o, fmt.Errorf("bins %d: want a count up to 1048576, or 0 for Sturges' rule", o.Bins)
	}
	for m, t := range o.Thresholds {
		if _, ok := methodAliases[string(m)]; !ok {
			return o, fmt.Errorf("threshold for unknown drift method %q", m)
		}
		if math.IsNaN(t) || t < 0 || math.IsInf(t, 0) {
			return o, fmt.Errorf("threshold %v for %s: want a finite non-negative number", t, m)
		}
	}
	check := func(ms []Method) error {
		for _, m := range ms {
			if _, ok := methodAliases[string(m)]; !ok {
				return fmt.Errorf("unknown drift method %q", m)
			}
		}
		return nil
	}
	if err := check(o.Methods); err != nil {
		return o, err
	}
	for c, ms := range o.ColumnMethods {
		if err := check(ms); err != nil {
			return o, fmt.Errorf("column %q: %w", c, err)
		}
	}
	return o, nil
}

func (o *DriftOptions) threshold(m Method) float64 {
	if t, ok := o.Thresholds[m]; ok {
		return t
	}
	return DefaultThreshold(m)
}

// defaultMethod is Evidently's get_default_stattest.
func defaultMethod(kind columnKind, refCount, nValues int64) Method {
	numeric := kind.numeric()
	if refCount <= 1000 {
		if numeric && nValues > 5 {
			return MethodKS
		}
		if nValues > 2 {
			return MethodChiSquare
		}
		return MethodZTest
	}
	if numeric && nValues > 5 {
		return MethodWasserstein
	}
	return MethodJensenShannon
}

// pairedColumn is a column to compare, with its source.
type pairedColumn struct {
	name string
	typ  Type
	kind columnKind
	src  colSource
}

// selectColumns pairs the columns to compare: opts.Columns, or the
// reference's columns that the current data also has, in reference order. It
// also returns the columns found on one side only.
func selectColumns(opts *DriftOptions, refNames, curNames []string) (names, onlyRef, onlyCur []string, err error) {
	onlyRef = slices.DeleteFunc(slices.Clone(refNames), func(n string) bool { return slices.Contains(curNames, n) })
	onlyCur = slices.DeleteFunc(slices.Clone(curNames), func(n string) bool { return slices.Contains(refNames, n) })
	if len(opts.Columns) > 0 {
		for _, c := range opts.Columns {
			if !slices.Contains(refNames, c) {
				return nil, nil, nil, fmt.Errorf("column %q: not in the reference", c)
			}
			if !slices.Contains(curNames, c) {
				return nil, nil, nil, fmt.Errorf("column %q: not in the current data", c)
			}
		}
		return opts.Columns, onlyRef, onlyCur, nil
	}
	for _, c := range refNames {
		if slices.Contains(curNames, c) {
			names = append(names, c)
		}
	}
	if len(names) == 0 {
		return nil, nil, nil, errors.New("the reference and current data have no column in common")
	}
	for c := range opts.ColumnMethods {
		if !slices.Contains(names, c) {
			return nil, nil, nil, fmt.Errorf("methods given for column %q, which is not on both sides", c)
		}
	}
	return names, onlyRef, onlyCur, nil
}

// columnNames returns the names of cols, in order.
func columnNames[C any](cols []C, name func(C) string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = name(c)
	}
	return out
}

// compareTypes checks that two sides of a column can be compared and
// returns the type to report. A side without values (refN or curN 0; an
// all-null text column loads as string) takes the other side's type: there
// is nothing to compare.
func compareTypes(name string, ref Type, refN int64, cur Type, curN int64) (Type, columnKind, error) {
	if refN == 0 && curN > 0 {
		ref = cur
	} else if curN == 0 {
		cur = ref
	}
	rk, err := kindOf(ref)
	if err != nil {
		return "", 0, fmt.Errorf("column %q: reference: %w", name, err)
	}
	ck, err := kindOf(cur)
	if err != nil {
		return "", 0, fmt.Errorf("column %q: current: %w", name, err)
	}
	if rk != ck {
		return "", 0, fmt.Errorf("column %q: reference type %s cannot be compared with current type %s", name, ref, cur)
	}
	return ref, rk, nil
}

// runDrift evaluates every column (in parallel, one column per worker at a
// time) and fills in the dataset verdict.
func runDrift(mode string, cols []pairedColumn, onlyRef, onlyCur []string, opts DriftOptions) (*DriftReport, error) {
	rep := &DriftReport{Mode: mode, Columns: make([]ColumnDrift, len(cols)), DriftShare: opts.DriftShare, OnlyInReference: onlyRef, OnlyInCurrent: onlyCur}
	errs := make([]error, len(cols))
	workers := min(runtime.GOMAXPROCS(0), len(cols))
	var next int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(cols) {
					return
				}
				rep.Columns[i], errs[i] = evaluateColumn(cols[i], &opts)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, c := range rep.Columns {
		if c.Drift {
			rep.Drifted++
		}
	}
	rep.Share = float64(rep.Drifted) / float64(len(rep.Columns))
	rep.DatasetDrift = rep.Share >= rep.DriftShare
	return rep, nil
}

// evaluateColumn runs a column's methods.
func evaluateColumn(pc pairedColumn, opts *DriftOptions) (ColumnDrift, error) {
	refN, curN := pc.src.counts()
	cd := ColumnDrift{Column: pc.name, Type: pc.typ, RefCount: refN, CurCount: curN, Results: []MethodResult{}}
	switch {
	case refN == 0 && curN == 0:
		cd.Note = "no non-null values on either side: nothing to compare"
		return cd, nil
	case curN == 0:
		cd.Drift = true
		cd.Note = fmt.Sprintf("the current data has no non-null values (the reference has %d): counted as drifted, no statistic computed", refN)
		return cd, nil
	case refN == 0:
		cd.Drift = true
		cd.Note = fmt.Sprintf("the reference has no non-null values (the current data has %d): counted as drifted, no statistic computed", curN)
		return cd, nil
	}
	methods, explicit := opts.ColumnMethods[pc.name], true
	if len(methods) == 0 {
		methods, explicit = opts.Methods, false
	}
	if len(methods) == 0 {
		methods = []Method{defaultMethod(pc.kind, refN, pc.src.distinct())}
	}
	var skipped []string
	src := &ksOnce{colSource: pc.src} // ks and wasserstein's gate share one test
	for _, m := range methods {
		if why := notApplicable(m, pc); why != "" {
			if explicit {
				return cd, fmt.Errorf("column %q: method %s %s", pc.name, m, why)
			}
			skipped = append(skipped, fmt.Sprintf("%s (%s)", m, why))
			continue
		}
		res, err := evaluateMethod(src, m, opts)
		if err != nil {
			return cd, fmt.Errorf("column %q: %s: %w", pc.name, m, err)
		}
		cd.Results = append(cd.Results, res)
	}
	if len(skipped) > 0 {
		cd.Note = "skipped " + strings.Join(skipped, ", ")
	}
	if len(cd.Results) == 0 {
		return cd, fmt.Errorf("column %q: none of the methods %v applies to a %s column", pc.name, methods, pc.typ)
	}
	cd.Method = cd.Results[0].Method
	cd.Drift = cd.Results[0].Drift
	return cd, nil
}

// ksOnce computes a column's KS test at most once.
type ksOnce struct {
	colSource
	done bool
	r    stats.TestResult
	note string
	err  error
}

func (k *ksOnce) ks() (stats.TestResult, string, error) {
	if !k.done {
		k.r, k.note, k.err = k.colSource.ks()
		k.done = true
	}
	return k.r, k.note, k.err
}

// notApplicable says why method m does not apply to a column, or "".
// ks and wasserstein need numbers; ztest compares the share of one value, so
// a numeric column must have at most two distinct values for it (as
// Evidently picks it for numbers only then).
func notApplicable(m Method, pc pairedColumn) string {
	switch {
	case m.numericOnly() && !pc.kind.numeric():
		return fmt.Sprintf("needs a numeric column, not %s", pc.typ)
	case m == MethodZTest && pc.kind.numeric():
		if n := pc.src.distinct(); n > 2 {
			return fmt.Sprintf("needs a categorical column or at most 2 distinct values, not %d", n)
		}
	}
	return ""
}

// evaluateMethod runs one method on a column.
func evaluateMethod(src colSource, m Method, opts *DriftOptions) (MethodResult, error) {
	res := MethodResult{Method: m, Threshold: opts.threshold(m)}
	var p float64
	switch m {
	case MethodKS:
		r, note, err := src.ks()
		if err != nil {
			return res, err
		}
		res.Statistic, p, res.Note = r.Statistic, r.PValue, note
	case MethodWasserstein:
		d, std, note, err := src.wasserstein()
		if err != nil {
			return res, err
		}
		res.Statistic = d / max(std, 0.001)
		res.Distance = &d
		res.Note = note
		if res.Statistic >= res.Threshold {
			// The significance gate (see DefaultThreshold): a distance
			// above the threshold counts only when the KS test says the
			// difference is not sampling noise.
			r, _, err := src.ks()
			if err != nil {
				return res, err
			}
			if r.PValue >= wassersteinGateP {
				res.Note = joinNotes(res.Note, fmt.Sprintf("distance above the threshold but not significant (ks p-value %.3g ≥ %g): sampling noise, no drift", r.PValue, wassersteinGateP))
				return res, nil
			}
		}
	case MethodPSI, MethodJensenShannon, MethodChiSquare:
		b, err := src.binned()
		if err != nil {
			return res, err
		}
		res.BinEdges, res.Categories, res.RefCounts, res.CurCounts, res.Note = b.Edges, b.Categories, b.Ref, b.Cur, b.Note
		switch m {
		case MethodPSI:
			res.Statistic, err = stats.PSI(b.Ref, b.Cur)
		case MethodJensenShannon:
			res.Statistic, err = stats.JensenShannon(b.Ref, b.Cur, opts.JSBase)
		case MethodChiSquare:
			var note string
			res.Statistic, p, note, err = chiSquare(b)
			res.Note = joinNotes(res.Note, note)
		}
		if err != nil {
			return res, err
		}
	case MethodZTest:
		x1, x2, name, ncat, note, err := src.firstCategory()
		if err != nil {
			return res, err
		}
		n1, n2 := src.counts()
		r, err := stats.TwoProportionZ(int64(math.Round(x1)), n1, int64(math.Round(x2)), n2)
		if err != nil {
			return res, err
		}
		res.Statistic, p = r.Statistic, r.PValue
		res.Categories = []string{name, "(others)"}
		res.RefCounts = []float64{x1, float64(n1) - x1}
		res.CurCounts = []float64{x2, float64(n2) - x2}
		if ncat > 2 {
			note = joinNotes(note, fmt.Sprintf("share of %q against the %d other values", name, ncat-1))
		}
		res.Note = note
	default:
		return res, fmt.Errorf("unknown drift method %q", m)
	}
	if m.isPValue() {
		res.PValue = &p
		res.Drift = p < res.Threshold
	} else {
		res.Drift = res.Statistic >= res.Threshold
	}
	if math.IsNaN(res.Statistic) || math.IsInf(res.Statistic, 0) || math.IsNaN(p) {
		return res, fmt.Errorf("statistic is not a finite number (%v, p-value %v)", res.Statistic, p)
	}
	return res, nil
}

// chiSquare runs chi2_contingency on the 2×k table of a binning, without the
// bins empty on both sides. One remaining bin leaves nothing to test:
// statistic 0, p-value 1.
func chiSquare(b *binning) (stat, p float64, note string, err error) {
	var ref, cur []float64
	for i := range b.Ref {
		if b.Ref[i]+b.Cur[i] > 0 {
			ref = append(ref, b.Ref[i])
			cur = append(cur, b.Cur[i])
		}
	}
	if dropped := len(b.Ref) - len(ref); dropped > 0 {
		note = fmt.Sprintf("%d empty bins left out of the contingency table", dropped)
	}
	if len(ref) < 2 {
		return 0, 1, joinNotes(note, "one value on both sides: nothing to test"), nil
	}
	r, err := stats.Chi2Contingency([][]float64{ref, cur}, true)
	if err != nil {
		return 0, 0, note, err
	}
	return r.Statistic, r.PValue, note, nil
}

func joinNotes(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// DriftTables compares two tables exactly: every statistic is computed from
// all non-null, finite values of each column, as Method describes. Columns
// are compared in parallel (GOMAXPROCS at a time); each column's values are
// sorted once per side and shared by its methods. A column with no values on
// one side is reported as drifted, without statistics, with a note; a column
// whose types differ between the sides (string against numeric, say) is an
// error.
func DriftTables(ref, cur *Table, opts DriftOptions) (*DriftReport, error) {
	if ref == nil || cur == nil {
		return nil, errors.New("drift: missing reference or current table")
	}
	opts, err := opts.normalized()
	if err != nil {
		return nil, fmt.Errorf("drift: %w", err)
	}
	colName := func(c *TableColumn) string { return c.Name }
	names, onlyRef, onlyCur, err := selectColumns(&opts, columnNames(ref.Columns, colName), columnNames(cur.Columns, colName))
	if err != nil {
		return nil, fmt.Errorf("drift: %w", err)
	}
	cols := make([]pairedColumn, len(names))
	for i, n := range names {
		rc, cc := ref.Column(n), cur.Column(n)
		typ, kind, err := compareTypes(n, rc.Type, int64(rc.Count()), cc.Type, int64(cc.Count()))
		if err != nil {
			return nil, fmt.Errorf("drift: %w", err)
		}
		for _, c := range []*TableColumn{rc, cc} {
			if err := checkCodes(c); err != nil {
				return nil, fmt.Errorf("drift: %w", err)
			}
		}
		cols[i] = pairedColumn{name: n, typ: typ, kind: kind, src: &exactSource{kind: kind, ref: rc, cur: cc, bins: opts.Bins}}
	}
	return runDrift("exact", cols, onlyRef, onlyCur, opts)
}

// exactSource computes method inputs from two table columns. It is used by
// one goroutine; results are computed on first use and shared.
type exactSource struct {
	kind     columnKind
	ref, cur *TableColumn
	bins     int

	sorted     bool
	rs, cs     []float64 // sorted values (numeric and boolean)
	cats       *binning  // per-value categories
	binnedData *binning
}

func (s *exactSource) counts() (int64, int64) {
	return int64(s.ref.Count()), int64(s.cur.Count())
}

func (s *exactSource) sort() {
	if s.sorted {
		return
	}
	s.sorted = true
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.rs = sortedCopy(s.ref.Values)
	}()
	s.cs = sortedCopy(s.cur.Values)
	wg.Wait()
}

func (s *exactSource) distinct() int64 {
	if s.kind == kindCategorical || s.kind == kindBoolean {
		return int64(len(s.categories().Categories))
	}
	s.sort()
	return unionDistinct(s.rs, s.cs)
}

func (s *exactSource) ks() (stats.TestResult, string, error) {
	s.sort()
	r, err := stats.KSTwoSampleSorted(s.rs, s.cs, stats.KSAuto)
	return r, "", err
}

func (s *exactSource) wasserstein() (float64, float64, string, error) {
	s.sort()
	d := stats.WassersteinSorted(s.rs, s.cs)
	return d, populationStd(s.ref.Values), "", nil
}

// populationStd is np.std(x): the square root of the mean squared deviation
// from the mean, computed in two passes.
func populationStd(x []float64) float64 {
	var sum float64
	for _, v := range x {
		sum += v
	}
	mean := sum / float64(len(x))
	var ss float64
	for _, v := range x {
		d := v - mean
		ss += d * d
	}
	return math.Sqrt(ss / float64(len(x)))
}

// categories returns per-value counts: strings in byte order, booleans
// false then true, numbers ascending (formatted with strconv 'f', -1).
func (s *exactSource) categories() *binning {
	if s.cats != nil {
		return s.cats
	}
	switch s.kind {
	case kindCategorical:
		s.cats = countCategories(s.ref, s.cur)
	default:
		s.sort()
		s.cats = countSortedValues(s.rs, s.cs, s.kind == kindBoolean)
	}
	return s.cats
}

func (s *exactSource) binned() (*binning, error) {
	if s.binnedData != nil {
		return s.binnedData, nil
	}
	if !s.kind.numeric() {
		s.binnedData = s.categories()
		return s.binnedData, nil
	}
	s.sort()
	if countDistinctSorted(s.rs) <= 20 {
		s.binnedData = s.categories()
		return s.binnedData, nil
	}
	lo, hi := min(s.rs[0], s.cs[0]), max(s.rs[len(s.rs)-1], s.cs[len(s.cs)-1])
	edges := histogramEdges(lo, hi, int64(len(s.rs)+len(s.cs)), s.bins)
	s.binnedData = &binning{Edges: edges, Ref: histogramSorted(s.rs, edges), Cur: histogramSorted(s.cs, edges)}
	return s.binnedData, nil
}

func (s *exactSource) firstCategory() (float64, float64, string, int64, string, error) {
	c := s.categories()
	return c.Ref[0], c.Cur[0], c.Categories[0], int64(len(c.Categories)), "", nil
}

// histogramEdges returns np.histogram_bin_edges over [lo, hi] for n values:
// bins="sturges" when bins is 0, else bins equal-width bins. An empty range
// is widened to [lo−0.5, hi+0.5] as numpy does.
func histogramEdges(lo, hi float64, n int64, bins int) []float64 {
	k := bins
	if k <= 0 {
		// numpy: width = ptp / (log2(n) + 1); bins = ceil(range / width),
		// or 1 when the width is 0.
		ptp := hi - lo
		width := ptp / (math.Log2(float64(n)) + 1)
		k = 1
		if width != 0 {
			k = int(math.Ceil((hi - lo) / width))
		}
	}
	if lo == hi {
		lo, hi = lo-0.5, hi+0.5
	}
	// np.linspace(lo, hi, k+1): i*step + lo, the last edge exactly hi.
	edges := make([]float64, k+1)
	step := (hi - lo) / float64(k)
	for i := range edges {
		if step == 0 {
			edges[i] = float64(i)/float64(k)*(hi-lo) + lo
		} else {
			edges[i] = float64(i)*step + lo
		}
	}
	edges[k] = hi
	return edges
}

// histogramSorted counts sorted values into bins as np.histogram with
// explicit edges: bin i holds edges[i] ≤ x < edges[i+1], the last bin also
// x = edges[k]; values outside [edges[0], edges[k]] are not counted.
func histogramSorted(sorted []float64, edges []float64) []float64 {
	k := len(edges) - 1
	counts := make([]float64, k)
	prev := sort.SearchFloat64s(sorted, edges[0])
	for i := 1; i <= k; i++ {
		var idx int
		if i < k {
			idx = prev + sort.SearchFloat64s(sorted[prev:], edges[i])
		} else {
			// searchsorted(..., "right"): first index with x > last edge.
			idx = prev + sort.Search(len(sorted)-prev, func(j int) bool { return sorted[prev+j] > edges[k] })
		}
		counts[i-1] = float64(idx - prev)
		prev = idx
	}
	return counts
}

// countDistinctSorted counts the distinct values of a sorted slice.
func countDistinctSorted(x []float64) int64 {
	if len(x) == 0 {
		return 0
	}
	n := int64(1)
	for i := 1; i < len(x); i++ {
		if x[i] != x[i-1] {
			n++
		}
	}
	return n
}

// unionDistinct counts the distinct values of two sorted slices together.
func unionDistinct(a, b []float64) int64 {
	var n int64
	i, j := 0, 0
	last, have := 0.0, false
	for i < len(a) || j < len(b) {
		var v float64
		if j >= len(b) || (i < len(a) && a[i] <= b[j]) {
			v = a[i]
			i++
		} else {
			v = b[j]
			j++
		}
		if !have || v != last {
			n++
			last, have = v, true
		}
	}
	return n
}

// countSortedValues counts each distinct value of two sorted slices.
func countSortedValues(a, b []float64, boolean bool) *binning {
	out := &binning{}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var v float64
		switch {
		case i >= len(a):
			v = b[j]
		case j >= len(b):
			v = a[i]
		default:
			v = min(a[i], b[j])
		}
		i0, j0 := i, j
		for i < len(a) && a[i] == v {
			i++
		}
		for j < len(b) && b[j] == v {
			j++
		}
		out.Categories = append(out.Categories, formatCategory(v, boolean))
		out.Ref = append(out.Ref, float64(i-i0))
		out.Cur = append(out.Cur, float64(j-j0))
	}
	return out
}

// formatCategory names a numeric value used as a category.
func formatCategory(v float64, boolean bool) string {
	if boolean {
		return strconv.FormatBool(v != 0)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// countCategories counts each distinct string of both sides (from
// dictionary codes where a side has them); categories in byte order.
func countCategories(ref, cur *TableColumn) *binning {
	rn, rc := sideCounts(ref)
	cn, cc := sideCounts(cur)
	index := make(map[string]int, len(rn)+len(cn))
	var names []string
	for _, n := range slices.Concat(rn, cn) {
		if _, ok := index[n]; !ok {
			index[n] = 0
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for i, n := range names {
		index[n] = i
	}
	out := &binning{Categories: names, Ref: make([]float64, len(names)), Cur: make([]float64, len(names))}
	for i, n := range rn {
		out.Ref[index[n]] += rc[i]
	}
	for i, n := range cn {
		out.Cur[index[n]] += cc[i]
	}
	return out
}

// checkCodes verifies that a dictionary-encoded column's codes are in its
// dictionary.
func checkCodes(c *TableColumn) error {
	if c.Type != TypeString || c.Dict == nil {
		return nil
	}
	n := uint32(len(c.Dict))
	for i, code := range c.Codes {
		if code >= n {
			return fmt.Errorf("column %q: value %d has code %d, beyond its dictionary of %d", c.Name, i, code, n)
		}
	}
	return nil
}

// sideCounts returns the distinct values of a string column and their
// counts: from its codes (dictionary entries it does not use left out), or
// from its text.
func sideCounts(c *TableColumn) ([]string, []float64) {
	if c.Dict == nil {
		var sc stringCounter
		counts := sc.count(c.Text, nil)
		return sc.names, counts
	}
	n := len(c.Dict)
	counts := make([]int64, n)
	for _, code := range c.Codes {
		counts[code]++ // checkCodes made sure it is in range
	}
	var names []string
	var out []float64
	for i, k := range counts {
		if k > 0 {
			names = append(names, c.Dict[i])
			out = append(out, float64(k))
		}
	}
	return names, out
}

// stringCounter assigns dense indices to strings. Strings of 1 to 7 bytes
// (codes, labels: most categorical values) are packed with their length
// into a uint64 and found in an open-addressing table, several times
// faster than a map[string]; others go through a map.
type stringCounter struct {
	slots []shortSlot // power-of-two size; key 0 marks an empty slot
	used  int
	long  map[string]int32
	names []string
}

type shortSlot struct {
	key uint64
	idx int32
}

// count returns the count of every string seen so far (by index) among xs,
// added to counts.
func (c *stringCounter) count(xs []string, counts []float64) []float64 {
	for _, s := range xs {
		i := c.index(s)
		for int(i) >= len(counts) {
			counts = append(counts, 0)
		}
		counts[i]++
	}
	return counts
}

func (c *stringCounter) index(s string) int32 {
	n := len(s)
	if n == 0 || n > 7 {
		if c.long == nil {
			c.long = make(map[string]int32)
		}
		i, ok := c.long[s]
		if !ok {
			i = c.add(s)
			c.long[s] = i
		}
		return i
	}
	key := uint64(n) << 56
	for j := 0; j < n; j++ {
		key |= uint64(s[j]) << (8 * j)
	}
	if 2*(c.used+1) > len(c.slots) {
		c.grow()
	}
	mask := uint64(len(c.slots) - 1)
	for h := (key * 0x9e3779b97f4a7c15) >> 32 & mask; ; h = (h + 1) & mask {
		sl := &c.slots[h]
		if sl.key == key {
			return sl.idx
		}
		if sl.key == 0 {
			sl.key, sl.idx = key, c.add(s)
			c.used++
			return sl.idx
		}
	}
}

func (c *stringCounter) add(s string) int32 {
	c.names = append(c.names, strings.Clone(s))
	return int32(len(c.names) - 1)
}

func (c *stringCounter) grow() {
	old := c.slots
	c.slots = make([]shortSlot, max(64, 2*len(old)))
	mask := uint64(len(c.slots) - 1)
	for _, sl := range old {
		if sl.key == 0 {
			continue
		}
		h := (sl.key * 0x9e3779b97f4a7c15) >> 32 & mask
		for c.slots[h].key != 0 {
			h = (h + 1) & mask
		}
		c.slots[h] = sl
	}
}

// sortedCopy returns x sorted ascending. Integer-valued data with a modest
// range is counting-sorted (O(n + range)), anything else radix-sorted on the
// IEEE bits (O(n)); both give exactly the order sort.Float64s gives (x holds
// no NaN), except that -0 may come out as +0.
func sortedCopy(x []float64) []float64 {
	out := make([]float64, len(x))
	if len(x) < 4096 {
		copy(out, x)
		slices.Sort(out)
		return out
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	integral := true
	for _, v := range x {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
		if integral && float64(int64(v)) != v { // false for NaN, ±Inf and |v| ≥ 2⁶³
			integral = false
		}
	}
	if integral && hi-lo < float64(max(4*len(x), 1<<16)) {
		countingSort(x, out, lo, int(hi-lo)+1)
		return out
	}
	radixSort(x, out)
	return out
}

func countingSort(x, out []float64, lo float64, span int) {
	counts := make([]int32, span)
	for _, v := range x {
		counts[int(v-lo)]++
	}
	k := 0
	for i, c := range counts {
		if c == 0 {
			continue
		}
		v := lo + float64(i)
		for end := k + int(c); k < end; k++ {
			out[k] = v
		}
	}
}

// radixSort sorts x into out with an LSD radix sort over order-preserving
// 64-bit keys, 16 bits at a time, skipping digits every key shares.
func radixSort(x, out []float64) {
	n := len(x)
	keys := make([]uint64, n)
	tmp := make([]uint64, n)
	for i, v := range x {
		b := math.Float64bits(v)
		if b>>63 == 1 {
			b = ^b
		} else {
			b |= 1 << 63
		}
		keys[i] = b
	}
	var counts [1 << 16]int
	for shift := uint(0); shift < 64; shift += 16 {
		clear(counts[:])
		for _, k := range keys {
			counts[(k>>shift)&0xffff]++
		}
		if counts[(keys[0]>>shift)&0xffff] == n {
			continue // every key has this digit
		}
		sum := 0
		for i, c := range counts {
			counts[i] = sum
			sum += c
		}
		for _, k := range keys {
			d := (k >> shift) & 0xffff
			tmp[counts[d]] = k
			counts[d]++
		}
		keys, tmp = tmp, keys
	}
	for i, b := range keys {
		if b>>63 == 1 {
			b &^= 1 << 63
		} else {
			b = ^b
		}
		out[i] = math.Float64frombits(b)
	}
}
