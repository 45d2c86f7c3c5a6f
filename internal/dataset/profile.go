package dataset

import (
	"context"

	"github.com/mloop/mloop/internal/stats"
)

// ProfileOptions tune profiling; zero values mean the defaults.
type ProfileOptions struct {
	QuantileK     int             // KLL accuracy parameter (stats.DefaultQuantileK)
	FrequentLimit int             // distinct values counted exactly (stats.DefaultFrequentLimit)
	HistogramBins int             // bins of the summary histogram (20)
	Types         map[string]Type // column types forced by the user (text formats)
}

// Profile summarises a dataset version (or a file, or a monitoring window):
// per column statistics plus the mergeable sketches they came from, so that
// profiles of parts merge into the profile of the whole.
type Profile struct {
	Rows    int64            `json:"rows"`
	Columns []*ColumnProfile `json:"columns"`
}

// ColumnProfile is one column's statistics. Numeric fields are about the
// column's non-null values; for timestamps they are in microseconds since the
// Unix epoch, for booleans false=0 and true=1.
type ColumnProfile struct {
	Name  string `json:"name"`
	Type  Type   `json:"type"`
	Count int64  `json:"count"` // non-null values
	Nulls int64  `json:"nulls"`
	NaN   int64  `json:"nan,omitempty"`
	Inf   int64  `json:"inf,omitempty"`

	// Summary values (recomputed from the sketches after a merge).
	Min       *float64           `json:"min,omitempty"`
	Max       *float64           `json:"max,omitempty"`
	Mean      *float64           `json:"mean,omitempty"`
	Std       *float64           `json:"std,omitempty"`       // population standard deviation
	Quantiles map[string]float64 `json:"quantiles,omitempty"` // "p1","p5","p25","p50","p75","p95","p99"
	Histogram *Histogram         `json:"histogram,omitempty"`
	Distinct  int64              `json:"distinct"`             // estimate; exact while the frequent counter is exact
	Top       []stats.ItemCount  `json:"top,omitempty"`        // most frequent values (up to 20)
	MinLength *int64             `json:"min_length,omitempty"` // strings
	MaxLength *int64             `json:"max_length,omitempty"`

	// Sketches, for merging and for drift from profiles. Numeric, timestamp
	// and boolean columns have Moments and Quantiles; string, boolean and
	// integer columns have Frequent; every column has DistinctSketch.
	Moments        *stats.Moments         `json:"moments,omitempty"`
	QuantileSketch *stats.QuantileSketch  `json:"quantile_sketch,omitempty"`
	Frequent       *stats.FrequentItems   `json:"frequent,omitempty"`
	DistinctSketch *stats.DistinctCounter `json:"distinct_sketch,omitempty"`
}

// Histogram is an equal-width histogram between the column's minimum and
// maximum; counts come from the quantile sketch and carry its rank error.
type Histogram struct {
	Edges  []float64 `json:"edges"`
	Counts []float64 `json:"counts"`
}

// Column returns the profile of the named column, or nil.
func (p *Profile) Column(name string) *ColumnProfile {
	for _, c := range p.Columns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Profiler computes a Profile from batches in one pass, in memory bounded by
// the sketches' sizes whatever the number of rows.
type Profiler struct {
	// TODO(helper): implementation.
}

// NewProfiler returns a profiler for a file with the given columns; file
// names the input in errors.
func NewProfiler(file string, cols []Column, opts ProfileOptions) *Profiler { panic("not implemented") }

// Add profiles one batch. Mixed types in a text column (values of a column
// that is mostly numeric failing to parse, say) are an *InputError naming the
// line and column.
func (p *Profiler) Add(b *Batch) error { panic("not implemented") }

// Finish returns the profile of everything added.
func (p *Profiler) Finish() (*Profile, error) { panic("not implemented") }

// ProfileReader profiles every batch of r.
func ProfileReader(ctx context.Context, file string, r Reader, opts ProfileOptions) (*Profile, error) {
	panic("not implemented")
}

// Merge adds o (a profile of other rows with the same columns) to p. Columns
// present in only one side keep their statistics, and the missing side counts
// as nulls; incompatible types (string against numeric) are an error.
func (p *Profile) Merge(o *Profile) error { panic("not implemented") }
