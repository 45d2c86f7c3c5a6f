package payloadlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving"
)

// maxSegmentBytes bounds a segment's decompressed size, so that a hostile
// or corrupt segment cannot exhaust memory. A full default segment (50,000
// records) of wide rows stays far below it.
const maxSegmentBytes = 1 << 30

// line is a segment's NDJSON line as read; inputs and outputs are parsed by
// hand because JSON has no NaN (null) or infinities (±1e999).
type line struct {
	Time          string          `json:"time"`
	RequestID     string          `json:"request_id"`
	Deployment    string          `json:"deployment"`
	Revision      string          `json:"revision"`
	ModelVersion  string          `json:"model_version"`
	LatencyMicros int64           `json:"latency_us"`
	Status        int             `json:"status"`
	Inputs        json.RawMessage `json:"inputs"`
	Outputs       json.RawMessage `json:"outputs"`
	OutputsPerRow int             `json:"outputs_per_row"`
	Error         string          `json:"error"`
}

// ReadSegment reads the records of a segment written by a Logger: a
// zstd-compressed NDJSON stream (see the package documentation). Missing
// values (null) read back as NaN. A stream whose lines are not JSON or do
// not have the record shape (for example rows of different lengths) is an
// mloop.EINVALID error naming the bad record; a damaged zstd stream or a
// failing reader returns the decompressor's or reader's error, wrapped.
func ReadSegment(r io.Reader) ([]Record, error) {
	zr, err := zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(maxSegmentBytes),
		zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return nil, fmt.Errorf("payloadlog: read segment: %w", err)
	}
	defer zr.Close()
	dec := json.NewDecoder(zr)
	var recs []Record
	for n := 1; ; n++ {
		var ln line
		if err := dec.Decode(&ln); err != nil {
			if errors.Is(err, io.EOF) {
				return recs, nil
			}
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			if errors.As(err, &se) || errors.As(err, &te) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, mloop.Errorf(mloop.EINVALID, "Payload log segment record %d is not a valid record: %v.", n, err)
			}
			// A damaged zstd stream or a failing reader.
			return nil, fmt.Errorf("payloadlog: read segment record %d: %w", n, err)
		}
		rec, err := ln.record()
		if err != nil {
			return nil, mloop.Errorf(mloop.EINVALID, "Payload log segment record %d: %v.", n, err)
		}
		recs = append(recs, rec)
	}
}

// record converts a decoded line into a Record.
func (ln *line) record() (Record, error) {
	rec := Record{
		RequestID:     ln.RequestID,
		Deployment:    ln.Deployment,
		Revision:      ln.Revision,
		ModelVersion:  ln.ModelVersion,
		LatencyMicros: ln.LatencyMicros,
		Status:        ln.Status,
		OutputsPerRow: ln.OutputsPerRow,
		Error:         ln.Error,
	}
	if ln.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, ln.Time)
		if err != nil {
			return Record{}, fmt.Errorf("time %q is not an RFC 3339 time", ln.Time)
		}
		rec.Time = t
	}
	var err error
	if rec.Inputs, err = parseMatrix(ln.Inputs); err != nil {
		return Record{}, fmt.Errorf("inputs: %w", err)
	}
	if out := trimSpace(ln.Outputs); len(out) != 0 && string(out) != "null" {
		var rest []byte
		if rec.Outputs, rest, err = parseFloats(out, nil); err != nil {
			return Record{}, fmt.Errorf("outputs: %w", err)
		}
		if len(trimSpace(rest)) != 0 {
			return Record{}, errors.New("outputs: unexpected data after the array")
		}
		if len(rec.Outputs) == 0 {
			rec.Outputs = nil
		}
	}
	return rec, nil
}

// parseMatrix parses an array of equally long arrays of numbers (or nulls)
// into a Batch. Absent or null reads as an empty Batch.
func parseMatrix(b []byte) (serving.Batch, error) {
	b = trimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return serving.Batch{}, nil
	}
	if b[0] != '[' {
		return serving.Batch{}, errors.New("want an array of rows")
	}
	b = trimSpace(b[1:])
	var m serving.Batch
	if len(b) > 0 && b[0] == ']' {
		if len(trimSpace(b[1:])) != 0 {
			return serving.Batch{}, errors.New("unexpected data after the rows")
		}
		return m, nil
	}
	for {
		n := len(m.Values)
		var err error
		if m.Values, b, err = parseFloats(b, m.Values); err != nil {
			return serving.Batch{}, fmt.Errorf("row %d: %w", m.Rows, err)
		}
		cols := len(m.Values) - n
		if m.Rows == 0 {
			m.Cols = cols
		} else if cols != m.Cols {
			return serving.Batch{}, fmt.Errorf("row %d has %d values, row 0 has %d", m.Rows, cols, m.Cols)
		}
		m.Rows++
		b = trimSpace(b)
		if len(b) == 0 {
			return serving.Batch{}, errors.New("unterminated array of rows")
		}
		switch b[0] {
		case ',':
			b = trimSpace(b[1:])
		case ']':
			if len(trimSpace(b[1:])) != 0 {
				return serving.Batch{}, errors.New("unexpected data after the rows")
			}
			if len(m.Values) == 0 {
				m.Values = nil
			}
			return m, nil
		default:
			return serving.Batch{}, fmt.Errorf("unexpected %q after row %d", b[0], m.Rows-1)
		}
	}
}

// parseFloats parses one array of numbers or nulls at the start of b,
// appending the values to dst; it returns the extended dst and what follows
// the array.
func parseFloats(b []byte, dst []float32) ([]float32, []byte, error) {
	b = trimSpace(b)
	if len(b) == 0 || b[0] != '[' {
		return dst, b, errors.New("want an array of numbers")
	}
	b = trimSpace(b[1:])
	if len(b) > 0 && b[0] == ']' {
		return dst, b[1:], nil
	}
	for {
		i := 0
		for i < len(b) && b[i] != ',' && b[i] != ']' && !isSpace(b[i]) {
			i++
		}
		tok := b[:i]
		switch {
		case len(tok) == 0:
			return dst, b, errors.New("want a number or null")
		case string(tok) == "null":
			dst = append(dst, float32(math.NaN()))
		default:
			if tok[0] != '-' && (tok[0] < '0' || tok[0] > '9') {
				return dst, b, fmt.Errorf("%q is not a number", tok)
			}
			// Out of range is fine: ±1e999 stands for ±Inf, and tiny
			// values round to zero.
			f, err := strconv.ParseFloat(string(tok), 32)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return dst, b, fmt.Errorf("%q is not a number", tok)
			}
			dst = append(dst, float32(f))
		}
		b = trimSpace(b[i:])
		if len(b) == 0 {
			return dst, b, errors.New("unterminated array")
		}
		if b[0] == ']' {
			return dst, b[1:], nil
		}
		if b[0] != ',' {
			return dst, b, fmt.Errorf("unexpected %q in array", b[0])
		}
		b = trimSpace(b[1:])
	}
}

// isSpace reports whether c is JSON whitespace.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// trimSpace trims JSON whitespace from both ends of b.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
