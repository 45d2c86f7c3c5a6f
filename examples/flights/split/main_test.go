package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// flight is a row of the Parquet file the test splits, typed like
// flights-3m.parquet.
type flight struct {
	Date        int64  `parquet:"date,timestamp(microsecond)"`
	Delay       int64  `parquet:"delay"`
	Distance    int64  `parquet:"distance"`
	Origin      string `parquet:"origin"`
	Destination string `parquet:"destination"`
	Extra       string `parquet:"extra"`
}

func at(s string) int64 {
	t, err := time.Parse(time.DateTime, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func TestSplit(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "flights.parquet")
	rows := []flight{
		{at("2001-01-01 00:01:00"), 33, 2176, "LAS", "PHL", "x"},
		{at("2001-01-15 12:30:00"), -3, 215, "ATL", "SAV", "x"},
		{at("2001-01-31 23:59:00"), 0, 300, "SFO", "LAX", "x"},
		{at("2001-02-01 06:00:00"), 16, 1000, "ORD", "DFW", "x"},
		{at("2001-02-10 07:00:00"), 120, 500, "DFW", "ORD", "x"},
		{at("2001-02-28 22:00:00"), 5, 700, "JFK", "BOS", "x"},
		{at("2001-03-01 00:05:00"), 1, 800, "BOS", "JFK", "x"}, // a stray first minutes of March
	}
	if err := parquet.WriteFile(in, rows); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		stride  int64
		minRows int64
		want    map[string][]string // month → data lines
	}{
		{"every flight, March folded into February", 1, 2, map[string][]string{
			"2001-01": {"2001-01-01 00:01:00,33,2176,LAS,PHL", "2001-01-15 12:30:00,-3,215,ATL,SAV", "2001-01-31 23:59:00,0,300,SFO,LAX"},
			"2001-02": {"2001-02-01 06:00:00,16,1000,ORD,DFW", "2001-02-10 07:00:00,120,500,DFW,ORD", "2001-02-28 22:00:00,5,700,JFK,BOS", "2001-03-01 00:05:00,1,800,BOS,JFK"},
		}},
		{"every other flight, no folding", 2, 1, map[string][]string{
			"2001-01": {"2001-01-01 00:01:00,33,2176,LAS,PHL", "2001-01-31 23:59:00,0,300,SFO,LAX"},
			"2001-02": {"2001-02-10 07:00:00,120,500,DFW,ORD"},
			"2001-03": {"2001-03-01 00:05:00,1,800,BOS,JFK"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "months")
			counts, err := split(context.Background(), in, out, tt.stride, tt.minRows)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range counts {
				got = append(got, c.month)
				if want := int64(len(tt.want[c.month])); c.rows != want {
					t.Errorf("month %s: got %d rows counted, want %d", c.month, c.rows, want)
				}
			}
			var wantMonths []string
			for m := range tt.want {
				wantMonths = append(wantMonths, m)
			}
			slices.Sort(wantMonths)
			if !slices.Equal(got, wantMonths) {
				t.Fatalf("got months %v, want %v", got, wantMonths)
			}
			ents, err := os.ReadDir(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != len(wantMonths) {
				t.Fatalf("got %d files in %s, want %d (no leftover temporary files)", len(ents), out, len(wantMonths))
			}
			for m, lines := range tt.want {
				b, err := os.ReadFile(filepath.Join(out, m+".csv"))
				if err != nil {
					t.Fatal(err)
				}
				want := "date,delay,distance,origin,destination\n" + strings.Join(lines, "\n") + "\n"
				if string(b) != want {
					t.Errorf("%s.csv: got\n%s\nwant\n%s", m, b, want)
				}
			}
		})
	}
}

func TestSplitBadInput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "other.csv")
	if err := os.WriteFile(in, []byte("a,b\n1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := split(context.Background(), in, filepath.Join(dir, "out"), 1, 1)
	if err == nil || !strings.Contains(err.Error(), "date") {
		t.Fatalf("split of a file without the flights columns: got %v, want an error naming the missing column", err)
	}
}
