package dataset

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/realdata"
)

// numericCSV returns a CSV of about size bytes: an integer id and five
// decimal columns, like a typical feature table.
func numericCSV(size int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	b.WriteString("id,a,b,c,d,e\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%d,%.3f,%.2f,%d,%.4f,%.1f\n", i, rng.NormFloat64()*100, rng.Float64()*1000, rng.IntN(100000), rng.Float64(), rng.NormFloat64())
	}
	return b.Bytes()
}

// reportCPU reports the CPU time per operation since start and, when
// bytes > 0, the throughput per CPU second (cpu-MB/s): on a shared machine
// the wall-clock MB/s also counts the time other processes held the CPU.
func reportCPU(b *testing.B, start time.Duration, bytes int64) {
	cpu := (readerCPUTime() - start).Seconds() / float64(b.N)
	if cpu <= 0 {
		return
	}
	b.ReportMetric(cpu, "cpu-s/op")
	if bytes > 0 {
		b.ReportMetric(float64(bytes)/1e6/cpu, "cpu-MB/s")
	}
}

// drain reads every batch of r and returns the number of rows.
func drain(tb testing.TB, r Reader) int64 {
	tb.Helper()
	defer r.Close()
	var n int64
	for {
		b, err := r.Next(context.Background())
		if err == io.EOF {
			return n
		}
		if err != nil {
			tb.Fatal(err)
		}
		n += int64(b.Rows)
	}
}

// BenchmarkCSVNumeric reads 32 MB of numeric CSV from memory; its MB/s is
// the reader's throughput.
func BenchmarkCSVNumeric(b *testing.B) {
	data := numericCSV(32 << 20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	start := readerCPUTime()
	for b.Loop() {
		r, err := NewReader("bench.csv", bytes.NewReader(data), int64(len(data)), ReadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		drain(b, r)
	}
	reportCPU(b, start, int64(len(data)))
}

// BenchmarkCSVNumericProjected reads 2 of the 6 columns.
func BenchmarkCSVNumericProjected(b *testing.B) {
	data := numericCSV(32 << 20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	start := readerCPUTime()
	for b.Loop() {
		r, err := NewReader("bench.csv", bytes.NewReader(data), int64(len(data)), ReadOptions{Columns: []string{"a", "d"}})
		if err != nil {
			b.Fatal(err)
		}
		drain(b, r)
	}
	reportCPU(b, start, int64(len(data)))
}

// BenchmarkParquetFlights reads every column of the 3,000,000 flights.
func BenchmarkParquetFlights(b *testing.B) {
	path := realdata.Path(b, "flights-3m.parquet")
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	start := readerCPUTime()
	for b.Loop() {
		r, err := OpenFile(context.Background(), path, ReadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if n := drain(b, r); n != 3000000 {
			b.Fatalf("got %d rows, want 3000000", n)
		}
	}
	reportCPU(b, start, st.Size())
}

// BenchmarkParquetFlightsProjected reads the three columns drift compares.
func BenchmarkParquetFlightsProjected(b *testing.B) {
	path := realdata.Path(b, "flights-3m.parquet")
	b.ReportAllocs()
	start := readerCPUTime()
	for b.Loop() {
		r, err := OpenFile(context.Background(), path, ReadOptions{Columns: []string{"delay", "distance", "origin"}})
		if err != nil {
			b.Fatal(err)
		}
		drain(b, r)
	}
	reportCPU(b, start, 0)
}

// BenchmarkNDJSON reads 16 MB of NDJSON objects of five fields; the file is
// read twice (once to learn the columns), and MB/s counts it once.
func BenchmarkNDJSON(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	var buf bytes.Buffer
	for i := 0; buf.Len() < 16<<20; i++ {
		fmt.Fprintf(&buf, `{"id": %d, "x": %.4f, "name": "n%d", "ok": %v, "tags": [%d]}`+"\n", i, rng.NormFloat64(), i%100, i%2 == 0, i%7)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	start := readerCPUTime()
	for b.Loop() {
		r, err := NewReader("bench.ndjson", bytes.NewReader(data), int64(len(data)), ReadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		drain(b, r)
	}
	reportCPU(b, start, int64(len(data)))
}

// BenchmarkParseText classifies a mix of typical field values.
func BenchmarkParseText(b *testing.B) {
	values := []string{"12345", "-3.25", "2012-01-01", "drizzle", "true", "2006-01-02T15:04:05Z", "1e-5", "LAX"}
	for b.Loop() {
		for _, s := range values {
			ParseText(s)
		}
	}
}
