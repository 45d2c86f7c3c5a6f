package dataset

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/realdata"
)

// writeFile writes content to name in a temporary folder and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustLoad(t *testing.T, files []string, opts LoadOptions) *Table {
	t.Helper()
	tab, err := LoadTable(context.Background(), files, opts)
	if err != nil {
		t.Fatalf("LoadTable: %v", err)
	}
	return tab
}

func strings0(c *TableColumn) []string {
	out := make([]string, c.Count())
	for i := range out {
		out[i] = c.String(i)
	}
	return out
}

func TestLoadTableCSVTypes(t *testing.T) {
	p := writeFile(t, "a.csv", "id,score,ok,when,city,code\n"+
		"1,1.5,true,2001-01-01,BOS,007\n"+
		"2,NaN,NA,2001-01-02T10:00:00Z,JFK,010\n"+
		"3,,false,2001-01-03,BOS,NA\n"+
		"4,2,TRUE,2001-01-04,,42\n")
	tab := mustLoad(t, []string{p}, LoadOptions{Types: map[string]Type{"code": TypeString}})
	if tab.Rows != 4 || len(tab.Columns) != 6 {
		t.Fatalf("got %d rows and %d columns, want 4 and 6", tab.Rows, len(tab.Columns))
	}
	day := float64(24 * time.Hour / time.Microsecond)
	jan1 := float64(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
	cases := []struct {
		name      string
		typ       Type
		values    []float64
		text      []string
		nulls     int64
		nonFinite int64
	}{
		{"id", TypeInteger, []float64{1, 2, 3, 4}, nil, 0, 0},
		{"score", TypeFloat, []float64{1.5, 2}, nil, 1, 1},
		{"ok", TypeBoolean, []float64{1, 0, 1}, nil, 1, 0},
		{"when", TypeTimestamp, []float64{jan1, jan1 + day + 10*3600e6, jan1 + 2*day, jan1 + 3*day}, nil, 0, 0},
		// Null tokens ("", "NA") are nulls; digits typed string stay text.
		{"city", TypeString, nil, []string{"BOS", "JFK", "BOS"}, 1, 0},
		{"code", TypeString, nil, []string{"007", "010", "42"}, 1, 0},
	}
	for _, tc := range cases {
		c := tab.Column(tc.name)
		if c == nil {
			t.Errorf("no column %q", tc.name)
			continue
		}
		if c.Type != tc.typ || c.Nulls != tc.nulls || c.NonFinite != tc.nonFinite {
			t.Errorf("%s: got type %s, %d nulls, %d non-finite; want %s, %d, %d", tc.name, c.Type, c.Nulls, c.NonFinite, tc.typ, tc.nulls, tc.nonFinite)
		}
		if tc.typ == TypeString {
			if got := strings0(c); !slices.Equal(got, tc.text) {
				t.Errorf("%s: got values %q, want %q", tc.name, got, tc.text)
			}
		} else if !slices.Equal(c.Values, tc.values) {
			t.Errorf("%s: got values %v, want %v", tc.name, c.Values, tc.values)
		}
	}
	city := tab.Column("city")
	if len(city.Dict) != 2 || len(city.Codes) != 3 || city.Text != nil {
		t.Errorf("city: got dictionary %q, codes %v, text %q; want 2 entries, 3 codes, no text", city.Dict, city.Codes, city.Text)
	}
}

func TestLoadTableTypesFromReference(t *testing.T) {
	// The reference's types make the current side parse alike: "1" and "2"
	// stay floats, and a value that does not fit is an error naming where.
	good := writeFile(t, "cur.csv", "x,flag\n1,true\n2,false\n")
	tab := mustLoad(t, []string{good}, LoadOptions{Types: map[string]Type{"x": TypeFloat, "flag": TypeBoolean}})
	if c := tab.Column("x"); c.Type != TypeFloat || !slices.Equal(c.Values, []float64{1, 2}) {
		t.Errorf("x: got %s %v, want float [1 2]", c.Type, c.Values)
	}
	bad := writeFile(t, "bad.csv", "x,flag\n1,true\n2.5,maybe\n")
	_, err := LoadTable(context.Background(), []string{bad}, LoadOptions{Types: map[string]Type{"flag": TypeBoolean}})
	var ie *InputError
	if !errors.As(err, &ie) || ie.Column != "flag" || ie.Line != 3 || !strings.Contains(ie.File, "bad.csv") || !strings.Contains(ie.Msg, `"maybe"`) {
		t.Errorf("got error %v, want an input error at bad.csv line 3, column flag, naming the value", err)
	}
}

func TestLoadTableMixedTypes(t *testing.T) {
	p := writeFile(t, "mixed.csv", "v\n1\n2\n3\nabc\n4\n")
	_, err := LoadTable(context.Background(), []string{p}, LoadOptions{})
	var ie *InputError
	if !errors.As(err, &ie) || ie.Column != "v" || ie.Line != 5 || !strings.Contains(ie.Msg, `"abc"`) {
		t.Errorf("got error %v, want a mixed-types error at line 5 naming \"abc\"", err)
	}
	// Integers and floats together are floats.
	q := writeFile(t, "num.csv", "v\n1\n2.5\n")
	if c := mustLoad(t, []string{q}, LoadOptions{}).Column("v"); c.Type != TypeFloat || !slices.Equal(c.Values, []float64{1, 2.5}) {
		t.Errorf("got %s %v, want float [1 2.5]", c.Type, c.Values)
	}
}

func TestLoadTableFiles(t *testing.T) {
	a := writeFile(t, "a.csv", "x,s\n1,a\n2,b\n")
	b := writeFile(t, "b.tsv", "s\tx\ty\nc\t3\t9\na\t4.5\t8\n")
	c := writeFile(t, "c.csv", "x\n5\n")

	// All columns: the union, in order of first appearance; a file without
	// a column adds nulls.
	tab := mustLoad(t, []string{a, b, c}, LoadOptions{})
	if tab.Rows != 5 {
		t.Fatalf("got %d rows, want 5", tab.Rows)
	}
	var names []string
	for _, col := range tab.Columns {
		names = append(names, col.Name)
	}
	if want := []string{"x", "s", "y"}; !slices.Equal(names, want) {
		t.Errorf("got columns %v, want %v", names, want)
	}
	if x := tab.Column("x"); x.Type != TypeFloat || !slices.Equal(x.Values, []float64{1, 2, 3, 4.5, 5}) {
		t.Errorf("x: got %s %v, want float [1 2 3 4.5 5]", x.Type, x.Values)
	}
	if s := tab.Column("s"); !slices.Equal(strings0(s), []string{"a", "b", "c", "a"}) || s.Nulls != 1 {
		t.Errorf("s: got %q with %d nulls, want [a b c a] and 1 null", strings0(s), s.Nulls)
	}
	if y := tab.Column("y"); y.Type != TypeInteger || !slices.Equal(y.Values, []float64{9, 8}) || y.Nulls != 3 {
		t.Errorf("y: got %s %v with %d nulls, want integer [9 8] and 3 nulls", y.Type, y.Values, y.Nulls)
	}

	// Projection keeps the listed order and reads only those columns.
	tab = mustLoad(t, []string{a, b}, LoadOptions{Columns: []string{"s", "x"}})
	if len(tab.Columns) != 2 || tab.Columns[0].Name != "s" || tab.Columns[1].Name != "x" {
		t.Errorf("projection: got %d columns starting %q, want s, x", len(tab.Columns), tab.Columns[0].Name)
	}
	if _, err := LoadTable(context.Background(), []string{a, c}, LoadOptions{Columns: []string{"s"}}); err == nil || !strings.Contains(err.Error(), "c.csv") {
		t.Errorf("a listed column missing from a file: got %v, want an error naming the file", err)
	}
	if _, err := LoadTable(context.Background(), nil, LoadOptions{}); err == nil {
		t.Errorf("no files: got no error, want one")
	}
	if _, err := LoadTable(context.Background(), []string{a}, LoadOptions{Columns: []string{"x", "x"}}); err == nil {
		t.Errorf("a column listed twice: got no error, want one")
	}
}

func TestLoadTableDictionaryOverflow(t *testing.T) {
	defer func(n int) { maxDict = n }(maxDict)
	maxDict = 3
	p := writeFile(t, "s.csv", "s\na\nb\na\nc\nd\ne\na\n")
	c := mustLoad(t, []string{p}, LoadOptions{}).Column("s")
	if want := []string{"a", "b", "a", "c", "d", "e", "a"}; !slices.Equal(strings0(c), want) || c.Dict != nil || c.Codes != nil {
		t.Errorf("got %q (dictionary %q), want %q as plain text", strings0(c), c.Dict, want)
	}
}

func TestLoadTableFlightsParquet(t *testing.T) {
	flightsPath := realdata.Path(t, "flights-3m.parquet")
	tab := mustLoad(t, []string{flightsPath}, LoadOptions{Columns: []string{"origin", "delay"}})
	if tab.Rows != 3_000_000 || len(tab.Columns) != 2 {
		t.Fatalf("got %d rows, %d columns; want 3,000,000 and 2", tab.Rows, len(tab.Columns))
	}
	origin, delay := tab.Columns[0], tab.Columns[1]
	if origin.Name != "origin" || origin.Type != TypeString || origin.Count() != 3_000_000 || len(origin.Dict) != 229 {
		t.Errorf("origin: got %s %s with %d values and %d distinct, want string, 3,000,000 values, 229 airports", origin.Name, origin.Type, origin.Count(), len(origin.Dict))
	}
	if delay.Type != TypeInteger || delay.Count() != 3_000_000 || delay.Nulls != 0 {
		t.Errorf("delay: got %s with %d values and %d nulls, want integer, 3,000,000, 0", delay.Type, delay.Count(), delay.Nulls)
	}
	for _, v := range delay.Values {
		if v != math.Trunc(v) {
			t.Fatalf("delay: got %v, want whole minutes", v)
		}
	}
}

func FuzzLoadTableCSV(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,x\n2,y\n",
		"a\n1\n2.5\nNaN\n\n",
		"t,b\n2001-01-01,true\n2001-01-02T03:04:05Z,false\n",
		"a,b\n1,2\n3\n",
		"a\nabc\n1\n",
		"a,a\n1,2\n",
		"",
	} {
		f.Add([]byte(s), false)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, typed bool) {
		p := filepath.Join(dir, "fuzz.csv")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		opts := LoadOptions{}
		if typed {
			opts.Types = map[string]Type{"a": TypeFloat, "b": TypeString, "t": TypeTimestamp}
		}
		tab, err := LoadTable(context.Background(), []string{p}, opts)
		if err != nil {
			return
		}
		for _, c := range tab.Columns {
			if got := int64(c.Count()) + c.Nulls + c.NonFinite; got != tab.Rows {
				t.Errorf("column %q: %d values + %d nulls + %d non-finite = %d, want %d rows", c.Name, c.Count(), c.Nulls, c.NonFinite, got, tab.Rows)
			}
			for _, v := range c.Values {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Errorf("column %q holds non-finite %v", c.Name, v)
				}
			}
			if c.Dict != nil {
				for _, code := range c.Codes {
					if int(code) >= len(c.Dict) {
						t.Errorf("column %q: code %d beyond its dictionary of %d", c.Name, code, len(c.Dict))
					}
				}
			}
		}
	})
}
