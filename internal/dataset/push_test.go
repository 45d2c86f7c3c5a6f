package dataset

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree writes files (slash-separated relative path → content) below dir.
func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for rel, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestScanPathFolder(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"a.csv":            []byte("city,temp\nOslo,-3\nRome,12.5\n"),
		"b/c.csv.gz":       gzipped(t, "city,temp\nLima,20\n"),
		"b/d.ndjson":       []byte(`{"city":"Oslo","temp":1}` + "\n" + `{"city":"Rome","temp":2}` + "\n"),
		".hidden.csv":      []byte("x\n1\n"),
		".git/config.csv":  []byte("x\n1\n"),
		"b/.cache/old.csv": []byte("x\n1\n"),
	}
	writeTree(t, dir, files)
	for _, par := range []int{1, 4} {
		s, err := ScanPath(context.Background(), dir, ScanOptions{Parallelism: par})
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		want := []File{
			{Path: "a.csv", SHA256: sum(files["a.csv"]), Size: int64(len(files["a.csv"])), Format: FormatCSV, Rows: 2},
			{Path: "b/c.csv.gz", SHA256: sum(files["b/c.csv.gz"]), Size: int64(len(files["b/c.csv.gz"])), Format: FormatCSV, Compression: CompressionGzip, Rows: 1},
			{Path: "b/d.ndjson", SHA256: sum(files["b/d.ndjson"]), Size: int64(len(files["b/d.ndjson"])), Format: FormatNDJSON, Rows: 2},
		}
		if len(s.Files) != len(want) {
			t.Fatalf("parallelism %d: got files %+v, want %+v", par, s.Files, want)
		}
		var bytes int64
		for i := range want {
			if s.Files[i] != want[i] {
				t.Fatalf("parallelism %d: file %d: got %+v, want %+v", par, i, s.Files[i], want[i])
			}
			bytes += want[i].Size
		}
		if s.Rows != 5 || s.Bytes != bytes || s.Profile == nil || s.Profile.Rows != 5 {
			t.Fatalf("parallelism %d: got %d rows, %d bytes, profile %+v, want 5 rows, %d bytes", par, s.Rows, s.Bytes, s.Profile, bytes)
		}
		if c := s.Profile.Column("city"); c == nil || c.Count != 5 || c.Type != TypeString {
			t.Fatalf("parallelism %d: got city profile %+v, want 5 strings", par, c)
		}
		if c := s.Profile.Column("temp"); c == nil || c.Count != 5 || c.Type != TypeFloat {
			t.Fatalf("parallelism %d: got temp profile %+v, want 5 floats merged from the three files", par, c)
		}
		if s.Digest != ManifestDigest(want) || s.Root != dir || s.Dir != dir {
			t.Fatalf("parallelism %d: got digest %s root %s dir %s, want %s and %s", par, s.Digest, s.Root, s.Dir, ManifestDigest(want), dir)
		}
		if got := s.LocalPath(s.Files[1]); got != filepath.Join(dir, "b", "c.csv.gz") {
			t.Fatalf("local path: got %s, want %s", got, filepath.Join(dir, "b", "c.csv.gz"))
		}
	}
}

func TestScanPathSingleFile(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"sub/x.tsv": []byte("a\tb\n1\t2\n")})
	p := filepath.Join(dir, "sub", "x.tsv")
	s, err := ScanPath(context.Background(), p, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Files) != 1 || s.Files[0].Path != "x.tsv" || s.Files[0].Format != FormatTSV || s.Root != p || s.Dir != filepath.Join(dir, "sub") {
		t.Fatalf("got %+v (root %s, dir %s), want the file as x.tsv in %s", s.Files, s.Root, s.Dir, filepath.Join(dir, "sub"))
	}
	if s.LocalPath(s.Files[0]) != p {
		t.Fatalf("local path: got %s, want %s", s.LocalPath(s.Files[0]), p)
	}
}

func TestScanPathRejects(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{
		"unknown/a.csv":      []byte("x\n1\n"),
		"unknown/notes.txt":  []byte("hi"),
		"unknown/img.png":    []byte("png"),
		"empty/h.csv":        []byte("x,y\n"),
		"empty/h2.csv":       []byte("x,y\n"),
		"ragged/a.csv":       []byte("x,y\n1,2\n"),
		"ragged/b.csv":       []byte("x,y\n1,2\n3,4\n5\n"),
		"nodata/README.md":   []byte("# none"),
		"badparquet/x.pq":    []byte("PAR1 not really"),
		"mixed/one.csv":      []byte("n\n1\n"),
		"mixed/two.csv":      []byte("n\nabc\n"),
		"single/data.bin":    []byte("?"),
		"parquetgz/x.pq.gz":  []byte("?"),
		"ok/one.csv":         []byte("x\n1\n"),
		"ok/.notes/todo.txt": []byte("hidden, so not unknown"),
	})
	ctx := context.Background()

	_, err := ScanPath(ctx, filepath.Join(dir, "unknown"), ScanOptions{})
	var unknown *UnknownFilesError
	if !errors.As(err, &unknown) || strings.Join(unknown.Files, ",") != "img.png,notes.txt" {
		t.Fatalf("unknown files: got %v, want an *UnknownFilesError listing img.png and notes.txt", err)
	}
	if s, err := ScanPath(ctx, filepath.Join(dir, "unknown"), ScanOptions{SkipUnknown: true}); err != nil || len(s.Files) != 1 {
		t.Fatalf("unknown files skipped: got %v, want a scan of a.csv", err)
	}

	tests := []struct {
		path string
		want []string // in the error text
	}{
		{"empty", []string{"no data rows"}},
		{"ragged", []string{"b.csv:4", "ragged"}},
		{"nodata", []string{"README.md"}},
		{"badparquet", []string{"x.pq"}},
		{"single/data.bin", []string{"data.bin", "unknown data file extension"}},
		{"parquetgz/x.pq.gz", []string{"x.pq.gz"}},
		{"missing", []string{"missing", "no such file"}},
	}
	for _, tt := range tests {
		_, err := ScanPath(ctx, filepath.Join(dir, tt.path), ScanOptions{})
		if err == nil {
			t.Errorf("scan %s: got no error, want one mentioning %q", tt.path, tt.want)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("scan %s: got %q, want it to mention %q", tt.path, err, w)
			}
		}
	}
	var ie *InputError
	if _, err := ScanPath(ctx, filepath.Join(dir, "ragged"), ScanOptions{}); !errors.As(err, &ie) || ie.Line != 4 {
		t.Fatalf("ragged: got %v, want an *InputError at line 4", err)
	}
	if _, err := ScanPath(ctx, filepath.Join(dir, "mixed"), ScanOptions{}); err == nil || !strings.Contains(err.Error(), "two.csv") {
		t.Fatalf("files whose types do not merge: got %v, want an error naming two.csv", err)
	}
	if s, err := ScanPath(ctx, filepath.Join(dir, "empty"), ScanOptions{AllowEmpty: true}); err != nil || s.Rows != 0 || len(s.Files) != 2 {
		t.Fatalf("empty data allowed: got %v, want a scan of 0 rows in 2 files", err)
	}
	if s, err := ScanPath(ctx, filepath.Join(dir, "ok"), ScanOptions{}); err != nil || len(s.Files) != 1 {
		t.Fatalf("hidden folder: got %v, want it skipped", err)
	}
	if _, err := ScanPath(ctx, t.TempDir(), ScanOptions{}); err == nil || !strings.Contains(err.Error(), "no data files") {
		t.Fatalf("empty folder: got %v, want no data files", err)
	}
}

func TestScanPathTypesAndProgress(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("zip,n\n")
	for i := range 20000 {
		b.WriteString("0")
		b.WriteString(strings.Repeat("1", i%5))
		b.WriteString(",7\n")
	}
	writeTree(t, dir, map[string][]byte{"a.csv": []byte(b.String()), "b.csv": []byte(b.String())})

	var reports []ScanProgress
	s, err := ScanPath(context.Background(), dir, ScanOptions{
		Profile:  ProfileOptions{Types: map[string]Type{"zip": TypeString}},
		Progress: func(p ScanProgress) { reports = append(reports, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Profile.Column("zip"); c.Type != TypeString || c.Distinct != 5 {
		t.Fatalf("zip: got %s with %d distinct values, want string with 5", c.Type, c.Distinct)
	}
	if c := s.Profile.Column("n"); c.Type != TypeInteger {
		t.Fatalf("n: got %s, want integer", c.Type)
	}
	if len(reports) < 2 {
		t.Fatalf("progress: got %d reports, want several", len(reports))
	}
	for i := 1; i < len(reports); i++ {
		if reports[i].Bytes < reports[i-1].Bytes || reports[i].FilesDone < reports[i-1].FilesDone {
			t.Fatalf("progress: report %d %+v goes back from %+v", i, reports[i], reports[i-1])
		}
	}
	last := reports[len(reports)-1]
	if last.Bytes != s.Bytes || last.TotalBytes != s.Bytes || last.FilesDone != 2 || last.Files != 2 {
		t.Fatalf("last progress: got %+v, want %d of %d bytes and 2 of 2 files", last, s.Bytes, s.Bytes)
	}
}

func TestScanPathCancelled(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"a.csv": []byte("x\n1\n"), "b.csv": []byte("x\n2\n")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ScanPath(ctx, dir, ScanOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled scan: got %v, want context.Canceled", err)
	}
}

func TestHashReader(t *testing.T) {
	for _, n := range []int{0, 1, hashBufferSize - 1, hashBufferSize, hashBufferSize + 1, 3*hashBufferSize + 17} {
		b := bytes.Repeat([]byte("mloop!"), n/6+1)[:n]
		var reported int64
		got, size, err := HashReader(context.Background(), bytes.NewReader(b), func(k int64) { reported += k })
		if err != nil || got != sum(b) || size != int64(n) || reported != int64(n) {
			t.Fatalf("%d bytes: got %s, %d bytes (%d reported), %v; want %s and %d", n, got, size, reported, err, sum(b), n)
		}
	}
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("abc"), 0o644)
	if got, size, err := HashFile(context.Background(), p, nil); err != nil || size != 3 || got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("sha256(abc): got %s %d %v, want the FIPS 180-2 test vector", got, size, err)
	}
}

func TestDataFiles(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"b.csv": []byte("x\n1\n"), "a/c.parquet": []byte("?"), ".h.csv": []byte("x\n")})
	got, err := DataFiles(dir, false)
	want := []string{filepath.Join(dir, "a", "c.parquet"), filepath.Join(dir, "b.csv")}
	if err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("data files: got %v %v, want %v", got, err, want)
	}
	if got, err := DataFiles(filepath.Join(dir, "b.csv"), false); err != nil || len(got) != 1 {
		t.Fatalf("data files of a file: got %v %v, want the file", got, err)
	}
}
