package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/realdata"
	"github.com/parquet-go/parquet-go"
)

// writeParquet writes rows as a Parquet file.
func writeParquet[T any](tb testing.TB, rows []T, opts ...parquet.WriterOption) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, opts...)
	if _, err := w.Write(rows); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// typedRow has a column of each type the reader maps.
type typedRow struct {
	ID     int64     `parquet:"id"`
	Small  int32     `parquet:"small,int(16)"`
	U32    uint32    `parquet:"u32"`
	Score  *float64  `parquet:"score,optional"`
	F32    float32   `parquet:"f32"`
	OK     *bool     `parquet:"ok,optional"`
	Name   string    `parquet:"name,dict"`
	Opt    *string   `parquet:"opt,optional,dict"`
	Enum   string    `parquet:"enum,enum"`
	Raw    []byte    `parquet:"raw"`
	Millis time.Time `parquet:"millis,timestamp(millisecond)"`
	Micros int64     `parquet:"micros,timestamp(microsecond)"`
	Nanos  int64     `parquet:"nanos,timestamp(nanosecond)"`
	Day    int32     `parquet:"day,date"` // days; parquet-go v0.32 writes time.Time dates wrong
	Price  int64     `parquet:"price,decimal(2:18)"`
	Clock  int64     `parquet:"clock,time(microsecond)"`
	UUID   [16]byte  `parquet:"uuid,uuid"`
}

func TestParquetTypes(t *testing.T) {
	f := 2.5
	yes := true
	s := "here"
	t0 := time.Date(2001, 1, 2, 3, 4, 5, 0, time.UTC)
	rows := []typedRow{
		{ID: 1, Small: -7, U32: math.MaxUint32, Score: &f, F32: 0.5, OK: &yes, Name: "LAX", Opt: &s, Enum: "red", Raw: []byte("raw"),
			Millis: t0.Add(123 * time.Millisecond), Micros: 42, Nanos: -1500, Day: -1,
			Price: -12345, Clock: 3600e6, UUID: [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8}},
		{ID: 2, Name: "SEA", Enum: "blue", Millis: t0, Day: 11324},
	}
	got, err := readBytes(t, "types.parquet", writeParquet(t, rows), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantCols := []Column{
		{"id", TypeInteger}, {"small", TypeInteger}, {"u32", TypeInteger}, {"score", TypeFloat}, {"f32", TypeFloat},
		{"ok", TypeBoolean}, {"name", TypeString}, {"opt", TypeString}, {"enum", TypeString}, {"raw", TypeString},
		{"millis", TypeTimestamp}, {"micros", TypeTimestamp}, {"nanos", TypeTimestamp}, {"day", TypeTimestamp},
		{"price", TypeFloat}, {"clock", TypeInteger}, {"uuid", TypeString},
	}
	if !reflect.DeepEqual(got.cols, wantCols) {
		t.Errorf("got columns\n%v\nwant\n%v", got.cols, wantCols)
	}
	want := [][]any{
		{int64(1), int64(-7), int64(math.MaxUint32), 2.5, 0.5, true, "LAX", "here", "red", "raw",
			tsMicros(t0.UnixMicro() + 123000), tsMicros(42), tsMicros(-2), tsMicros(-86400e6),
			-123.45, int64(3600e6), "12345678-9abc-def0-0102-030405060708"},
		{int64(2), int64(0), int64(0), nil, 0.0, nil, "SEA", nil, "blue", "",
			tsMicros(t0.UnixMicro()), tsMicros(0), tsMicros(0), tsMicros(time.Date(2001, 1, 2, 0, 0, 0, 0, time.UTC).UnixMicro()),
			0.0, int64(0), "00000000-0000-0000-0000-000000000000"},
	}
	if len(got.rows) != len(want) {
		t.Fatalf("got %d rows, want %d", len(got.rows), len(want))
	}
	for i := range want {
		for c := range want[i] {
			g, w := got.rows[i][c], want[i][c]
			if gf, ok := g.(float64); ok {
				if wf, ok := w.(float64); ok && math.Abs(gf-wf) < 1e-9 {
					continue
				}
			}
			if g != w {
				t.Errorf("row %d column %s: got %v (%T), want %v (%T)", i+1, wantCols[c].Name, g, g, w, w)
			}
		}
	}
	if got.lines != nil {
		t.Errorf("got lines %v, want none for Parquet", got.lines)
	}
}

type seqRow struct {
	N    int64   `parquet:"n"`
	Sq   *int64  `parquet:"sq,optional"`
	Word string  `parquet:"word,dict"`
	Half float64 `parquet:"half"`
	Flag bool    `parquet:"flag"`
}

func seqRows(n int) []seqRow {
	rows := make([]seqRow, n)
	for i := range rows {
		rows[i] = seqRow{N: int64(i), Word: fmt.Sprintf("w%d", i%17), Half: float64(i) / 2, Flag: i%3 == 0}
		if i%5 != 0 {
			sq := int64(i * i)
			rows[i].Sq = &sq
		}
	}
	return rows
}

// TestParquetBatches reads a file of several row groups of several pages
// with batches that do not line up with either.
func TestParquetBatches(t *testing.T) {
	rows := seqRows(2500)
	data := writeParquet(t, rows, parquet.MaxRowsPerRowGroup(700), parquet.PageBufferSize(512))
	for _, batch := range []int{1, 7, 128, 10000} {
		got, err := readBytes(t, "seq.parquet", data, ReadOptions{BatchSize: batch})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.rows) != len(rows) {
			t.Fatalf("batch %d: got %d rows, want %d", batch, len(got.rows), len(rows))
		}
		for i, r := range rows {
			var sq any
			if r.Sq != nil {
				sq = *r.Sq
			}
			want := []any{r.N, sq, r.Word, r.Half, r.Flag}
			if !reflect.DeepEqual(got.rows[i], want) {
				t.Fatalf("batch %d, row %d: got %v, want %v", batch, i+1, got.rows[i], want)
			}
		}
		next := int64(1)
		for i, first := range got.first {
			size := int64(got.sizes[i])
			if first != next || size < 1 || size > int64(batch) {
				t.Fatalf("batch size %d: batch %d has rows %d..%d, want it to start at %d with at most %d rows", batch, i, first, first+size-1, next, batch)
			}
			if (first-1)/700 != (first+size-2)/700 {
				t.Errorf("batch size %d: batch %d (rows %d..%d) spans two row groups", batch, i, first, first+size-1)
			}
			next = first + size
		}
	}

	got, err := readBytes(t, "seq.parquet", data, ReadOptions{Columns: []string{"word", "n"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Column{{"n", TypeInteger}, {"word", TypeString}}; !reflect.DeepEqual(got.cols, want) {
		t.Errorf("projection: got columns %v, want %v", got.cols, want)
	}
	if len(got.rows) != 2500 || got.rows[2499][0] != int64(2499) || got.rows[2499][1] != fmt.Sprintf("w%d", 2499%17) {
		t.Errorf("projection: got %d rows ending with %v", len(got.rows), got.rows[len(got.rows)-1])
	}
	_, err = readBytes(t, "seq.parquet", data, ReadOptions{Columns: []string{"n", "nope"}})
	mustInputError(t, err, "seq.parquet", 0, 0, "nope", "no such column; the file has n, sq, word, half, flag")
}

type nestedRow struct {
	ID    int64                  `parquet:"id"`
	Point struct{ X, Y float64 } `parquet:"point"`
	Tags  []string               `parquet:"tags,list"`
}

func TestParquetNested(t *testing.T) {
	data := writeParquet(t, []nestedRow{{ID: 1, Tags: []string{"a"}}, {ID: 2}})
	_, err := readBytes(t, "n.parquet", data, ReadOptions{})
	mustInputError(t, err, "n.parquet", 0, 0, "point", "nested or repeated; mloop reads flat tables")
	_, err = readBytes(t, "n.parquet", data, ReadOptions{Columns: []string{"tags"}})
	mustInputError(t, err, "n.parquet", 0, 0, "tags", "mloop reads flat tables")
	got, err := readBytes(t, "n.parquet", data, ReadOptions{Columns: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]any{{int64(1)}, {int64(2)}}; !reflect.DeepEqual(got.rows, want) {
		t.Errorf("got %v, want %v", got.rows, want)
	}
}

// TestParquetCorrupt checks that truncated and damaged files fail with an
// *InputError naming the file, and never panic.
func TestParquetCorrupt(t *testing.T) {
	data := writeParquet(t, seqRows(3000), parquet.MaxRowsPerRowGroup(1000))
	mustFail := func(name string, b []byte, msg string) *InputError {
		t.Helper()
		_, err := readBytes(t, "c.parquet", b, ReadOptions{})
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Fatalf("%s: got %v, want an *InputError", name, err)
		}
		if ie.File != "c.parquet" || !strings.Contains(ie.Msg, msg) {
			t.Errorf("%s: got %v, want the file and %q", name, err, msg)
		}
		return ie
	}
	mustFail("empty", nil, "too short")
	mustFail("not Parquet", []byte("id,name\n1,2\n"), "does not start with PAR1")
	mustFail("cut in half", data[:len(data)/2], "does not end with PAR1")
	mustFail("last byte missing", data[:len(data)-1], "does not end with PAR1")

	huge := bytes.Clone(data)
	copy(huge[len(huge)-8:], []byte{0xff, 0xff, 0xff, 0x7f})
	mustFail("footer length beyond the file", huge, "footer of 2147483647 bytes")

	// The data pages of the first row group overwritten: the footer is
	// intact, so the damage shows while reading, naming the row group.
	damaged := bytes.Clone(data)
	for i := 4; i < 2000; i++ {
		damaged[i] = byte(i * 7)
	}
	ie := mustFail("damaged pages", damaged, "corrupt Parquet file: row group 0")
	if ie.Column == "" || ie.Row != 1 {
		t.Errorf("damaged pages: got column %q and row %d, want a column and row 1", ie.Column, ie.Row)
	}

	// Every truncation of the footer fails cleanly.
	for cut := len(data) - 9; cut > len(data)-300 && cut > 12; cut -= 13 {
		b := append(bytes.Clone(data[:cut]), data[len(data)-8:]...)
		_, err := readBytes(t, "c.parquet", b, ReadOptions{})
		var e *InputError
		if !errors.As(err, &e) || e.File != "c.parquet" {
			t.Fatalf("footer cut at %d: got %v, want an *InputError naming the file", cut, err)
		}
	}
}

// flightRow is a row of flights-3m.parquet for parquet-go's row reader,
// which serves as the reference.
type flightRow struct {
	Date        *int64  `parquet:"date,optional"`
	Delay       *int64  `parquet:"delay,optional"`
	Distance    *int64  `parquet:"distance,optional"`
	Origin      *string `parquet:"origin,optional"`
	Destination *string `parquet:"destination,optional"`
}

// TestParquetFlights reads the real 3,000,000 flights and checks rows
// spread over the file against parquet-go's row reader.
func TestParquetFlights(t *testing.T) {
	path := realdata.Path(t, "flights-3m.parquet")
	r, err := OpenFile(context.Background(), path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wantCols := []Column{{"date", TypeTimestamp}, {"delay", TypeInteger}, {"distance", TypeInteger}, {"origin", TypeString}, {"destination", TypeString}}
	if !reflect.DeepEqual(r.Columns(), wantCols) {
		t.Fatalf("got columns %v, want %v", r.Columns(), wantCols)
	}
	checkRows := map[int64]bool{0: true, 1: true, 272726: true, 272727: true, 1234567: true, 2999999: true}
	got := map[int64][]any{}
	var n int64
	minDate, maxDate := int64(math.MaxInt64), int64(math.MinInt64)
	origins := map[string]bool{}
	for {
		b, err := r.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if b.FirstRow != n+1 {
			t.Fatalf("got a batch at row %d after %d rows", b.FirstRow, n)
		}
		for i := 0; i < b.Rows; i++ {
			d := b.Cols[0].Int[i]
			minDate, maxDate = min(minDate, d), max(maxDate, d)
			origins[b.Cols[3].Text[i]] = true
			if checkRows[n+int64(i)] {
				got[n+int64(i)] = []any{d, b.Cols[1].Int[i], b.Cols[2].Int[i], b.Cols[3].Text[i], b.Cols[4].Text[i]}
			}
		}
		n += int64(b.Rows)
	}
	if n != 3000000 {
		t.Fatalf("got %d rows, want 3000000", n)
	}
	// The README: January to June 2001, 229 origins.
	jan, jul := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), time.Date(2001, 7, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	if minDate < jan || maxDate > jul {
		t.Errorf("got dates %s .. %s, want 2001-01-01 .. 2001-07-01", time.UnixMicro(minDate).UTC(), time.UnixMicro(maxDate).UTC())
	}
	if len(origins) != 229 {
		t.Errorf("got %d origins, want 229", len(origins))
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ref := parquet.NewGenericReader[flightRow](f)
	defer ref.Close()
	for row, vals := range got {
		if err := ref.SeekToRow(row); err != nil {
			t.Fatal(err)
		}
		buf := make([]flightRow, 1)
		if _, err := ref.Read(buf); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		w := buf[0]
		want := []any{*w.Date, *w.Delay, *w.Distance, *w.Origin, *w.Destination}
		if !reflect.DeepEqual(vals, want) {
			t.Errorf("row %d: got %v, want %v", row+1, vals, want)
		}
	}
}

// FuzzParquetReader reads mutations of small valid Parquet files: it must
// never panic, and errors must be *InputError naming the file.
func FuzzParquetReader(f *testing.F) {
	f.Add(writeParquet(f, seqRows(40), parquet.MaxRowsPerRowGroup(15), parquet.PageBufferSize(128)))
	f.Add(writeParquet(f, seqRows(5)))
	s := "x"
	f.Add(writeParquet(f, []typedRow{{ID: 1, Opt: &s, Name: "a"}, {ID: 2, Name: "b"}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader("fuzz.parquet", bytes.NewReader(data), int64(len(data)), ReadOptions{BatchSize: 16})
		if err != nil {
			checkFuzzError(t, err, "fuzz.parquet")
			return
		}
		defer r.Close()
		for {
			b, err := r.Next(context.Background())
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				checkFuzzError(t, err, "fuzz.parquet")
				return
			}
			if b.Rows < 1 || b.Rows > 16 {
				t.Fatalf("got a batch of %d rows", b.Rows)
			}
		}
	})
}
