package dataset

import (
	"context"
	"fmt"
)

// Format is a file format a dataset file may have.
type Format string

// Formats.
const (
	FormatCSV     Format = "csv"
	FormatTSV     Format = "tsv"
	FormatNDJSON  Format = "ndjson"
	FormatParquet Format = "parquet"
)

// Compression is a whole-file compression of a text format.
type Compression string

// Compressions.
const (
	CompressionNone Compression = ""
	CompressionGzip Compression = "gzip"
	CompressionZstd Compression = "zstd"
)

// Type is a column's logical type.
type Type string

// Column types.
const (
	TypeInteger   Type = "integer"
	TypeFloat     Type = "float"
	TypeBoolean   Type = "boolean"
	TypeString    Type = "string"
	TypeTimestamp Type = "timestamp"
)

// Column is a column of a file as its reader sees it. Type is the type the
// file declares (Parquet; NDJSON numbers, booleans and nested values) or ""
// when the values are text whose type the profiler infers (CSV, TSV, NDJSON
// strings).
type Column struct {
	Name string
	Type Type
}

// Kind says which slice of a ColumnValues holds a batch's values.
type Kind uint8

// Kinds.
const (
	KindText      Kind = iota // Text
	KindInt                   // Int
	KindFloat                 // Float
	KindBool                  // Bool
	KindTimestamp             // Int, microseconds since the Unix epoch, UTC
)

// ColumnValues holds one column of a Batch. Exactly one of the value slices
// (by Kind) has Batch.Rows entries; Null, when non-nil, marks missing values
// (their slot in the value slice holds a zero value).
type ColumnValues struct {
	Kind  Kind
	Null  []bool
	Text  []string
	Int   []int64
	Float []float64
	Bool  []bool
}

// Batch is a run of consecutive rows of a file, column by column. Batches and
// their slices are reused by the reader: they are valid until the next call
// to Next. The strings in Text are not reused: they stay valid, though
// keeping one keeps the memory of its whole batch (or Parquet page)
// alive, so long-lived copies should be cloned.
type Batch struct {
	Rows     int
	FirstRow int64   // 1-based number of the batch's first data row in the file
	Lines    []int64 // 1-based source line of each row (text formats); nil for Parquet
	Cols     []ColumnValues
}

// Reader reads a data file batch by batch.
type Reader interface {
	// Columns returns the file's columns in file order.
	Columns() []Column
	// Next returns the next batch, or io.EOF after the last one. Malformed
	// input is an *InputError.
	Next(ctx context.Context) (*Batch, error)
	// Close releases the reader's resources.
	Close() error
}

// InputError reports bad input: which file, where in it, and what is wrong.
// Line is the 1-based line (text formats), Row the 1-based data row; either
// may be 0 when unknown, Column "" when the error is not about one column.
type InputError struct {
	File   string
	Line   int64
	Row    int64
	Column string
	Msg    string
}

// Error returns "file:line: column "c": message", with ": row N" in place
// of the line when only the row is known.
func (e *InputError) Error() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	} else if e.Row > 0 {
		s += fmt.Sprintf(": row %d", e.Row)
	}
	if e.Column != "" {
		s += fmt.Sprintf(": column %q", e.Column)
	}
	return s + ": " + e.Msg
}
