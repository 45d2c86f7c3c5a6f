package dataset

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// readResult is a file's content as its Reader returns it: the columns, and per
// row the values as Go values (string, int64, float64, bool, or the
// timestamp's microseconds as tsMicros), nil for null.
type readResult struct {
	cols  []Column
	rows  [][]any
	lines []int64
	first []int64 // FirstRow of each batch
	sizes []int   // Rows of each batch
}

// tsMicros marks a timestamp value in a readResult.
type tsMicros int64

// readTable reads every batch of r and closes it; it returns the first
// error Next returned, other than io.EOF.
func readTable(tb testing.TB, r Reader) (*readResult, error) {
	tb.Helper()
	defer r.Close()
	t := &readResult{cols: r.Columns()}
	ctx := context.Background()
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return t, nil
		}
		if err != nil {
			return t, err
		}
		t.first = append(t.first, b.FirstRow)
		t.sizes = append(t.sizes, b.Rows)
		if len(b.Cols) != len(t.cols) {
			tb.Fatalf("batch has %d columns, reader %d", len(b.Cols), len(t.cols))
		}
		for i := 0; i < b.Rows; i++ {
			row := make([]any, len(b.Cols))
			for c := range b.Cols {
				cv := &b.Cols[c]
				if cv.Null != nil && cv.Null[i] {
					continue
				}
				switch cv.Kind {
				case KindText:
					row[c] = cv.Text[i]
				case KindInt:
					row[c] = cv.Int[i]
				case KindFloat:
					row[c] = cv.Float[i]
				case KindBool:
					row[c] = cv.Bool[i]
				case KindTimestamp:
					row[c] = tsMicros(cv.Int[i])
				}
			}
			t.rows = append(t.rows, row)
			if b.Lines != nil {
				t.lines = append(t.lines, b.Lines[i])
			}
		}
	}
}

// readString reads data named name (which tells the format) with opts.
func readString(tb testing.TB, name, data string, opts ReadOptions) (*readResult, error) {
	tb.Helper()
	r, err := NewReader(name, strings.NewReader(data), int64(len(data)), opts)
	if err != nil {
		return nil, err
	}
	return readTable(tb, r)
}

// readBytes is readString for bytes.
func readBytes(tb testing.TB, name string, data []byte, opts ReadOptions) (*readResult, error) {
	tb.Helper()
	r, err := NewReader(name, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		return nil, err
	}
	return readTable(tb, r)
}

// mustInputError checks that err is an *InputError with the given file,
// line, row and column (a zero want field is not checked, except column
// when checkColumn) and that its message contains msg.
func mustInputError(tb testing.TB, err error, file string, line, row int64, column, msg string) *InputError {
	tb.Helper()
	var ie *InputError
	if !errors.As(err, &ie) {
		tb.Fatalf("got error %v (%T), want an *InputError", err, err)
	}
	if ie.File != file {
		tb.Errorf("got file %q, want %q (error: %v)", ie.File, file, err)
	}
	if line != 0 && ie.Line != line {
		tb.Errorf("got line %d, want %d (error: %v)", ie.Line, line, err)
	}
	if row != 0 && ie.Row != row {
		tb.Errorf("got row %d, want %d (error: %v)", ie.Row, row, err)
	}
	if ie.Column != column {
		tb.Errorf("got column %q, want %q (error: %v)", ie.Column, column, err)
	}
	if !strings.Contains(ie.Msg, msg) {
		tb.Errorf("got message %q, want it to contain %q", ie.Msg, msg)
	}
	return ie
}
