package dataset

import (
	"fmt"
	"hash/maphash"
	"math"
	"regexp"
	"slices"
	"strings"
)

// Expectations are decided from the profile whenever it can decide them:
//
//   - not_null, mean_between, row_count_between: always, exactly;
//   - quantile_between: always, from the quantile sketch (within its rank
//     error, which the result's message states);
//   - in_set, unique, regex on string, integer and boolean columns: exactly
//     while the column's frequent counts are exact (each distinct value is
//     checked once, with its count);
//   - between: exactly when the column's minimum and maximum are inside the
//     bounds, or every value is outside; otherwise from the quantile
//     sketch's CDF when the estimate is farther from Mostly than the
//     sketch's error, or when Mostly is 1 and the minimum or maximum is
//     outside.
//
// The rest is decided by the scan of the target's files; without files it is
// reported as skipped, or, for between, decided from the estimate and marked
// approximate.

func (v *validation) expectationChecks() {
	for _, e := range v.s.Expectations {
		v.results = append(v.results, v.expectation(e))
	}
}

// expectation evaluates one expectation and returns the slot that yields
// its result once the scan has run.
func (v *validation) expectation(e *Expectation) func() ExpectationResult {
	colType := Type("")
	pc := v.p.Column(e.Column)
	if pc != nil {
		colType = pc.Type
	} else if cs := v.s.Column(e.Column); cs != nil {
		colType = cs.Type
	}
	res := &ExpectationResult{Kind: e.Kind, Column: e.Column, Params: expectationParams(e, colType), Severity: e.Severity.orDefault()}
	if e.Kind.usesMostly() {
		res.Mostly = e.MostlyOrDefault()
	}
	done := func() ExpectationResult { return *res }
	if e.Kind == ExpectRowCountBetween {
		rows := float64(v.p.Rows)
		res.Observed = &rows
		res.Success = inBounds(rows, e.Min, e.Max)
		res.Message = fmt.Sprintf("%d rows, expected %s", v.p.Rows, boundsText(e.Min, e.Max, ""))
		return done
	}
	if pc == nil {
		res.Message = fmt.Sprintf("column %q is missing", e.Column)
		return done
	}
	numeric := pc.Type == TypeInteger || pc.Type == TypeFloat || pc.Type == TypeTimestamp || pc.Type == TypeBoolean
	switch e.Kind {
	case ExpectNotNull:
		rows := v.p.Rows
		finishValues(res, rows, pc.Nulls+pc.NaN, nil, false, "")
	case ExpectMeanBetween:
		if !numeric {
			res.Message = fmt.Sprintf("column %q is %s, not numeric", e.Column, pc.Type)
			break
		}
		if pc.Mean == nil {
			res.Message = "no values to average"
			break
		}
		res.Observed = ptr(*pc.Mean)
		res.Success = inBounds(*pc.Mean, e.Min, e.Max)
		res.Message = fmt.Sprintf("mean %s, expected %s", formatStat(*pc.Mean, pc.Type), boundsText(e.Min, e.Max, pc.Type))
	case ExpectQuantileBetween:
		if !numeric {
			res.Message = fmt.Sprintf("column %q is %s, not numeric", e.Column, pc.Type)
			break
		}
		q := pc.QuantileSketch
		if q == nil || q.Count() == 0 {
			res.Message = "no values"
			break
		}
		x := q.Quantile(e.Quantile)
		res.Observed = &x
		res.Success = inBounds(x, e.Min, e.Max)
		// The minimum and maximum are exact, and so is everything while the
		// sketch has compacted nothing (its rank error is then 0).
		res.Approximate = e.Quantile > 0 && e.Quantile < 1 && q.RankError() > 0
		res.Message = fmt.Sprintf("quantile %g is %s, expected %s", e.Quantile, formatStat(x, pc.Type), boundsText(e.Min, e.Max, pc.Type))
		if res.Approximate {
			res.Message += fmt.Sprintf(" (from the sketch: the value's rank is within ±%s of %g)", percent(q.RankError()), e.Quantile)
		}
	case ExpectBetween:
		if !numeric {
			res.Message = fmt.Sprintf("column %q is %s, not numeric", e.Column, pc.Type)
			break
		}
		v.between(res, e, pc)
	case ExpectInSet:
		set := canonicalSet(pc.Type, e.Values)
		v.byFrequent(res, e, pc, func(val string) bool { return set[val] },
			func(sv *scanValue) bool { return set[sv.text] })
	case ExpectRegex:
		re := regexp.MustCompile(e.Pattern) // ParseSchema compiled it
		v.byFrequent(res, e, pc, re.MatchString, newRegexMatcher(re))
	case ExpectUnique:
		v.unique(res, e, pc)
	default:
		res.Message = fmt.Sprintf("unknown expectation kind %q", e.Kind)
	}
	return done
}

// finishValues completes a value expectation's result.
func finishValues(res *ExpectationResult, elements, unexpected int64, examples []Example, approx bool, note string) {
	res.Elements, res.Unexpected, res.Examples, res.Approximate = elements, unexpected, examples, approx
	if elements == 0 {
		res.Success = true
		res.Message = "no values"
		return
	}
	f := float64(elements-unexpected) / float64(elements)
	res.Observed = &f
	res.Success = f >= res.Mostly-1e-12
	est := ""
	if approx {
		est = "about "
	}
	res.Message = fmt.Sprintf("%s%s of %s passed, %s needed", est, percent(f), plural(elements, "value"), percent(res.Mostly))
	if unexpected > 0 {
		res.Message = fmt.Sprintf("%s%s of %s passed (%d did not), %s needed", est, percent(f), plural(elements, "value"), unexpected, percent(res.Mostly))
	}
	if note != "" {
		res.Message += "; " + note
	}
}

func (v *validation) skipResult(res *ExpectationResult, reason string) {
	res.Skipped = true
	res.Message = "not checked: " + reason
}

const needData = "the profile cannot decide it; pass the data files to scan them"

// byFrequent decides in_set and regex: value by value from exact frequent
// counts, else by a scan. passText tests a canonical text value.
func (v *validation) byFrequent(res *ExpectationResult, e *Expectation, pc *ColumnProfile, passText func(string) bool, passScan func(*scanValue) bool) {
	f := pc.Frequent
	total := valuesCounted(pc)
	if f != nil && f.Exact() {
		var bad int64
		var ex []Example
		for _, it := range f.Items() {
			if !passText(it.Value) {
				bad += it.Count
				if len(ex) < maxExamples {
					ex = append(ex, Example{Value: it.Value, Count: it.Count})
				}
			}
		}
		finishValues(res, total, bad, ex, false, "")
		return
	}
	// An inexact counter's tracked values all occur: one that fails decides
	// an expectation that allows no failure.
	if f != nil && res.Mostly >= 1 {
		var ex []Example
		for _, it := range f.Items() {
			if !passText(it.Value) && len(ex) < maxExamples {
				ex = append(ex, Example{Value: it.Value})
			}
		}
		if len(ex) > 0 && len(v.t.Files) == 0 {
			res.Elements, res.Examples = total, ex
			res.Message = fmt.Sprintf("%s tracked by the profile did not pass; the count of failing values needs a scan of the data", plural(int64(len(ex)), "value"))
			res.Approximate = true
			return
		}
	}
	if len(v.t.Files) == 0 {
		v.skipResult(res, needData)
		return
	}
	v.scanExpectation(pc, res, &expectScan{pass: passScan})
}

// scanExpectation makes a scan decide a value expectation.
func (v *validation) scanExpectation(pc *ColumnProfile, res *ExpectationResult, sc *expectScan) {
	sc.res = res
	v.scan.add(pc, sc)
	v.afterScan = append(v.afterScan, sc.finish)
}

func (v *validation) unique(res *ExpectationResult, e *Expectation, pc *ColumnProfile) {
	f := pc.Frequent
	total := valuesCounted(pc)
	if total <= 1 {
		finishValues(res, total, 0, nil, false, "")
		return
	}
	if f != nil && f.Exact() {
		var bad int64
		var ex []Example
		for _, it := range f.Items() {
			if it.Count > 1 {
				bad += it.Count
				if len(ex) < maxExamples {
					ex = append(ex, Example{Value: it.Value, Count: it.Count})
				}
			}
		}
		finishValues(res, total, bad, ex, false, "")
		return
	}
	if f != nil && res.Mostly >= 1 && len(v.t.Files) == 0 {
		if items := f.Items(); len(items) > 0 && items[0].Count-f.MaxError() > 1 {
			res.Elements = total
			res.Examples = []Example{{Value: items[0].Value}}
			res.Approximate = true
			res.Message = fmt.Sprintf("%q occurs at least %d times; the count of duplicates needs a scan of the data", items[0].Value, items[0].Count-f.MaxError())
			return
		}
	}
	if len(v.t.Files) == 0 {
		v.skipResult(res, needData)
		return
	}
	v.scanExpectation(pc, res, &expectScan{unique: &uniqueScan{seed: maphash.MakeSeed(), seen: map[uint64]int32{}}})
}

// between decides a between expectation (see the comment at the top).
func (v *validation) between(res *ExpectationResult, e *Expectation, pc *ColumnProfile) {
	lo, hi := e.Min, e.Max
	n := valuesCounted(pc)
	if n == 0 {
		finishValues(res, 0, 0, nil, false, "")
		return
	}
	finite := n - pc.Inf
	bothEnds := lo != nil && hi != nil
	lowOut := lo != nil && pc.Min != nil && *pc.Min < *lo
	highOut := hi != nil && pc.Max != nil && *pc.Max > *hi
	allOut := pc.Min != nil && ((lo != nil && *pc.Max < *lo) || (hi != nil && *pc.Min > *hi))
	var ex []Example
	if lowOut {
		ex = append(ex, Example{Value: formatValue(*pc.Min, pc.Type)})
	}
	if highOut {
		ex = append(ex, Example{Value: formatValue(*pc.Max, pc.Type)})
	}
	// Infinite values fail when both ends are closed; with an open end
	// their sign decides, which the profile does not keep.
	exact := pc.Inf == 0 || bothEnds
	switch {
	case exact && !lowOut && !highOut:
		finishValues(res, n, pc.Inf, nil, false, "")
		return
	case exact && allOut:
		finishValues(res, n, n, ex, false, "")
		return
	}
	// Estimate from the sketch: the failing finite values are the CDF below
	// lo and above hi, each within ε·n of the truth.
	q := pc.QuantileSketch
	var bad float64
	if lowOut {
		bad += math.Max(1, float64(finite)*q.CDF(math.Nextafter(*lo, math.Inf(-1))))
	}
	if highOut {
		bad += math.Max(1, float64(finite)*(1-q.CDF(*hi)))
	}
	var unknownInf int64
	if bothEnds {
		bad += float64(pc.Inf)
	} else {
		unknownInf = pc.Inf
	}
	fhat := 1 - bad/float64(n)
	delta := (2*q.RankError()*float64(finite) + float64(unknownInf)) / float64(n)
	definiteFail := res.Mostly >= 1 && len(ex) > 0
	decided := definiteFail || fhat-delta >= res.Mostly || fhat+delta < res.Mostly
	if !decided && len(v.t.Files) > 0 {
		v.scanExpectation(pc, res, &expectScan{pass: func(sv *scanValue) bool {
			return sv.isNum && (lo == nil || sv.num >= *lo) && (hi == nil || sv.num <= *hi)
		}})
		return
	}
	if delta == 0 {
		// The sketch has compacted nothing: its counts are exact.
		finishValues(res, n, int64(math.Round(bad)), ex, false, "")
		return
	}
	note := fmt.Sprintf("estimated from the quantile sketch (±%s of values)", percent(delta))
	if !decided {
		note += ", too close to mostly to be sure; pass the data files for an exact count"
	}
	finishValues(res, n, int64(math.Round(bad)), ex, true, note)
}

// expectScan counts the values of a scan that pass a value expectation and
// writes the result when the scan ends (see finishScan).
type expectScan struct {
	pass       func(*scanValue) bool
	unique     *uniqueScan
	res        *ExpectationResult
	elements   int64
	unexpected int64
	examples   []Example
}

func (s *expectScan) observe(v *scanValue) {
	if s.unique != nil {
		s.unique.observe(v)
		return
	}
	s.elements++
	if !s.pass(v) {
		s.unexpected++
		if len(s.examples) < maxExamples {
			s.examples = append(s.examples, v.example())
		}
	}
}

func (s *expectScan) finish() {
	if s.unique != nil {
		s.elements, s.unexpected, s.examples = s.unique.result()
	}
	finishValues(s.res, s.elements, s.unexpected, s.examples, false, "")
}

// uniqueScan finds duplicates by a 64-bit hash of each value's canonical
// text (a false duplicate needs a collision, probability about n²/2⁶⁵); its
// memory grows with the number of distinct values.
type uniqueScan struct {
	seed     maphash.Seed
	seen     map[uint64]int32
	elements int64
	examples []Example
}

func (u *uniqueScan) observe(v *scanValue) {
	u.elements++
	h := maphash.String(u.seed, v.text)
	n := u.seen[h] + 1
	u.seen[h] = n
	if n == 2 && len(u.examples) < maxExamples {
		u.examples = append(u.examples, v.example())
	}
}

func (u *uniqueScan) result() (elements, unexpected int64, examples []Example) {
	for _, n := range u.seen {
		if n > 1 {
			unexpected += int64(n)
		}
	}
	return u.elements, unexpected, u.examples
}

// newRegexMatcher matches a value's text in the file, remembering the
// answers for up to 10,000 distinct values.
func newRegexMatcher(re *regexp.Regexp) func(*scanValue) bool {
	cache := map[string]bool{}
	return func(v *scanValue) bool {
		if m, ok := cache[v.raw]; ok {
			return m
		}
		m := re.MatchString(v.raw)
		if len(cache) < 10000 {
			cache[strings.Clone(v.raw)] = m
		}
		return m
	}
}

func inBounds(x float64, lo, hi *float64) bool {
	return (lo == nil || x >= *lo) && (hi == nil || x <= *hi)
}

func boundsText(lo, hi *float64, t Type) string {
	switch {
	case lo != nil && hi != nil:
		return fmt.Sprintf("between %s and %s", formatValue(*lo, t), formatValue(*hi, t))
	case lo != nil:
		return "at least " + formatValue(*lo, t)
	case hi != nil:
		return "at most " + formatValue(*hi, t)
	}
	return "anything"
}

// expectationParams lists an expectation's parameters for its result.
func expectationParams(e *Expectation, t Type) map[string]any {
	p := map[string]any{}
	if e.Kind == ExpectQuantileBetween {
		p["q"] = e.Quantile
	}
	if e.Min != nil {
		p["min"] = paramValue(*e.Min, t)
	}
	if e.Max != nil {
		p["max"] = paramValue(*e.Max, t)
	}
	if e.Kind == ExpectInSet {
		vals := slices.Clone(e.Values)
		p["values"] = vals
	}
	if e.Kind == ExpectRegex {
		p["pattern"] = e.Pattern
	}
	if len(p) == 0 {
		return nil
	}
	return p
}

func paramValue(x float64, t Type) any {
	if t == TypeTimestamp {
		return formatValue(x, t)
	}
	return x
}
