package dataset

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		name string
		f    Format
		c    Compression
	}{
		{"a.csv", FormatCSV, CompressionNone},
		{"dir.v2/A.CSV", FormatCSV, CompressionNone},
		{"a.tsv", FormatTSV, CompressionNone},
		{"a.tab", FormatTSV, CompressionNone},
		{"a.ndjson", FormatNDJSON, CompressionNone},
		{"a.jsonl", FormatNDJSON, CompressionNone},
		{"a.parquet", FormatParquet, CompressionNone},
		{"a.pq", FormatParquet, CompressionNone},
		{"a.csv.gz", FormatCSV, CompressionGzip},
		{"a.tsv.zst", FormatTSV, CompressionZstd},
		{"a.jsonl.zstd", FormatNDJSON, CompressionZstd},
		{`C:\data\b.Csv.GZ`, FormatCSV, CompressionGzip},
	}
	for _, tt := range tests {
		f, c, err := DetectFormat(tt.name)
		if err != nil || f != tt.f || c != tt.c {
			t.Errorf("DetectFormat(%q): got %q, %q, %v; want %q, %q", tt.name, f, c, err, tt.f, tt.c)
		}
	}
	for _, name := range []string{"a.json", "a.txt", "a", "a.gz", "csv", "a.csv.bz2", "a.parquet.gz"} {
		_, _, err := DetectFormat(name)
		if err == nil {
			t.Errorf("DetectFormat(%q): got no error", name)
			continue
		}
		if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), ".parquet") {
			t.Errorf("DetectFormat(%q): got %q, want the name and the supported extensions", name, err)
		}
	}
}

func gzipBytes(tb testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(tb testing.TB, b []byte) []byte {
	w, err := zstd.NewWriter(nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(b, nil)
}

// digest reads every batch of r and returns its columns, its number of
// rows and a hash of its values and line numbers.
func digest(tb testing.TB, r Reader) ([]Column, int, [32]byte) {
	tb.Helper()
	defer r.Close()
	h := sha256.New()
	rows := 0
	var buf []byte
	for {
		b, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			var sum [32]byte
			h.Sum(sum[:0])
			return r.Columns(), rows, sum
		}
		if err != nil {
			tb.Fatal(err)
		}
		rows += b.Rows
		for i := 0; i < b.Rows; i++ {
			buf = strconv.AppendInt(buf[:0], b.Lines[i], 10)
			for _, cv := range b.Cols {
				switch {
				case cv.Null != nil && cv.Null[i]:
					buf = append(buf, 0)
				case cv.Kind == KindText:
					buf = strconv.AppendQuote(buf, cv.Text[i])
				case cv.Kind == KindInt:
					buf = strconv.AppendInt(buf, cv.Int[i], 10)
				default:
					tb.Fatalf("unexpected kind %d", cv.Kind)
				}
			}
			h.Write(buf)
		}
	}
}

// TestCompressedText reads a CSV of several buffers' worth, and an NDJSON
// file, plain and compressed; every way must give the same values.
func TestCompressedText(t *testing.T) {
	csvData := numericCSV(csvBufferSize + csvBufferSize/4)
	var nd bytes.Buffer
	for i := range 5000 {
		nd.WriteString(`{"i": ` + strings.Repeat("1", 1+i%5) + `, "s": "v` + strings.Repeat("x", i%7) + `"}` + "\n")
	}
	open := func(name string, data []byte, opts ReadOptions) Reader {
		t.Helper()
		r, err := NewReader(name, bytes.NewReader(data), int64(len(data)), opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return r
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{{"d.csv", csvData}, {"d.ndjson", nd.Bytes()}} {
		wantCols, wantRows, wantSum := digest(t, open(tc.name, tc.data, ReadOptions{}))
		if wantRows < 5000 {
			t.Fatalf("%s: got %d rows, want at least 5000", tc.name, wantRows)
		}
		format := Format(strings.TrimPrefix(filepath.Ext(tc.name), "."))
		variants := []struct {
			name string
			data []byte
			opts ReadOptions
		}{
			{tc.name + ".gz", gzipBytes(t, tc.data), ReadOptions{}},
			{tc.name + ".zst", zstdBytes(t, tc.data), ReadOptions{}},
			{tc.name, gzipBytes(t, tc.data), ReadOptions{}}, // sniffed
			{tc.name, zstdBytes(t, tc.data), ReadOptions{}}, // sniffed
			{"upload", gzipBytes(t, tc.data), ReadOptions{Format: format, Compression: CompressionGzip}},
		}
		for _, v := range variants {
			cols, rows, sum := digest(t, open(v.name, v.data, v.opts))
			if !reflect.DeepEqual(cols, wantCols) || rows != wantRows || sum != wantSum {
				t.Errorf("%s (%d bytes): got %d rows of %v (hash %x), want the %d rows of the plain file (hash %x)", v.name, len(v.data), rows, cols, sum[:4], wantRows, wantSum[:4])
			}
		}
	}
}

// TestCorruptCompression checks that truncated and damaged streams fail
// with an *InputError naming the file.
func TestCorruptCompression(t *testing.T) {
	data := numericCSV(256 << 10)
	gz := gzipBytes(t, data)
	zs := zstdBytes(t, data)
	damaged := func(b []byte) []byte {
		c := bytes.Clone(b)
		for i := len(c) / 2; i < len(c)/2+64; i++ {
			c[i] ^= 0x5a
		}
		return c
	}
	tests := []struct {
		name string
		data []byte
		msg  string
	}{
		{"t.csv.gz", gz[:len(gz)/2], "truncated gzip stream"},
		{"t.csv.gz", gz[:5], "gzip stream"},
		{"t.csv.gz", damaged(gz), "corrupt gzip stream"},
		{"t.csv.gz", data, "gzip stream"}, // not gzip at all
		{"t.csv.zst", zs[:len(zs)/2], "zstd stream"},
		{"t.csv.zst", damaged(zs), "corrupt zstd stream"},
		{"t.ndjson.gz", gzipBytes(t, []byte(`{"a": 1}`))[:20], "gzip stream"},
	}
	for _, tt := range tests {
		_, err := readBytes(t, tt.name, tt.data, ReadOptions{})
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("%s (%d bytes): got %v, want an *InputError", tt.name, len(tt.data), err)
			continue
		}
		if ie.File != tt.name || !strings.Contains(ie.Msg, tt.msg) {
			t.Errorf("%s (%d bytes): got %v, want the file and %q", tt.name, len(tt.data), err, tt.msg)
		}
	}
}

func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.csv")
	if err := os.WriteFile(path, []byte("a,b\n1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := OpenFile(ctx, path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := readTable(t, r)
	if err != nil || !reflect.DeepEqual(got.rows, [][]any{{"1", "2"}}) {
		t.Errorf("got %v, %v; want one row 1, 2", got.rows, err)
	}
	if _, err := r.Next(ctx); err == nil {
		t.Errorf("Next after Close: got no error")
	}

	// A temporary copy without an extension, named for errors.
	tmp := filepath.Join(dir, "upload-123")
	if err := os.WriteFile(tmp, []byte("a,b\n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(ctx, tmp, ReadOptions{}); err == nil || !strings.Contains(err.Error(), "unknown data file extension") {
		t.Errorf("no extension: got %v, want an unknown extension error", err)
	}
	r, err = OpenFile(ctx, tmp, ReadOptions{Name: "sales/jan.csv"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = readTable(t, r)
	mustInputError(t, err, "sales/jan.csv", 2, 1, "b", "ragged row")

	if _, err := OpenFile(ctx, filepath.Join(dir, "missing.csv"), ReadOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want os.ErrNotExist", err)
	}
	if _, err := OpenFile(ctx, dir, ReadOptions{Format: FormatCSV}); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("directory: got %v, want an error saying it is a directory", err)
	}
	if _, err := OpenFile(ctx, path, ReadOptions{BatchSize: -1}); err == nil {
		t.Errorf("negative batch size: got no error")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := OpenFile(canceled, path, ReadOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: got %v, want context.Canceled", err)
	}
	r, err = OpenFile(ctx, path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Next(canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with a canceled context: got %v, want context.Canceled", err)
	}
}
