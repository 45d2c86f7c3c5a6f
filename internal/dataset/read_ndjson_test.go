package dataset

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestNDJSONRead(t *testing.T) {
	data := "\xef\xbb\xbf{\"id\": 1, \"name\": \"Ann\", \"score\": 3.5, \"ok\": true}\r\n" +
		"\n" +
		"  {\"id\": 2, \"name\": \"B\\u00f6b \\\"the\\\" 2nd\", \"score\": 4, \"tags\": [\"a\", {\"b\": null}]}\n" +
		"{\"name\": null, \"id\": -3, \"ok\": false, \"tags\": {\"x\" : 1}, \"score\": -1e2}\n" +
		"{}\n" +
		"{\"id\": 9223372036854775807, \"when\": \"2001-01-01T00:00:00Z\"}"
	got, err := readString(t, "people.ndjson", data, ReadOptions{BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	wantCols := []Column{
		{Name: "id", Type: TypeInteger},
		{Name: "name"},
		{Name: "score", Type: TypeFloat},
		{Name: "ok", Type: TypeBoolean},
		{Name: "tags", Type: TypeString},
		{Name: "when"},
	}
	if !reflect.DeepEqual(got.cols, wantCols) {
		t.Errorf("got columns %v, want %v", got.cols, wantCols)
	}
	wantRows := [][]any{
		{int64(1), "Ann", 3.5, true, nil, nil},
		{int64(2), "Böb \"the\" 2nd", 4.0, nil, `["a",{"b":null}]`, nil},
		{int64(-3), nil, -100.0, false, `{"x":1}`, nil},
		{nil, nil, nil, nil, nil, nil},
		{int64(math.MaxInt64), nil, nil, nil, nil, "2001-01-01T00:00:00Z"},
	}
	if !reflect.DeepEqual(got.rows, wantRows) {
		t.Errorf("got rows\n%v\nwant\n%v", got.rows, wantRows)
	}
	if want := []int64{1, 3, 4, 5, 6}; !reflect.DeepEqual(got.lines, want) {
		t.Errorf("got lines %v, want %v", got.lines, want)
	}
	if want := []int64{1, 4}; !reflect.DeepEqual(got.first, want) {
		t.Errorf("got batches at rows %v, want %v", got.first, want)
	}
}

// TestNDJSONKinds checks how a column's kind follows from all its values.
func TestNDJSONKinds(t *testing.T) {
	tests := []struct {
		name, data string
		want       Column
		values     []any
	}{
		{"integers", `{"x": 1}` + "\n" + `{"x": -20}`, Column{Name: "x", Type: TypeInteger}, []any{int64(1), int64(-20)}},
		{"a fraction later makes floats", `{"x": 1}` + "\n" + `{"x": 2.5}`, Column{Name: "x", Type: TypeFloat}, []any{1.0, 2.5}},
		{"an exponent makes floats", `{"x": 1}` + "\n" + `{"x": 1e3}`, Column{Name: "x", Type: TypeFloat}, []any{1.0, 1000.0}},
		{"beyond int64 makes floats", `{"x": 1}` + "\n" + `{"x": 9223372036854775808}`, Column{Name: "x", Type: TypeFloat}, []any{1.0, 9223372036854775808.0}},
		{"only nulls", `{"x": null}` + "\n" + `{"y": 1}`, Column{Name: "x"}, []any{nil, nil}},
		{"booleans", `{"x": true}` + "\n" + `{"x": null}`, Column{Name: "x", Type: TypeBoolean}, []any{true, nil}},
		{"objects and arrays", `{"x": [1, 2]}` + "\n" + `{"x": {"a": "b"}}`, Column{Name: "x", Type: TypeString}, []any{"[1,2]", `{"a":"b"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readString(t, "k.jsonl", tt.data, ReadOptions{BatchSize: 1})
			if err != nil {
				t.Fatal(err)
			}
			if got.cols[0] != tt.want {
				t.Errorf("got column %v, want %v", got.cols[0], tt.want)
			}
			var values []any
			for _, r := range got.rows {
				values = append(values, r[0])
			}
			if !reflect.DeepEqual(values, tt.values) {
				t.Errorf("got values %v, want %v", values, tt.values)
			}
		})
	}
}

func TestNDJSONProjection(t *testing.T) {
	data := `{"a": 1, "b": "x", "c": true}` + "\n" + `{"c": false, "d": 2.5}` + "\n"
	got, err := readString(t, "p.ndjson", data, ReadOptions{Columns: []string{"d", "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Column{{Name: "a", Type: TypeInteger}, {Name: "d", Type: TypeFloat}}; !reflect.DeepEqual(got.cols, want) {
		t.Errorf("got columns %v, want %v", got.cols, want)
	}
	if want := [][]any{{int64(1), nil}, {nil, 2.5}}; !reflect.DeepEqual(got.rows, want) {
		t.Errorf("got rows %v, want %v", got.rows, want)
	}
	_, err = readString(t, "p.ndjson", data, ReadOptions{Columns: []string{"e"}})
	mustInputError(t, err, "p.ndjson", 0, 0, "e", "no such column; the file has a, b, c, d")
}

func TestNDJSONLongLine(t *testing.T) {
	long := strings.Repeat("y", 3<<20)
	data := `{"a": "` + long + `"}` + "\n" + `{"a": "z"}`
	got, err := readString(t, "l.ndjson", data, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.rows) != 2 || got.rows[0][0] != long || got.rows[1][0] != "z" {
		t.Errorf("got %d rows, want the long value then \"z\"", len(got.rows))
	}
}

// TestNDJSONBadInput checks that bad NDJSON fails with an *InputError
// naming the file, the line and the column.
func TestNDJSONBadInput(t *testing.T) {
	tests := []struct {
		name, data string
		line, row  int64
		column     string
		msg        string
	}{
		{"empty file", "", 0, 0, "", "empty file: no JSON object"},
		{"blank lines only", "\n  \n", 0, 0, "", "empty file: no JSON object"},
		{"mixed types", "{\"a\": 1}\n{\"a\": null}\n\n{\"a\": 2}\n{\"a\": \"x\"}\n", 5, 4, "a", "mixed types: string at line 5, number earlier (line 1)"},
		{"boolean after string", "{\"a\": \"x\"}\n{\"a\": true}\n", 2, 2, "a", "mixed types: boolean at line 2, string earlier (line 1)"},
		{"array after number", "{\"a\": 1}\n{\"a\": [1]}\n", 2, 2, "a", "mixed types: object or array at line 2, number earlier"},
		{"invalid JSON", "{\"a\": 1}\n{\"a\": 1,}\n", 2, 2, "", "invalid JSON at byte"},
		{"truncated object", "{\"a\": 1}\n{\"a\": \n", 2, 2, "", "invalid JSON"},
		{"not an object", "{\"a\": 1}\n[1, 2]\n", 2, 2, "", "a line must hold a JSON object, not a JSON array"},
		{"a number line", "7\n", 1, 1, "", "not a JSON number"},
		{"duplicate key", "{\"a\": 1, \"b\": 2, \"a\": 3}\n", 1, 1, "a", "duplicate key in one object"},
		{"invalid UTF-8 value", "{\"a\": \"ok\"}\n{\"a\": \"caf\xe9\"}\n", 2, 2, "a", "value is not valid UTF-8"},
		{"invalid UTF-8 key", "{\"\xff\": 1}\n", 1, 1, "", "is not valid UTF-8"},
		{"two objects on a line", "{\"a\": 1} {\"a\": 2}\n", 1, 1, "", "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readString(t, "bad.ndjson", tt.data, ReadOptions{})
			mustInputError(t, err, "bad.ndjson", tt.line, tt.row, tt.column, tt.msg)
		})
	}
}

// FuzzNDJSONReader reads arbitrary bytes as NDJSON: it must never panic,
// errors must be *InputError naming the file, and every batch value must
// have its column's kind.
func FuzzNDJSONReader(f *testing.F) {
	for _, s := range []string{
		`{"a": 1, "b": "x"}` + "\n" + `{"b": null, "c": [1, {"d": 2}]}`,
		`{"a": 1}` + "\n" + `{"a": "s"}`, `{"a": 1.5e3, "b": true}`, `[1]`, `{"a": "\u00e9\n"}`, "{\"a\":1}\r\n\r\n{}",
		`{"a": 1, "a": 2}`, `{"a": 92233720368547758070}`, "{\"\xff\": 1}", `{"a": {"b": [`,
	} {
		f.Add([]byte(s), uint8(2))
	}
	f.Fuzz(func(t *testing.T, data []byte, batch uint8) {
		opts := ReadOptions{BatchSize: 1 + int(batch%8)}
		r, err := NewReader("fuzz.ndjson", bytes.NewReader(data), int64(len(data)), opts)
		if err != nil {
			checkFuzzError(t, err, "fuzz.ndjson")
			return
		}
		defer r.Close()
		cols := r.Columns()
		for {
			b, err := r.Next(context.Background())
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				checkFuzzError(t, err, "fuzz.ndjson")
				return
			}
			if b.Rows < 1 || b.Rows > opts.BatchSize || len(b.Cols) != len(cols) {
				t.Fatalf("inconsistent batch: %d rows, %d columns", b.Rows, len(b.Cols))
			}
			for c, cv := range b.Cols {
				want := KindText
				switch cols[c].Type {
				case TypeInteger:
					want = KindInt
				case TypeFloat:
					want = KindFloat
				case TypeBoolean:
					want = KindBool
				}
				if cv.Kind != want {
					t.Fatalf("column %v: got kind %d, want %d", cols[c], cv.Kind, want)
				}
			}
		}
	})
}
