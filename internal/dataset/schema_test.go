package dataset

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func f64(x float64) *float64 { return &x }
func i64(x int64) *int64     { return &x }

// fullSchema uses every feature of the schema format.
func fullSchema() *Schema {
	day := float64(time.Date(2012, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
	return &Schema{
		Dataset:           "weather",
		RowCount:          &CountRange{Min: i64(1), Max: i64(100000)},
		MaxRowCountChange: f64(0.5),
		Columns: []*ColumnSchema{
			{Name: "date", Type: TypeTimestamp, Min: f64(day), Max: f64(day + 86400e6*0.5)},
			{Name: "wind", Type: TypeFloat, Nullable: true, MaxNullFraction: f64(0.02), Min: f64(-0.5), Max: f64(12)},
			{Name: "count", Type: TypeInteger, Nullable: true, Domain: []string{"1", "2", "10"}, Severity: SeverityWarning},
			{Name: "weather", Type: TypeString, Domain: []string{"", "1", "a: b", "fog", "null", "true", "yes", "#x", "- y", "é"}},
			{Name: "flag", Type: TypeBoolean, Domain: []string{"true"}},
			{Name: "weird name: with colon", Type: TypeString, Nullable: true},
		},
		Expectations: []*Expectation{
			{Kind: ExpectNotNull, Column: "wind", Mostly: 0.95},
			{Kind: ExpectBetween, Column: "wind", Min: f64(0), Max: f64(20), Severity: SeverityWarning},
			{Kind: ExpectBetween, Column: "date", Min: f64(day)},
			{Kind: ExpectInSet, Column: "weather", Values: []string{"sun", "rain", "123"}, Mostly: 0.5},
			{Kind: ExpectUnique, Column: "date"},
			{Kind: ExpectRegex, Column: "weather", Pattern: `^[a-z]+$`},
			{Kind: ExpectMeanBetween, Column: "wind", Max: f64(5.5)},
			{Kind: ExpectQuantileBetween, Column: "wind", Quantile: 0.99, Min: f64(1), Max: f64(10)},
			{Kind: ExpectQuantileBetween, Column: "wind", Quantile: 0, Min: f64(0)},
			{Kind: ExpectRowCountBetween, Min: f64(10), Max: f64(5000)},
		},
	}
}

func TestSchemaYAMLRoundTrip(t *testing.T) {
	s := fullSchema()
	data, err := s.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("# mloop dataset schema.")) || !bytes.Contains(data, []byte("mloop data schema NAME --set FILE")) {
		t.Errorf("YAML does not start with the editing header:\n%s", data)
	}
	if !bytes.Contains(data, []byte("min: \"2012-01-01T00:00:00Z\"")) && !bytes.Contains(data, []byte("min: 2012-01-01T00:00:00Z")) {
		t.Errorf("timestamp bound is not written as a time:\n%s", data)
	}
	got, err := ParseSchema(data)
	if err != nil {
		t.Fatalf("parse own YAML: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("round trip got\n%+v\nwant\n%+v\nYAML:\n%s", got, s, data)
	}
	again, err := got.YAML()
	if err != nil || !bytes.Equal(again, data) {
		t.Errorf("YAML is not stable: got\n%s\nwant\n%s", again, data)
	}
}

func TestParseSchemaDefaults(t *testing.T) {
	s, err := ParseSchema([]byte("columns:\n  - name: a\n    type: integer\nexpectations:\n  - kind: unique\n    column: a\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := s.Columns[0]
	if !c.Nullable || c.AllowedNullFraction() != 1 || c.Severity != "" {
		t.Errorf("omitted nullable got nullable %v allowed %g, want nullable with any share", c.Nullable, c.AllowedNullFraction())
	}
	e := s.Expectations[0]
	if e.MostlyOrDefault() != 1 || e.Severity.orDefault() != SeverityError {
		t.Errorf("expectation defaults got mostly %g severity %s, want 1 error", e.MostlyOrDefault(), e.Severity.orDefault())
	}
}

func TestParseSchemaErrorsNameTheLine(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		line int
		want string
	}{
		{"syntax", "columns:\n  - name: a\n    type: [integer\n", 3, ""},
		{"tab", "columns:\n\t- name: a\n", 2, ""},
		{"unknown key", "columns:\n  - name: a\n    type: integer\n    nulable: true\n", 4, "nulable"},
		{"unknown top key", "dataset: x\ncolumn:\n  - name: a\n", 2, "column"},
		{"unknown type", "columns:\n  - name: a\n    type: integer\n  - name: b\n    type: decimal\n", 5, `unknown type "decimal"`},
		{"no name", "columns:\n  - type: integer\n", 2, "no name"},
		{"duplicate column", "columns:\n  - name: a\n    type: integer\n  - name: a\n    type: float\n", 4, "listed twice"},
		{"null fraction above 1", "columns:\n  - name: a\n    type: integer\n    max_null_fraction: 1.5\n", 4, "between 0 and 1"},
		{"null fraction not nullable", "columns:\n  - name: a\n    type: integer\n    nullable: false\n    max_null_fraction: 0.5\n", 5, "not nullable"},
		{"domain on float", "columns:\n  - name: a\n    type: float\n    domain: [1.5]\n", 4, "domain"},
		{"domain not integer", "columns:\n  - name: a\n    type: integer\n    domain: [1, x]\n", 4, `"x" is not an integer`},
		{"domain null", "columns:\n  - name: a\n    type: string\n    domain: [a, null]\n", 4, "null"},
		{"range on string", "columns:\n  - name: a\n    type: string\n    min: 1\n", 2, "numeric or timestamp"},
		{"min above max", "columns:\n  - name: a\n    type: float\n    min: 5\n    max: 1\n", 4, "above max"},
		{"bad bound", "columns:\n  - name: a\n    type: float\n    max: lots\n", 4, "neither a number nor a time"},
		{"bad severity", "columns:\n  - name: a\n    type: float\n    severity: fatal\n", 4, "fatal"},
		{"negative rows", "row_count:\n  min: -1\n", 2, "negative"},
		{"row bounds", "row_count:\n  min: 10\n  max: 1\n", 2, "above max"},
		{"negative change", "max_row_count_change: -0.5\n", 1, "≥ 0"},
		{"unknown kind", "expectations:\n  - kind: not_null\n    column: a\n  - kind: be_nice\n    column: a\n", 4, `unknown kind "be_nice"`},
		{"missing column", "expectations:\n  - kind: unique\n", 2, "missing column"},
		{"row count with column", "expectations:\n  - kind: row_count_between\n    column: a\n    min: 1\n", 3, "no column"},
		{"between without bounds", "expectations:\n  - kind: between\n    column: a\n", 2, "min, max or both"},
		{"between min above max", "expectations:\n  - kind: between\n    column: a\n    min: 3\n    max: 2\n", 4, "above max"},
		{"mostly on mean", "expectations:\n  - kind: mean_between\n    column: a\n    min: 1\n    mostly: 0.5\n", 5, "takes no mostly"},
		{"mostly zero", "expectations:\n  - kind: unique\n    column: a\n    mostly: 0\n", 4, "(0, 1]"},
		{"mostly above 1", "expectations:\n  - kind: unique\n    column: a\n    mostly: 1.5\n", 4, "(0, 1]"},
		{"pattern on unique", "expectations:\n  - kind: unique\n    column: a\n    pattern: x\n", 4, "takes no pattern"},
		{"bad regex", "expectations:\n  - kind: regex\n    column: a\n    pattern: \"(\"\n", 4, "pattern"},
		{"no pattern", "expectations:\n  - kind: regex\n    column: a\n", 2, "needs a pattern"},
		{"empty set", "expectations:\n  - kind: in_set\n    column: a\n    values: []\n", 4, "non-empty"},
		{"q outside", "expectations:\n  - kind: quantile_between\n    column: a\n    q: 2\n    min: 1\n", 4, "[0, 1]"},
		{"q missing", "expectations:\n  - kind: quantile_between\n    column: a\n    min: 1\n", 2, "needs q"},
		{"between on string column", "columns:\n  - name: s\n    type: string\nexpectations:\n  - kind: between\n    column: s\n    min: 1\n", 6, "not numeric"},
		{"fractional row count", "expectations:\n  - kind: row_count_between\n    min: 1.5\n", 3, "whole numbers"},
		{"not a mapping", "- a\n- b\n", 1, "mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSchema([]byte(tt.yaml))
			var se *SchemaError
			if !errors.As(err, &se) {
				t.Fatalf("error got %v, want *SchemaError", err)
			}
			if se.Line != tt.line || !strings.Contains(se.Error(), tt.want) {
				t.Errorf("got line %d %q, want line %d containing %q", se.Line, se.Error(), tt.line, tt.want)
			}
			if !strings.Contains(se.Error(), "line ") {
				t.Errorf("message %q does not name the line", se.Error())
			}
		})
	}
	for _, doc := range []string{"", "# only a comment\n", "a: 1\n---\nb: 2\n"} {
		if _, err := ParseSchema([]byte(doc)); err == nil {
			t.Errorf("ParseSchema(%q) got no error, want one", doc)
		}
	}
}

func TestInferSchema(t *testing.T) {
	var rows [][]string
	rows = append(rows, []string{"id", "cat", "name", "x", "sparse", "when"})
	for i := range 200 {
		sparse := ""
		if i%4 == 0 {
			sparse = "1.5"
		}
		rows = append(rows, []string{itoa(int64(i)), []string{"a", "b", "c"}[i%3], "name" + itoa(int64(i%150)),
			itoa(int64(i % 7)), sparse, "2012-01-02"})
	}
	p := mustProfileText(t, rows, 64, ProfileOptions{})
	s := InferSchema(p, InferOptions{Dataset: "d"})
	want := &Schema{Dataset: "d", Columns: []*ColumnSchema{
		{Name: "id", Type: TypeInteger},
		{Name: "cat", Type: TypeString, Domain: []string{"a", "b", "c"}},
		{Name: "name", Type: TypeString}, // 150 values in 200 rows: not categorical
		{Name: "x", Type: TypeInteger},   // integers get no domain
		{Name: "sparse", Type: TypeFloat, Nullable: true, MaxNullFraction: f64(1)},
		{Name: "when", Type: TypeTimestamp},
	}}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("inferred\n%s\nwant\n%s", mustYAML(t, s), mustYAML(t, want))
	}
	s = InferSchema(p, InferOptions{Ranges: true, MaxRowCountChange: 0.2, MaxDomainSize: 2})
	if c := s.Column("x"); c.Min == nil || *c.Min != 0 || *c.Max != 6 {
		t.Errorf("range of x got %v..%v, want 0..6", c.Min, c.Max)
	}
	if c := s.Column("cat"); c.Domain != nil || c.Min != nil {
		t.Errorf("cat with MaxDomainSize 2 got domain %v range %v, want none", c.Domain, c.Min)
	}
	if s.MaxRowCountChange == nil || *s.MaxRowCountChange != 0.2 {
		t.Errorf("max_row_count_change got %v, want 0.2", s.MaxRowCountChange)
	}
	// A 1% null share gets max(2%, 1%+1%) = 2%.
	rows = [][]string{{"v"}}
	for i := range 100 {
		v := "x"
		if i == 0 {
			v = ""
		}
		rows = append(rows, []string{v})
	}
	s = InferSchema(mustProfileText(t, rows, 64, ProfileOptions{}), InferOptions{})
	if c := s.Columns[0]; !c.Nullable || *c.MaxNullFraction != 0.02 {
		t.Errorf("1%% nulls got nullable %v max %v, want true 0.02", c.Nullable, *c.MaxNullFraction)
	}
}

func mustYAML(t *testing.T, s *Schema) string {
	t.Helper()
	b, err := s.YAML()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzParseSchema checks that ParseSchema never panics and that what it
// accepts survives a round trip through YAML.
func FuzzParseSchema(f *testing.F) {
	seed, _ := fullSchema().YAML()
	f.Add(string(seed))
	f.Add("columns:\n  - name: a\n    type: integer\n    domain: [1, 2]\n")
	f.Add("expectations:\n  - kind: regex\n    column: a\n    pattern: '^a+$'\n")
	f.Add("row_count: {min: 1, max: 2}\nmax_row_count_change: 0.1\n")
	f.Add("columns: [{name: a, type: string, domain: [x, 'y', \"z\"]}]")
	f.Add("a: &x [*x]")
	f.Fuzz(func(t *testing.T, doc string) {
		s, err := ParseSchema([]byte(doc))
		if err != nil {
			var se *SchemaError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SchemaError", err)
			}
			return
		}
		out, err := s.YAML()
		if err != nil {
			t.Fatalf("YAML of an accepted schema: %v", err)
		}
		back, err := ParseSchema(out)
		if err != nil {
			t.Fatalf("parse own YAML: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, s) {
			t.Fatalf("round trip changed the schema:\n%s", out)
		}
	})
}
