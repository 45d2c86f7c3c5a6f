package dataset

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Schema says what a dataset's versions must look like, in the spirit of
// TensorFlow Data Validation: the columns with their types, nullability,
// categorical domains and optional ranges; dataset-level bounds on the row
// count; and expectations in the spirit of Great Expectations. It is
// inferred from a profile (InferSchema), edited as YAML (YAML, ParseSchema)
// and checked against data by Validate.
type Schema struct {
	// Dataset names the dataset the schema is for (informative).
	Dataset string
	// RowCount bounds the number of rows; nil means any number.
	RowCount *CountRange
	// MaxRowCountChange bounds the relative change of the row count against
	// a baseline version (0.5: between half and one and a half times the
	// baseline's rows); nil means no bound.
	MaxRowCountChange *float64
	// Columns lists the expected columns. When it is empty, Validate checks
	// no column and reports no unexpected column.
	Columns []*ColumnSchema
	// Expectations are further checks, each with its own severity.
	Expectations []*Expectation
}

// CountRange bounds a count; nil ends are open.
type CountRange struct {
	Min *int64
	Max *int64
}

// ColumnSchema describes one column.
type ColumnSchema struct {
	Name string
	Type Type
	// Nullable says whether the column may have nulls at all.
	Nullable bool
	// MaxNullFraction, for a nullable column, is the largest allowed share
	// of null rows (0..1); nil allows any share.
	MaxNullFraction *float64
	// Domain lists the allowed values of a categorical column (string,
	// integer or boolean), as text; empty means any value.
	Domain []string
	// Min and Max bound a numeric or timestamp column's values (timestamps
	// in microseconds since the Unix epoch); nil ends are open.
	Min *float64
	Max *float64
	// Severity is the severity of this column's anomalies (error when "").
	Severity Severity
}

// AllowedNullFraction returns the largest share of null rows the column
// allows: 0 when it is not nullable, 1 when any share is.
func (c *ColumnSchema) AllowedNullFraction() float64 {
	switch {
	case !c.Nullable:
		return 0
	case c.MaxNullFraction != nil:
		return *c.MaxNullFraction
	}
	return 1
}

// Severity says whether a failed check fails validation (error) or is only
// reported (warning).
type Severity string

// Severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

func (s Severity) orDefault() Severity {
	if s == "" {
		return SeverityError
	}
	return s
}

// ExpectationKind names an expectation.
type ExpectationKind string

// Expectation kinds. Those marked "values" look at each non-null value and
// pass when at least the fraction Mostly of them pass; the others check one
// statistic of the whole column or dataset and take no Mostly.
const (
	ExpectNotNull         ExpectationKind = "not_null"          // values: not null (NaN counts as null, as in pandas)
	ExpectBetween         ExpectationKind = "between"           // values: Min ≤ v ≤ Max (either end may be open)
	ExpectInSet           ExpectationKind = "in_set"            // values: v in Values
	ExpectUnique          ExpectationKind = "unique"            // values: v occurs once in the column
	ExpectRegex           ExpectationKind = "regex"             // values: Pattern matches v's text (RE2 syntax, unanchored)
	ExpectMeanBetween     ExpectationKind = "mean_between"      // Min ≤ mean ≤ Max
	ExpectQuantileBetween ExpectationKind = "quantile_between"  // Min ≤ Q-quantile ≤ Max (from the sketch)
	ExpectRowCountBetween ExpectationKind = "row_count_between" // Min ≤ rows ≤ Max; no column
)

// ExpectationKinds lists every expectation kind.
var ExpectationKinds = []ExpectationKind{ExpectNotNull, ExpectBetween, ExpectInSet, ExpectUnique,
	ExpectRegex, ExpectMeanBetween, ExpectQuantileBetween, ExpectRowCountBetween}

// usesMostly reports whether the kind checks values one by one.
func (k ExpectationKind) usesMostly() bool {
	switch k {
	case ExpectNotNull, ExpectBetween, ExpectInSet, ExpectUnique, ExpectRegex:
		return true
	}
	return false
}

// Expectation is one Great Expectations-style check.
type Expectation struct {
	Kind   ExpectationKind
	Column string // every kind but row_count_between
	// Min and Max bound between, mean_between, quantile_between and
	// row_count_between (timestamps in microseconds); nil ends are open,
	// but at least one is set.
	Min *float64
	Max *float64
	// Quantile is quantile_between's q, in [0, 1].
	Quantile float64
	// Values are in_set's allowed values, as text.
	Values []string
	// Pattern is regex's regular expression (RE2 syntax).
	Pattern string
	// Mostly is the fraction of values that must pass, in (0, 1]; 0 means 1.
	Mostly float64
	// Severity is error ("") or warning.
	Severity Severity
}

// MostlyOrDefault returns Mostly, or 1 when it is unset.
func (e *Expectation) MostlyOrDefault() float64 {
	if e.Mostly == 0 {
		return 1
	}
	return e.Mostly
}

// Types returns the schema's column types, for ProfileOptions.Types: text
// files profiled with them are read the way the schema means them.
func (s *Schema) Types() map[string]Type {
	m := make(map[string]Type, len(s.Columns))
	for _, c := range s.Columns {
		m[c.Name] = c.Type
	}
	return m
}

// Column returns the named column's schema, or nil.
func (s *Schema) Column(name string) *ColumnSchema {
	for _, c := range s.Columns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// validType reports whether t is one of the column types.
func validType(t Type) bool {
	switch t {
	case TypeInteger, TypeFloat, TypeBoolean, TypeString, TypeTimestamp:
		return true
	}
	return false
}

// InferOptions tune InferSchema; zero values mean the defaults.
type InferOptions struct {
	// Dataset names the dataset in the schema.
	Dataset string
	// MaxDomainSize is the largest number of distinct values for which a
	// string column gets a domain (DefaultMaxDomainSize).
	MaxDomainSize int
	// MinDomainRepeats is how many rows each distinct value must have on
	// average for a string column to count as categorical
	// (DefaultMinDomainRepeats).
	MinDomainRepeats float64
	// Ranges makes numeric and timestamp columns get their observed minimum
	// and maximum as range (TFDV does not infer ranges, nor does the default).
	Ranges bool
	// MaxRowCountChange, when positive, becomes the schema's bound on the
	// relative row count change against a baseline.
	MaxRowCountChange float64
}

// Inference defaults.
const (
	// DefaultMaxDomainSize covers the codes of countries (249) or of a
	// region's airports while keeping identifiers out.
	DefaultMaxDomainSize = 300
	// DefaultMinDomainRepeats keeps columns whose values mostly occur once
	// or twice (names, free text) from being taken for categories.
	DefaultMinDomainRepeats = 10
)

// InferSchema returns the schema a profile satisfies:
//
//   - every column with its profiled type;
//   - nullable false when the column has no nulls; otherwise nullable with
//     max_null_fraction the observed share f with slack, max(2f, f+0.01)
//     rounded up to a thousandth and at most 1;
//   - a domain for a string column whose frequent values are counted
//     exactly, with at most MaxDomainSize distinct values and at least
//     MinDomainRepeats rows per distinct value on average — the categorical
//     columns — listing the observed values in byte order;
//   - with InferOptions.Ranges, the observed minimum and maximum of numeric
//     and timestamp columns as their range;
//   - no expectations, and no row count bounds except MaxRowCountChange.
func InferSchema(p *Profile, opts InferOptions) *Schema {
	if opts.MaxDomainSize <= 0 {
		opts.MaxDomainSize = DefaultMaxDomainSize
	}
	if opts.MinDomainRepeats <= 0 {
		opts.MinDomainRepeats = DefaultMinDomainRepeats
	}
	s := &Schema{Dataset: opts.Dataset}
	if opts.MaxRowCountChange > 0 {
		v := opts.MaxRowCountChange
		s.MaxRowCountChange = &v
	}
	for _, c := range p.Columns {
		cs := &ColumnSchema{Name: c.Name, Type: c.Type}
		if c.Nulls > 0 && p.Rows > 0 {
			f := float64(c.Nulls) / float64(p.Rows)
			allowed := math.Min(1, math.Ceil(math.Max(2*f, f+0.01)*1000)/1000)
			cs.Nullable, cs.MaxNullFraction = true, &allowed
		}
		if c.Type == TypeString && c.Frequent != nil && c.Frequent.Exact() && c.Count > 0 {
			items := c.Frequent.Items()
			if len(items) <= opts.MaxDomainSize && float64(c.Count) >= opts.MinDomainRepeats*float64(len(items)) {
				for _, it := range items {
					cs.Domain = append(cs.Domain, it.Value)
				}
				slices.Sort(cs.Domain)
			}
		}
		if opts.Ranges && c.Min != nil && c.Max != nil && (c.Type == TypeInteger || c.Type == TypeFloat || c.Type == TypeTimestamp) {
			lo, hi := *c.Min, *c.Max
			cs.Min, cs.Max = &lo, &hi
		}
		s.Columns = append(s.Columns, cs)
	}
	return s
}

// The YAML form. Bounds and listed values are read as any scalar and
// converted with the column's type in mind.
type yamlSchema struct {
	Dataset           string            `yaml:"dataset,omitempty"`
	RowCount          *yamlCountRange   `yaml:"row_count,omitempty"`
	MaxRowCountChange *float64          `yaml:"max_row_count_change,omitempty"`
	Columns           []yamlColumn      `yaml:"columns"`
	Expectations      []yamlExpectation `yaml:"expectations,omitempty"`
}

type yamlCountRange struct {
	Min *int64 `yaml:"min,omitempty"`
	Max *int64 `yaml:"max,omitempty"`
}

type yamlColumn struct {
	Name            string   `yaml:"name"`
	Type            string   `yaml:"type"`
	Nullable        *bool    `yaml:"nullable"`
	MaxNullFraction *float64 `yaml:"max_null_fraction,omitempty"`
	Domain          []any    `yaml:"domain,omitempty"`
	Min             any      `yaml:"min,omitempty"`
	Max             any      `yaml:"max,omitempty"`
	Severity        string   `yaml:"severity,omitempty"`
}

type yamlExpectation struct {
	Kind     string   `yaml:"kind"`
	Column   string   `yaml:"column,omitempty"`
	Q        *float64 `yaml:"q,omitempty"`
	Min      any      `yaml:"min,omitempty"`
	Max      any      `yaml:"max,omitempty"`
	Values   []any    `yaml:"values,omitempty"`
	Pattern  *string  `yaml:"pattern,omitempty"`
	Mostly   *float64 `yaml:"mostly,omitempty"`
	Severity string   `yaml:"severity,omitempty"`
}

// schemaHeader opens every schema written by YAML.
const schemaHeader = `# mloop dataset schema. Edit it, then store it with
#   mloop data schema NAME --set FILE
# and check data against it with
#   mloop data validate REF [--schema FILE]
#
# columns: name; type (integer, float, boolean, string, timestamp);
#   nullable (false: no nulls at all); max_null_fraction (0..1, nullable
#   columns); domain (the allowed values of a categorical column); min, max
#   (allowed range: numbers, or RFC 3339 times for timestamps); severity
#   (error, the default, or warning).
# row_count: min, max rows; max_row_count_change: largest relative change of
#   the row count against the previous version (0.5 = ±50%).
# expectations: kind (not_null, between, in_set, unique, regex, mean_between,
#   quantile_between, row_count_between), column, and as the kind needs
#   min, max, q, values, pattern; mostly (fraction of values that must pass,
#   default 1); severity.
`

// YAML returns the schema as YAML: a comment header saying how to edit it,
// then the dataset-level bounds, the columns in schema order and the
// expectations. ParseSchema reads it back to an equal schema.
func (s *Schema) YAML() ([]byte, error) {
	y := yamlSchema{Dataset: s.Dataset, MaxRowCountChange: s.MaxRowCountChange, Columns: []yamlColumn{}}
	if s.RowCount != nil {
		y.RowCount = &yamlCountRange{Min: s.RowCount.Min, Max: s.RowCount.Max}
	}
	for _, c := range s.Columns {
		nullable := c.Nullable
		yc := yamlColumn{Name: c.Name, Type: string(c.Type), Nullable: &nullable, MaxNullFraction: c.MaxNullFraction, Severity: string(c.Severity)}
		for _, v := range c.Domain {
			yc.Domain = append(yc.Domain, yamlScalar(v, c.Type))
		}
		yc.Min = yamlBound(c.Min, c.Type)
		yc.Max = yamlBound(c.Max, c.Type)
		y.Columns = append(y.Columns, yc)
	}
	for _, e := range s.Expectations {
		t := Type("")
		if c := s.Column(e.Column); c != nil {
			t = c.Type
		}
		ye := yamlExpectation{Kind: string(e.Kind), Column: e.Column, Severity: string(e.Severity)}
		if e.Kind == ExpectQuantileBetween {
			q := e.Quantile
			ye.Q = &q
		}
		ye.Min, ye.Max = yamlBound(e.Min, t), yamlBound(e.Max, t)
		for _, v := range e.Values {
			ye.Values = append(ye.Values, yamlScalar(v, t))
		}
		if e.Kind == ExpectRegex {
			p := e.Pattern
			ye.Pattern = &p
		}
		if e.Mostly != 0 && e.Mostly != 1 {
			m := e.Mostly
			ye.Mostly = &m
		}
		y.Expectations = append(y.Expectations, ye)
	}
	body, err := yaml.MarshalWithOptions(y, yaml.IndentSequence(true))
	if err != nil {
		return nil, fmt.Errorf("encode schema: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString(schemaHeader)
	buf.Write(body)
	return buf.Bytes(), nil
}

// yamlScalar writes a listed value of an integer or boolean column as a
// YAML number or boolean, anything else as a string.
func yamlScalar(v string, t Type) any {
	switch t {
	case TypeInteger:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && strconv.FormatInt(n, 10) == v {
			return n
		}
	case TypeBoolean:
		if v == "true" || v == "false" {
			return v == "true"
		}
	}
	return v
}

// yamlBound writes a bound as an integer when it is one, as an RFC 3339
// time for timestamp columns, else as a float.
func yamlBound(v *float64, t Type) any {
	if v == nil {
		return nil
	}
	x := *v
	if t == TypeTimestamp && x == math.Trunc(x) && math.Abs(x) < 1<<62 {
		return FormatMicros(int64(x))
	}
	if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
		return int64(x)
	}
	return x
}

// FormatMicros formats microseconds since the Unix epoch as an RFC 3339 UTC
// time.
func FormatMicros(us int64) string {
	return time.UnixMicro(us).UTC().Format(time.RFC3339Nano)
}

// SchemaError is a problem in a schema document, at a 1-based line (0 when
// unknown).
type SchemaError struct {
	Line int
	Msg  string
}

// Error formats the error as "schema: line N: message".
func (e *SchemaError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("schema: line %d: %s", e.Line, e.Msg)
	}
	return "schema: " + e.Msg
}

// ParseSchema reads a schema written in YAML (see YAML for the layout).
// Unknown keys, unknown types and expectation kinds, parameters an
// expectation kind does not take, and insane bounds (min above max,
// fractions outside 0..1, a regular expression that does not compile) are
// *SchemaError values naming the line.
func ParseSchema(data []byte) (*Schema, error) {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(err)
	}
	if len(file.Docs) != 1 || file.Docs[0].Body == nil {
		if len(file.Docs) > 1 {
			return nil, &SchemaError{Msg: "more than one YAML document"}
		}
		return nil, &SchemaError{Msg: "empty document"}
	}
	if _, ok := file.Docs[0].Body.(*ast.MappingNode); !ok {
		return nil, &SchemaError{Line: file.Docs[0].Body.GetToken().Position.Line, Msg: "a schema is a mapping (dataset, columns, expectations, …)"}
	}
	var y yamlSchema
	if err := yaml.NodeToValue(file.Docs[0].Body, &y, yaml.DisallowUnknownField()); err != nil {
		return nil, yamlError(err)
	}
	line := func(path string) int { return nodeLine(file, path) }
	fail := func(path, format string, args ...any) error {
		return &SchemaError{Line: line(path), Msg: fmt.Sprintf(format, args...)}
	}
	s := &Schema{Dataset: y.Dataset}
	if y.RowCount != nil {
		if (y.RowCount.Min != nil && *y.RowCount.Min < 0) || (y.RowCount.Max != nil && *y.RowCount.Max < 0) {
			return nil, fail("$.row_count", "row_count bounds must not be negative")
		}
		if y.RowCount.Min != nil && y.RowCount.Max != nil && *y.RowCount.Min > *y.RowCount.Max {
			return nil, fail("$.row_count", "row_count min %d is above max %d", *y.RowCount.Min, *y.RowCount.Max)
		}
		s.RowCount = &CountRange{Min: y.RowCount.Min, Max: y.RowCount.Max}
	}
	if v := y.MaxRowCountChange; v != nil {
		if !(*v >= 0) || math.IsInf(*v, 0) {
			return nil, fail("$.max_row_count_change", "max_row_count_change must be a finite number ≥ 0, got %v", *v)
		}
		s.MaxRowCountChange = v
	}
	seen := map[string]bool{}
	for i, yc := range y.Columns {
		at := fmt.Sprintf("$.columns[%d]", i)
		if yc.Name == "" {
			return nil, fail(at, "column %d has no name", i+1)
		}
		if seen[yc.Name] {
			return nil, fail(at+".name", "column %q is listed twice", yc.Name)
		}
		seen[yc.Name] = true
		c := &ColumnSchema{Name: yc.Name, Type: Type(yc.Type), Nullable: true}
		if !validType(c.Type) {
			return nil, fail(at+".type", "column %q: unknown type %q (want integer, float, boolean, string or timestamp)", yc.Name, yc.Type)
		}
		if yc.Nullable != nil {
			c.Nullable = *yc.Nullable
		}
		if f := yc.MaxNullFraction; f != nil {
			if !(*f >= 0 && *f <= 1) {
				return nil, fail(at+".max_null_fraction", "column %q: max_null_fraction must be between 0 and 1, got %v", yc.Name, *f)
			}
			if !c.Nullable && *f > 0 {
				return nil, fail(at+".max_null_fraction", "column %q: max_null_fraction %v on a column that is not nullable", yc.Name, *f)
			}
			c.MaxNullFraction = f
		}
		sev, err := parseSeverity(yc.Severity)
		if err != nil {
			return nil, fail(at+".severity", "column %q: %v", yc.Name, err)
		}
		c.Severity = sev
		if len(yc.Domain) > 0 {
			if c.Type != TypeString && c.Type != TypeInteger && c.Type != TypeBoolean {
				return nil, fail(at+".domain", "column %q: a domain needs a string, integer or boolean column, not %s", yc.Name, c.Type)
			}
			dom, err := scalarList(yc.Domain, c.Type)
			if err != nil {
				return nil, fail(at+".domain", "column %q: domain: %v", yc.Name, err)
			}
			c.Domain = dom
		}
		if yc.Min != nil || yc.Max != nil {
			if c.Type != TypeInteger && c.Type != TypeFloat && c.Type != TypeTimestamp {
				return nil, fail(at, "column %q: min and max need a numeric or timestamp column, not %s", yc.Name, c.Type)
			}
			if c.Min, err = parseBound(yc.Min); err != nil {
				return nil, fail(at+".min", "column %q: min: %v", yc.Name, err)
			}
			if c.Max, err = parseBound(yc.Max); err != nil {
				return nil, fail(at+".max", "column %q: max: %v", yc.Name, err)
			}
			if c.Min != nil && c.Max != nil && *c.Min > *c.Max {
				return nil, fail(at+".min", "column %q: min %v is above max %v", yc.Name, *c.Min, *c.Max)
			}
		}
		s.Columns = append(s.Columns, c)
	}
	for i, ye := range y.Expectations {
		e, path, err := parseExpectation(s, ye)
		if err != nil {
			at := fmt.Sprintf("$.expectations[%d]", i)
			if path != "" {
				at += "." + path
			}
			return nil, &SchemaError{Line: line(at), Msg: fmt.Sprintf("expectation %d (%s): %v", i+1, ye.Kind, err)}
		}
		s.Expectations = append(s.Expectations, e)
	}
	return s, nil
}

// parseExpectation checks one expectation; on error it also returns the key
// the error is about, to find its line.
func parseExpectation(s *Schema, y yamlExpectation) (*Expectation, string, error) {
	e := &Expectation{Kind: ExpectationKind(y.Kind), Column: y.Column}
	known := false
	for _, k := range ExpectationKinds {
		known = known || k == e.Kind
	}
	if !known {
		names := make([]string, len(ExpectationKinds))
		for i, k := range ExpectationKinds {
			names[i] = string(k)
		}
		return nil, "kind", fmt.Errorf("unknown kind %q (want one of %s)", y.Kind, strings.Join(names, ", "))
	}
	sev, err := parseSeverity(y.Severity)
	if err != nil {
		return nil, "severity", err
	}
	e.Severity = sev
	if e.Kind == ExpectRowCountBetween {
		if y.Column != "" {
			return nil, "column", errors.New("row_count_between is about the whole dataset and takes no column")
		}
	} else if y.Column == "" {
		return nil, "", errors.New("missing column")
	}
	var col *ColumnSchema
	if y.Column != "" {
		col = s.Column(y.Column)
	}
	if y.Mostly != nil {
		if !e.Kind.usesMostly() {
			return nil, "mostly", fmt.Errorf("%s checks one statistic and takes no mostly", e.Kind)
		}
		if !(*y.Mostly > 0 && *y.Mostly <= 1) {
			return nil, "mostly", fmt.Errorf("mostly must be in (0, 1], got %v", *y.Mostly)
		}
		e.Mostly = *y.Mostly
	}
	takesBounds := e.Kind == ExpectBetween || e.Kind == ExpectMeanBetween || e.Kind == ExpectQuantileBetween || e.Kind == ExpectRowCountBetween
	switch {
	case y.Q != nil && e.Kind != ExpectQuantileBetween:
		return nil, "q", fmt.Errorf("%s takes no q", e.Kind)
	case (y.Min != nil || y.Max != nil) && !takesBounds:
		key := "min"
		if y.Min == nil {
			key = "max"
		}
		return nil, key, fmt.Errorf("%s takes no min or max", e.Kind)
	case y.Values != nil && e.Kind != ExpectInSet:
		return nil, "values", fmt.Errorf("%s takes no values", e.Kind)
	case y.Pattern != nil && e.Kind != ExpectRegex:
		return nil, "pattern", fmt.Errorf("%s takes no pattern", e.Kind)
	}
	numeric := col == nil || col.Type == TypeInteger || col.Type == TypeFloat || col.Type == TypeTimestamp || col.Type == TypeBoolean
	if takesBounds {
		if y.Min == nil && y.Max == nil {
			return nil, "", fmt.Errorf("%s needs min, max or both", e.Kind)
		}
		if e.Kind != ExpectRowCountBetween && !numeric {
			return nil, "column", fmt.Errorf("column %q is %s, not numeric", y.Column, col.Type)
		}
		if e.Min, err = parseBound(y.Min); err != nil {
			return nil, "min", fmt.Errorf("min: %w", err)
		}
		if e.Max, err = parseBound(y.Max); err != nil {
			return nil, "max", fmt.Errorf("max: %w", err)
		}
		if e.Min != nil && e.Max != nil && *e.Min > *e.Max {
			return nil, "min", fmt.Errorf("min %v is above max %v", *e.Min, *e.Max)
		}
		if e.Kind == ExpectRowCountBetween {
			for _, b := range []*float64{e.Min, e.Max} {
				if b != nil && (*b < 0 || *b != math.Trunc(*b)) {
					return nil, "min", fmt.Errorf("row counts are whole numbers ≥ 0, got %v", *b)
				}
			}
		}
	}
	switch e.Kind {
	case ExpectQuantileBetween:
		if y.Q == nil {
			return nil, "", errors.New("quantile_between needs q, the quantile in [0, 1]")
		}
		if !(*y.Q >= 0 && *y.Q <= 1) {
			return nil, "q", fmt.Errorf("q must be in [0, 1], got %v", *y.Q)
		}
		e.Quantile = *y.Q
	case ExpectInSet:
		if len(y.Values) == 0 {
			return nil, "values", errors.New("in_set needs a non-empty list of values")
		}
		t := TypeString
		if col != nil {
			t = col.Type
		}
		if e.Values, err = scalarList(y.Values, t); err != nil {
			return nil, "values", err
		}
	case ExpectRegex:
		if y.Pattern == nil || *y.Pattern == "" {
			return nil, "", errors.New("regex needs a pattern")
		}
		if _, err := regexp.Compile(*y.Pattern); err != nil {
			return nil, "pattern", fmt.Errorf("pattern: %w", err)
		}
		e.Pattern = *y.Pattern
	}
	return e, "", nil
}

func parseSeverity(s string) (Severity, error) {
	switch Severity(s) {
	case "", SeverityError:
		return "", nil
	case SeverityWarning:
		return SeverityWarning, nil
	}
	return "", fmt.Errorf("unknown severity %q (want error or warning)", s)
}

// scalarList converts listed YAML scalars to text; for integer and boolean
// columns every value must parse as that type.
func scalarList(vs []any, t Type) ([]string, error) {
	out := make([]string, 0, len(vs))
	seen := map[string]bool{}
	for _, v := range vs {
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case bool:
			s = strconv.FormatBool(x)
		case int64:
			s = strconv.FormatInt(x, 10)
		case uint64:
			s = strconv.FormatUint(x, 10)
		case int:
			s = strconv.Itoa(x)
		case float64:
			s = strconv.FormatFloat(x, 'g', -1, 64)
		case nil:
			return nil, errors.New("null is not a value (nulls are governed by nullable)")
		default:
			return nil, fmt.Errorf("%v is not a scalar", v)
		}
		if t == TypeInteger || t == TypeBoolean {
			canon, ok := canonicalText(t, s)
			if !ok {
				return nil, fmt.Errorf("%q is not %s %s", s, article(t), t)
			}
			s = canon
		}
		if seen[s] {
			return nil, fmt.Errorf("value %q is listed twice", s)
		}
		seen[s] = true
		out = append(out, s)
	}
	return out, nil
}

// parseBound reads a bound: a number, or a time that ParseText reads as a
// timestamp (microseconds since the Unix epoch).
func parseBound(v any) (*float64, error) {
	var x float64
	switch b := v.(type) {
	case nil:
		return nil, nil
	case int64:
		x = float64(b)
	case uint64:
		x = float64(b)
	case int:
		x = float64(b)
	case float64:
		x = b
	case string:
		tv := ParseText(b)
		switch tv.Type {
		case TypeTimestamp:
			x = float64(tv.Micros)
		case TypeInteger:
			x = float64(tv.Int)
		case TypeFloat:
			x = tv.Float
		default:
			return nil, fmt.Errorf("%q is neither a number nor a time", b)
		}
	default:
		return nil, fmt.Errorf("%v is neither a number nor a time", v)
	}
	if math.IsNaN(x) {
		return nil, errors.New("NaN is not a bound")
	}
	return &x, nil
}

// canonicalText converts a value's text to the canonical text of type t —
// the text frequent counts and scans compare: decimal integers, "true" and
// "false", Go's shortest float formatting, RFC 3339 UTC times; strings are
// unchanged. ok is false when s is not a value of type t.
func canonicalText(t Type, s string) (string, bool) {
	if t == TypeString {
		return s, true
	}
	v := ParseText(s)
	switch t {
	case TypeInteger:
		if v.Type == TypeInteger {
			return strconv.FormatInt(v.Int, 10), true
		}
	case TypeFloat:
		switch v.Type {
		case TypeInteger:
			return strconv.FormatFloat(float64(v.Int), 'g', -1, 64), true
		case TypeFloat:
			return strconv.FormatFloat(v.Float, 'g', -1, 64), true
		}
	case TypeBoolean:
		if v.Type == TypeBoolean {
			return strconv.FormatBool(v.Bool), true
		}
	case TypeTimestamp:
		if v.Type == TypeTimestamp {
			return FormatMicros(v.Micros), true
		}
	}
	return s, false
}

// yamlError turns a go-yaml error into a *SchemaError with its line.
func yamlError(err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		line := 0
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			line = tk.Position.Line
		}
		return &SchemaError{Line: line, Msg: ye.GetMessage()}
	}
	return &SchemaError{Msg: err.Error()}
}

// nodeLine returns the line of the node at a YAML path, or 0.
func nodeLine(file *ast.File, path string) int {
	p, err := yaml.PathString(path)
	if err != nil {
		return 0
	}
	n, err := p.FilterFile(file)
	if err != nil || n == nil || n.GetToken() == nil || n.GetToken().Position == nil {
		return 0
	}
	return n.GetToken().Position.Line
}
