package dataset

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/mloop/mloop/internal/realdata"
)

func TestCSVRead(t *testing.T) {
	data := "\xef\xbb\xbfid,name,score\r\n" +
		"1,Ann,3.5\r\n" +
		"2,\"Smith, Bob\",NA\r\n" +
		"\r\n" +
		"3,\"say \"\"hi\"\"\nand bye\",\r\n" +
		"4,5'10\",#N/A\n" +
		"5,\"\",null"
	got, err := readString(t, "people.csv", data, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantCols := []Column{{Name: "id"}, {Name: "name"}, {Name: "score"}}
	if !reflect.DeepEqual(got.cols, wantCols) {
		t.Errorf("got columns %v, want %v", got.cols, wantCols)
	}
	wantRows := [][]any{
		{"1", "Ann", "3.5"},
		{"2", "Smith, Bob", nil},
		{"3", "say \"hi\"\nand bye", nil},
		{"4", "5'10\"", nil},
		{"5", nil, nil},
	}
	if !reflect.DeepEqual(got.rows, wantRows) {
		t.Errorf("got rows %q, want %q", got.rows, wantRows)
	}
	if want := []int64{2, 3, 5, 7, 8}; !reflect.DeepEqual(got.lines, want) {
		t.Errorf("got lines %v, want %v", got.lines, want)
	}
}

func TestCSVBatches(t *testing.T) {
	var b strings.Builder
	b.WriteString("x,y\n")
	for i := range 10 {
		fmt.Fprintf(&b, "%d,%d\n", i, i*i)
		if i == 4 {
			b.WriteString("\n") // a blank line: line numbers skip it
		}
	}
	got, err := readString(t, "sq.csv", b.String(), ReadOptions{BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, 5, 9}; !reflect.DeepEqual(got.first, want) {
		t.Errorf("got batches starting at rows %v, want %v", got.first, want)
	}
	if len(got.rows) != 10 {
		t.Fatalf("got %d rows, want 10", len(got.rows))
	}
	for i, row := range got.rows {
		if want := []any{fmt.Sprint(i), fmt.Sprint(i * i)}; !reflect.DeepEqual(row, want) {
			t.Errorf("row %d: got %v, want %v", i+1, row, want)
		}
		wantLine := int64(i + 2)
		if i > 4 {
			wantLine++
		}
		if got.lines[i] != wantLine {
			t.Errorf("row %d: got line %d, want %d", i+1, got.lines[i], wantLine)
		}
	}
}

func TestCSVNullSliceOnlyWhenNeeded(t *testing.T) {
	r, err := NewReader("n.csv", strings.NewReader("a,b\n1,\n2,3\n"), 12, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := r.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b.Cols[0].Null != nil {
		t.Errorf("column a: got Null %v, want nil (no nulls)", b.Cols[0].Null)
	}
	if want := []bool{true, false}; !reflect.DeepEqual(b.Cols[1].Null, want) {
		t.Errorf("column b: got Null %v, want %v", b.Cols[1].Null, want)
	}
	if b.Cols[1].Text[0] != "" {
		t.Errorf("column b row 1: got %q in a null slot, want \"\"", b.Cols[1].Text[0])
	}
}

func TestCSVProjection(t *testing.T) {
	data := "a,b,c,d\n1,2,3,4\n5,\"6\n6\",7,8\n"
	got, err := readString(t, "p.csv", data, ReadOptions{Columns: []string{"d", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Column{{Name: "b"}, {Name: "d"}}; !reflect.DeepEqual(got.cols, want) {
		t.Errorf("got columns %v, want %v (file order)", got.cols, want)
	}
	if want := [][]any{{"2", "4"}, {"6\n6", "8"}}; !reflect.DeepEqual(got.rows, want) {
		t.Errorf("got rows %q, want %q", got.rows, want)
	}

	_, err = readString(t, "p.csv", data, ReadOptions{Columns: []string{"b", "zz"}})
	mustInputError(t, err, "p.csv", 0, 0, "zz", "no such column; the file has a, b, c, d")

	got, err = readString(t, "p.csv", data, ReadOptions{Columns: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.cols) != 0 || len(got.rows) != 2 {
		t.Errorf("empty projection: got %d columns and %d rows, want 0 and 2", len(got.cols), len(got.rows))
	}
}

func TestTSVRead(t *testing.T) {
	got, err := readString(t, "t.tab", "a\tb c\n1,5\t\"x\ty\"\n", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Column{{Name: "a"}, {Name: "b c"}}; !reflect.DeepEqual(got.cols, want) {
		t.Errorf("got columns %v, want %v", got.cols, want)
	}
	if want := [][]any{{"1,5", "x\ty"}}; !reflect.DeepEqual(got.rows, want) {
		t.Errorf("got rows %q, want %q", got.rows, want)
	}
}

func TestCSVHeaderOnly(t *testing.T) {
	for _, data := range []string{"a,b", "a,b\n", "a,b\r\n\r\n"} {
		r, err := NewReader("h.csv", strings.NewReader(data), int64(len(data)), ReadOptions{})
		if err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		if want := []Column{{Name: "a"}, {Name: "b"}}; !reflect.DeepEqual(r.Columns(), want) {
			t.Errorf("%q: got columns %v, want %v", data, r.Columns(), want)
		}
		if _, err := r.Next(context.Background()); !errors.Is(err, io.EOF) {
			t.Errorf("%q: got %v, want io.EOF", data, err)
		}
		r.Close()
	}
}

// TestCSVBadInput checks that each kind of bad CSV fails with an
// *InputError naming the file, the line (and row) and the column.
func TestCSVBadInput(t *testing.T) {
	tests := []struct {
		name, data string
		line, row  int64
		column     string
		msg        string
	}{
		{"empty file", "", 0, 0, "", "empty file: no header"},
		{"only a byte order mark", "\xef\xbb\xbf", 0, 0, "", "empty file: no header"},
		{"only blank lines", "\n\r\n\n", 0, 0, "", "empty file: no header"},
		{"ragged row, too few fields", "a,b,c\n1,2,3\n4,5\n", 3, 2, "c", "ragged row: 2 fields, but the header has 3"},
		{"ragged row, too many fields", "a,b\n1,2\n3,4\n5,6,7\n", 4, 3, "", "ragged row: 3 fields, but the header has 2"},
		{"ragged quoted row", "a,b\n\"1\",\"2\",\"3\"\n", 2, 1, "", "ragged row: 3 fields, but the header has 2"},
		{"invalid UTF-8", "a,b\n1,ok\n2,caf\xe9\n", 3, 2, "b", "invalid UTF-8 at byte 4 of the field"},
		{"invalid UTF-8 in a quoted field", "a,b\n\"x\xff\",1\n", 2, 1, "a", "invalid UTF-8 at byte 2"},
		{"invalid UTF-8 in the header", "a,\xc3\x28\n", 1, 0, "", "name of column 2 is not valid UTF-8"},
		{"empty column name", "a,,c\n1,2,3\n", 1, 0, "", "column 2 has an empty name"},
		{"duplicate column name", "a,b,a\n1,2,3\n", 1, 0, "a", "duplicate column name (columns 1 and 3)"},
		{"quote not closed", "a,b\n1,2\n3,\"abc\ndef\n", 3, 2, "b", "quoted field is not closed"},
		{"text after the closing quote", "a,b\n1,\"x\"y\n", 2, 1, "b", "unexpected 'y' after the closing quote"},
		{"quote not closed in the header", "\"a,b\n", 1, 0, "", "header: quoted field is not closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readString(t, "bad.csv", tt.data, ReadOptions{})
			mustInputError(t, err, "bad.csv", tt.line, tt.row, tt.column, tt.msg)
			if tt.line > 0 && !strings.HasPrefix(err.Error(), fmt.Sprintf("bad.csv:%d: ", tt.line)) {
				t.Errorf("got error %q, want it to start with file:line", err)
			}
		})
	}
}

// TestCSVErrorIsSticky checks that Next keeps returning the error.
func TestCSVErrorIsSticky(t *testing.T) {
	data := "a\n1\n\xff\n3\n"
	r, err := NewReader("s.csv", strings.NewReader(data), int64(len(data)), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err1 := r.Next(context.Background())
	_, err2 := r.Next(context.Background())
	if err1 == nil || err1 != err2 {
		t.Errorf("got errors %v then %v, want the same InputError twice", err1, err2)
	}
}

// longLineFile is a CSV whose second row has one field of n bytes of 'x',
// quoted when quoted is set, served without holding the file in memory.
type longLineFile struct {
	head, tail []byte
	n          int64
}

// xBlock is a block of 'x' to copy from.
var xBlock = bytes.Repeat([]byte{'x'}, 1<<16)

func newLongLineFile(n int64, quoted bool) *longLineFile {
	f := &longLineFile{head: []byte("id,text,z\n1,"), tail: []byte(",end\n2,short,z\n"), n: n}
	if quoted {
		f.head = append(f.head, '"')
		f.tail = append([]byte{'"'}, f.tail...)
	}
	return f
}

func (f *longLineFile) size() int64 { return int64(len(f.head)) + f.n + int64(len(f.tail)) }

func (f *longLineFile) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		switch h := int64(len(f.head)); {
		case pos < h:
			n += copy(p[n:], f.head[pos:])
		case pos < h+f.n:
			k := min(int64(len(p)-n), h+f.n-pos, int64(len(xBlock)))
			n += copy(p[n:n+int(k)], xBlock)
		case pos < f.size():
			n += copy(p[n:], f.tail[pos-h-f.n:])
		default:
			return n, io.EOF
		}
	}
	return n, nil
}

// TestCSVVeryLongLine reads a 100 MB unquoted field and a 16 MB quoted one,
// both far longer than the read buffer.
func TestCSVVeryLongLine(t *testing.T) {
	for _, quoted := range []bool{false, true} {
		n := int64(100 << 20)
		if quoted {
			n = 16 << 20
		}
		if testing.Short() {
			n = 4 << 20
		}
		f := newLongLineFile(n, quoted)
		r, err := NewReader("long.csv", f, f.size(), ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := readTable(t, r)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.rows) != 2 {
			t.Fatalf("quoted=%v: got %d rows, want 2", quoted, len(got.rows))
		}
		s, _ := got.rows[0][1].(string)
		if int64(len(s)) != n || int64(strings.Count(s, "x")) != n {
			t.Errorf("quoted=%v: got a field of %d bytes, want %d bytes of x", quoted, len(s), n)
		}
		if want := []any{"2", "short", "z"}; !reflect.DeepEqual(got.rows[1], want) || got.rows[0][2] != "end" {
			t.Errorf("quoted=%v: got rows %q / %q around the long field", quoted, got.rows[0][2], got.rows[1])
		}
		if want := []int64{2, 3}; !reflect.DeepEqual(got.lines, want) {
			t.Errorf("quoted=%v: got lines %v, want %v", quoted, got.lines, want)
		}
	}
}

// TestCSVMatchesEncodingCSV compares the reader with encoding/csv on random
// files full of quotes, delimiters and line breaks, read with small
// batches.
func TestCSVMatchesEncodingCSV(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	pieces := []string{"a", "bc", "1.5", ",", "\"", "\n", "\r\n", " ", "é", "NA", "", "日本"}
	for iter := range 300 {
		ncol := 1 + rng.IntN(4)
		var rows [][]string
		header := make([]string, ncol)
		for j := range header {
			header[j] = fmt.Sprintf("c%d", j)
		}
		rows = append(rows, header)
		for range rng.IntN(30) {
			row := make([]string, ncol)
			for j := range row {
				var b strings.Builder
				for range rng.IntN(4) {
					b.WriteString(pieces[rng.IntN(len(pieces))])
				}
				row[j] = b.String()
			}
			if ncol == 1 && row[0] == "" {
				row[0] = "x" // encoding/csv writes an empty record as a blank line
			}
			rows = append(rows, row)
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		w.UseCRLF = iter%2 == 0
		if err := w.WriteAll(rows); err != nil {
			t.Fatal(err)
		}
		data := buf.String()
		got, err := readString(t, "r.csv", data, ReadOptions{BatchSize: 1 + rng.IntN(5)})
		if err != nil {
			t.Fatalf("file %q: %v", data, err)
		}
		ref := csv.NewReader(strings.NewReader(data))
		want, err := ref.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(got.rows) != len(want)-1 {
			t.Fatalf("file %q: got %d rows, want %d", data, len(got.rows), len(want)-1)
		}
		for i, row := range want[1:] {
			for j, v := range row {
				var w any = v
				if IsNullToken(v) {
					w = nil
				}
				g := got.rows[i][j]
				if gs, ok := g.(string); ok && w != nil {
					// encoding/csv turns CRLF inside quotes into LF.
					g = strings.ReplaceAll(gs, "\r\n", "\n")
				}
				if g != w {
					t.Fatalf("file %q row %d column %d: got %q, want %q", data, i+1, j+1, got.rows[i][j], w)
				}
			}
		}
	}
}

func TestCSVSeattleWeather(t *testing.T) {
	path := realdata.Path(t, "seattle-weather.csv")
	r, err := OpenFile(context.Background(), path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := readTable(t, r)
	if err != nil {
		t.Fatal(err)
	}
	wantCols := []Column{{Name: "date"}, {Name: "precipitation"}, {Name: "temp_max"}, {Name: "temp_min"}, {Name: "wind"}, {Name: "weather"}}
	if !reflect.DeepEqual(got.cols, wantCols) {
		t.Errorf("got columns %v, want %v", got.cols, wantCols)
	}
	if len(got.rows) != 1461 {
		t.Fatalf("got %d rows, want 1461", len(got.rows))
	}
	if want := []any{"2012-01-01", "0.0", "12.8", "5.0", "4.7", "drizzle"}; !reflect.DeepEqual(got.rows[0], want) {
		t.Errorf("got first row %v, want %v", got.rows[0], want)
	}
	if want := []any{"2015-12-31", "0.0", "5.6", "-2.1", "3.5", "sun"}; !reflect.DeepEqual(got.rows[1460], want) {
		t.Errorf("got last row %v, want %v", got.rows[1460], want)
	}
	if got.lines[1460] != 1462 {
		t.Errorf("got last row on line %d, want 1462", got.lines[1460])
	}
	weathers := map[any]int{}
	for _, row := range got.rows {
		weathers[row[5]]++
	}
	if len(weathers) != 5 {
		t.Errorf("got weather values %v, want the 5 of the README", weathers)
	}
}

// FuzzCSVReader reads arbitrary bytes as CSV: it must never panic, every
// error must be an *InputError naming the file, and batches must be
// consistent.
func FuzzCSVReader(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,2\n", "\xef\xbb\xbfa\r\n\"x\"\"y\"\r\n", "a,b\n1\n", "a\n\"unclosed\n", "a,a\n", "a,\n",
		"a,b\n\"1\"x,2\n", "a\n\xff\n", "a\tb\n1\t2\n", "\n\n", "", "a,b\n\"q\nq\",NA\n",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, batch uint8) {
		opts := ReadOptions{BatchSize: 1 + int(batch%8)}
		r, err := NewReader("fuzz.csv", bytes.NewReader(data), int64(len(data)), opts)
		if err != nil {
			checkFuzzError(t, err, "fuzz.csv")
			return
		}
		defer r.Close()
		ncol := len(r.Columns())
		lastLine := int64(1)
		for {
			b, err := r.Next(context.Background())
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				checkFuzzError(t, err, "fuzz.csv")
				return
			}
			if b.Rows < 1 || b.Rows > opts.BatchSize || len(b.Cols) != ncol || len(b.Lines) != b.Rows {
				t.Fatalf("inconsistent batch: %d rows, %d columns, %d lines", b.Rows, len(b.Cols), len(b.Lines))
			}
			for i := 0; i < b.Rows; i++ {
				if b.Lines[i] <= lastLine {
					t.Fatalf("row on line %d after line %d", b.Lines[i], lastLine)
				}
				lastLine = b.Lines[i]
				for c := range b.Cols {
					null := b.Cols[c].Null != nil && b.Cols[c].Null[i]
					if s := b.Cols[c].Text[i]; null != IsNullToken(s) && !(null && s == "") {
						t.Fatalf("value %q: null is %v", s, null)
					}
				}
			}
		}
	})
}

// checkFuzzError checks that a reader's error on arbitrary input is an
// *InputError about file.
func checkFuzzError(t *testing.T, err error, file string) {
	t.Helper()
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("got error %v (%T), want an *InputError", err, err)
	}
	if ie.File != file || ie.Msg == "" {
		t.Fatalf("got error %#v, want one naming %s with a message", ie, file)
	}
}
