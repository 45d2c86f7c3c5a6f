// Command split cuts the flights data (flights-3m.parquet of vega-datasets
// 3.2.1: U.S. Bureau of Transportation Statistics on-time data for
// January–June 2001) into one CSV file per month, the files the flights
// example pushes as dataset versions.
//
// Usage (from the repository root):
//
//	go run ./examples/flights/split --in ../shared/data/flights-3m.parquet --out /tmp/flights [--stride 10]
//
// It writes OUT/2001-01.csv, OUT/2001-02.csv, … with the columns date
// (YYYY-MM-DD hh:mm:ss, UTC as in the file), delay (minutes), distance
// (miles), origin and destination (IATA codes). With --stride N only every
// Nth flight is kept, for quick runs. A month holding fewer than --min-rows
// flights (the file ends with the first minutes of 2001-07-01) is folded
// into the month before it, so that every file is a month of data. The file
// is read with mloop's own dataset readers (internal/dataset), so any format
// they read works as input.
package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/mloop/mloop/internal/dataset"
)

// columns are the columns written, in order: the features the example's
// model uses (date for the hour of day, distance, origin, destination) and
// the source of its label (delay).
var columns = []string{"date", "delay", "distance", "origin", "destination"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fs := flag.NewFlagSet("split", flag.ContinueOnError)
	in := fs.String("in", "", "the flights data file (Parquet, CSV, …) to split")
	out := fs.String("out", "", "the folder to write one CSV file per month into (created when missing)")
	stride := fs.Int64("stride", 1, "keep every Nth flight only (1: all)")
	minRows := fs.Int64("min-rows", 1000, "fold a month with fewer flights than this into the month before")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *in == "" || *out == "" || *stride < 1 || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: split --in FILE --out DIR [--stride N] [--min-rows N]")
		os.Exit(2)
	}
	counts, err := split(ctx, *in, *out, *stride, *minRows)
	if err != nil {
		fmt.Fprintln(os.Stderr, "split:", err)
		os.Exit(1)
	}
	for _, c := range counts {
		fmt.Printf("%s\t%d flights\n", filepath.Join(*out, c.month+".csv"), c.rows)
	}
}

// monthCount is how many flights went into a month's file.
type monthCount struct {
	month string
	rows  int64
}

// split reads in and writes every stride-th flight to out/YYYY-MM.csv.
func split(ctx context.Context, in, out string, stride, minRows int64) ([]monthCount, error) {
	r, err := dataset.OpenFile(ctx, in, dataset.ReadOptions{Columns: columns})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// The reader returns the projected columns in file order; find ours.
	idx := map[string]int{}
	for i, c := range r.Columns() {
		idx[c.Name] = i
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("create output folder: %w", err)
	}
	files := map[string]*monthFile{}
	defer func() {
		for _, f := range files {
			f.file.Close()
		}
	}()
	var n int64
	record := make([]string, len(columns))
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		for i := 0; i < b.Rows; i++ {
			n++
			if (n-1)%stride != 0 {
				continue
			}
			var month string
			for k, name := range columns {
				s, err := text(&b.Cols[idx[name]], i)
				if err != nil {
					return nil, fmt.Errorf("%s: row %d: column %s: %w", in, b.FirstRow+int64(i), name, err)
				}
				if name == "date" {
					if len(s) < 7 {
						return nil, fmt.Errorf("%s: row %d: date %q is not a timestamp; the flights file has one in column date", in, b.FirstRow+int64(i), s)
					}
					month = s[:7]
				}
				record[k] = s
			}
			f := files[month]
			if f == nil {
				if f, err = createMonth(filepath.Join(out, month+".csv.tmp")); err != nil {
					return nil, err
				}
				files[month] = f
			}
			if err := f.csv.Write(record); err != nil {
				return nil, fmt.Errorf("write %s: %w", f.file.Name(), err)
			}
			f.rows++
		}
	}
	return finish(files, out, minRows)
}

// text formats value i of column c as CSV text; a null is an empty field.
func text(c *dataset.ColumnValues, i int) (string, error) {
	if c.Null != nil && c.Null[i] {
		return "", nil
	}
	switch c.Kind {
	case dataset.KindText:
		return c.Text[i], nil
	case dataset.KindInt:
		return strconv.FormatInt(c.Int[i], 10), nil
	case dataset.KindFloat:
		return strconv.FormatFloat(c.Float[i], 'g', -1, 64), nil
	case dataset.KindBool:
		return strconv.FormatBool(c.Bool[i]), nil
	case dataset.KindTimestamp:
		return time.UnixMicro(c.Int[i]).UTC().Format(time.DateTime), nil
	}
	return "", fmt.Errorf("unsupported value kind %d", c.Kind)
}

// monthFile is the CSV file of one month being written.
type monthFile struct {
	file *os.File
	buf  *bufio.Writer
	csv  *csv.Writer
	rows int64
}

func createMonth(path string) (*monthFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create month file: %w", err)
	}
	buf := bufio.NewWriterSize(f, 1<<20)
	w := csv.NewWriter(buf)
	if err := w.Write(columns); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &monthFile{file: f, buf: buf, csv: w}, nil
}

// finish folds too-small months into the month before, flushes the files
// and renames them into place.
func finish(files map[string]*monthFile, out string, minRows int64) ([]monthCount, error) {
	months := make([]string, 0, len(files))
	for m := range files {
		months = append(months, m)
	}
	slices.Sort(months)
	for _, m := range months {
		f := files[m]
		f.csv.Flush()
		if err := f.csv.Error(); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.file.Name(), err)
		}
		if err := f.buf.Flush(); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.file.Name(), err)
		}
	}
	var counts []monthCount
	for i, m := range months {
		f := files[m]
		if f.rows < minRows && i > 0 {
			if err := appendRows(files[months[i-1]].file, f.file); err != nil {
				return nil, err
			}
			counts[len(counts)-1].rows += f.rows
			if err := f.file.Close(); err != nil {
				return nil, err
			}
			if err := os.Remove(f.file.Name()); err != nil {
				return nil, err
			}
			continue
		}
		counts = append(counts, monthCount{month: m, rows: f.rows})
	}
	for _, c := range counts {
		f := files[c.month]
		if err := f.file.Close(); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.file.Name(), err)
		}
		if err := os.Rename(f.file.Name(), filepath.Join(out, c.month+".csv")); err != nil {
			return nil, fmt.Errorf("write month file: %w", err)
		}
	}
	return counts, nil
}

// appendRows appends the data rows of the CSV file src (without its header)
// to dst.
func appendRows(dst, src *os.File) error {
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReader(src)
	if _, err := br.ReadString('\n'); err != nil {
		return fmt.Errorf("read %s: %w", src.Name(), err)
	}
	if _, err := io.Copy(dst, br); err != nil {
		return fmt.Errorf("fold %s into %s: %w", src.Name(), dst.Name(), err)
	}
	return nil
}
