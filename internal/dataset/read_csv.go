package dataset

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// The CSV and TSV reader.
//
// Rules: the first non-blank line is the header; every column needs a
// non-empty name that no other column has. Fields follow RFC 4180: a field
// that starts with a double quote is quoted, may hold delimiters, line
// breaks and doubled quotes, and must be followed by a delimiter or the end
// of the record; a quote inside an unquoted field is an ordinary character
// (files written by hand have them: 5'10"). Records end with LF or CRLF;
// blank lines are skipped, as pandas and encoding/csv do. A UTF-8 byte
// order mark at the start is dropped. Every value is text (KindText, Column
// type ""); fields that are null tokens (IsNullToken, after unquoting) are
// null. Every data row must have as many fields as the header, and every
// field the projection reads must be valid UTF-8 (the others are not
// checked). TSV follows the same rules with a tab for the comma.
//
// Speed: the reader finds whole lines with bytes.IndexByte and copies each
// line (under a projection, its projected fields) into one byte arena per
// batch that becomes one string, so a batch costs a handful of allocations
// whatever its size. Lines with a quote, or longer than the read buffer,
// take a slower path that streams through the buffer, so a line of any
// length is read with memory proportional to its projected fields.

const (
	// csvBufferSize is the size of the read buffer.
	csvBufferSize = 1 << 20
	// maxBatchBytes ends a text batch early when its projected values reach
	// this many bytes, bounding a batch's memory when rows are long.
	maxBatchBytes = 32 << 20
)

type csvReader struct {
	name      string
	stream    *textStream
	closeFile func() error
	delim     byte

	buf      []byte
	pos, end int
	eof      bool  // the stream is exhausted (or failed)
	line     int64 // 1-based line of buf[pos]
	row      int64 // data rows read

	ncol     int   // columns in the file
	keepAll  bool  // while reading the header: keep every field
	inHeader bool  // null tokens are names in the header
	keep     []int // per file column: its index in cols, or -1
	cols     []Column
	names    []string // all file column names

	batchSize int
	batch     Batch
	brow      int      // rows in the batch being read
	arena     []byte   // projected field bytes of the batch, row by row
	spans     []span   // where each projected field of the batch is in arena, row by row
	allKept   bool     // every column is projected
	nulls     [][]bool // per projected column, per batch row
	hasNull   []bool   // per projected column: a null in this batch
	err       error    // sticky error, io.EOF at the end
}

var _ Reader = (*csvReader)(nil)

func newCSVReader(name string, open func() (*textStream, error), delim byte, opts ReadOptions, closeFile func() error) (*csvReader, error) {
	stream, err := open()
	if err != nil {
		return nil, err
	}
	r := &csvReader{
		name:      name,
		stream:    stream,
		closeFile: closeFile,
		delim:     delim,
		buf:       make([]byte, bufferSize(stream.size)),
		line:      1,
		batchSize: opts.BatchSize,
	}
	if err := r.readHeader(opts.Columns); err != nil {
		err = stream.blame(err)
		stream.Close()
		return nil, err
	}
	return r, nil
}

// readHeader reads the header line and sets up the projection.
func (r *csvReader) readHeader(project []string) error {
	for r.end < 3 && !r.eof {
		if _, err := r.fill(); err != nil {
			return err
		}
	}
	if bytes.HasPrefix(r.buf[r.pos:r.end], []byte("\xef\xbb\xbf")) {
		r.pos += 3
	}
	r.keepAll, r.inHeader = true, true
	r.batch.Lines = make([]int64, 0, 1)
	ok, err := r.readRecord()
	if err != nil {
		return err
	}
	if !ok {
		return &InputError{File: r.name, Msg: "empty file: no header"}
	}
	line := r.batch.Lines[0]
	s := string(r.arena)
	r.names = make([]string, len(r.spans))
	seen := make(map[string]int, len(r.spans))
	for j, sp := range r.spans {
		n := s[sp.start:sp.end]
		if !utf8.ValidString(n) {
			return &InputError{File: r.name, Line: line, Msg: fmt.Sprintf("header: name of column %d is not valid UTF-8", j+1)}
		}
		if n == "" {
			return &InputError{File: r.name, Line: line, Msg: fmt.Sprintf("header: column %d has an empty name", j+1)}
		}
		if k, dup := seen[n]; dup {
			return &InputError{File: r.name, Line: line, Column: n, Msg: fmt.Sprintf("header: duplicate column name (columns %d and %d)", k+1, j+1)}
		}
		seen[n] = j
		r.names[j] = n
	}
	r.ncol = len(r.names)
	r.keepAll, r.inHeader = false, false
	r.row, r.brow = 0, 0

	r.keep = make([]int, r.ncol)
	want := map[string]bool{}
	for _, c := range project {
		if _, ok := seen[c]; !ok {
			return &InputError{File: r.name, Column: c, Msg: fmt.Sprintf("no such column; the file has %s", strings.Join(r.names, ", "))}
		}
		want[c] = true
	}
	for j, n := range r.names {
		r.keep[j] = -1
		if project == nil || want[n] {
			r.keep[j] = len(r.cols)
			r.cols = append(r.cols, Column{Name: n})
		}
	}
	k := len(r.cols)
	r.batch.Cols = make([]ColumnValues, k)
	r.nulls = make([][]bool, k)
	r.hasNull = make([]bool, k)
	for i := range r.batch.Cols {
		r.batch.Cols[i] = ColumnValues{Kind: KindText, Text: make([]string, r.batchSize)}
		r.nulls[i] = make([]bool, r.batchSize)
	}
	r.batch.Lines = make([]int64, 0, r.batchSize)
	r.arena = r.arena[:0]
	r.spans = r.spans[:0]
	r.allKept = len(r.cols) == r.ncol
	return nil
}

// Columns returns the projected columns in file order; their Type is ""
// (text, for the profiler to infer).
func (r *csvReader) Columns() []Column { return r.cols }

// Next returns the next batch of at most BatchSize rows.
func (r *csvReader) Next(ctx context.Context) (*Batch, error) {
	if r.err != nil {
		return nil, r.err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", r.name, err)
	}
	r.arena, r.spans, r.brow = r.arena[:0], r.spans[:0], 0
	r.batch.Lines = r.batch.Lines[:0]
	clear(r.hasNull)
	first := r.row + 1
	for r.brow < r.batchSize && len(r.arena) < maxBatchBytes {
		ok, err := r.readRecord()
		if err != nil {
			r.err = r.stream.blame(err)
			return nil, r.err
		}
		if !ok {
			break
		}
	}
	if r.brow == 0 {
		r.err = io.EOF
		return nil, io.EOF
	}
	s := string(r.arena)
	k := len(r.cols)
	for c := 0; c < k; c++ {
		text := r.batch.Cols[c].Text[:r.brow]
		for i := range text {
			sp := r.spans[i*k+c]
			text[i] = s[sp.start:sp.end]
		}
	}
	for c := range r.batch.Cols {
		cv := &r.batch.Cols[c]
		cv.Null = nil
		if r.hasNull[c] {
			cv.Null = r.nulls[c][:r.brow]
		}
	}
	r.batch.Rows = r.brow
	r.batch.FirstRow = first
	return &r.batch, nil
}

// Close releases the reader and closes the file it opened.
func (r *csvReader) Close() error {
	r.stream.Close()
	r.err = errClosed
	if r.closeFile != nil {
		err := r.closeFile()
		r.closeFile = nil
		return err
	}
	return nil
}

// fill compacts the buffer and reads more of the stream into it. It
// reports whether bytes were added; at the end of the stream it sets eof.
func (r *csvReader) fill() (bool, error) {
	if r.eof {
		return false, nil
	}
	if r.pos > 0 {
		r.end = copy(r.buf, r.buf[r.pos:r.end])
		r.pos = 0
	}
	if r.end == len(r.buf) {
		return false, nil
	}
	for {
		n, err := r.stream.Read(r.buf[r.end:])
		r.end += n
		if err == io.EOF {
			r.eof = true
			return n > 0, nil
		}
		if err != nil {
			r.eof = true
			if ie, ok := err.(*InputError); ok {
				ie.Line = r.line
				return false, ie
			}
			return false, err
		}
		if n > 0 {
			return true, nil
		}
	}
}

// bufferSize returns the size of a read buffer for a stream of size bytes
// (-1 when unknown): csvBufferSize, or less for a small file.
func bufferSize(size int64) int {
	if size >= 0 && size < csvBufferSize-16 {
		return max(int(size)+16, 4096)
	}
	return csvBufferSize
}

// keepIndex returns the projected column of file column j, or -1.
func (r *csvReader) keepIndex(j int) int {
	if r.keepAll {
		return j
	}
	if j < len(r.keep) {
		return r.keep[j]
	}
	return -1
}

// readRecord reads one record into the batch; ok is false at the end of
// the file.
func (r *csvReader) readRecord() (ok bool, err error) {
	for {
		var line []byte
		i := bytes.IndexByte(r.buf[r.pos:r.end], '\n')
		advance := i + 1
		switch {
		case i >= 0:
			line = r.buf[r.pos : r.pos+i]
		case !r.eof && r.pos == 0 && r.end == len(r.buf):
			// A line longer than the buffer.
			return true, r.readSlowRecord()
		case !r.eof:
			if _, err := r.fill(); err != nil {
				return false, err
			}
			continue
		case r.pos == r.end:
			return false, nil
		default:
			// The last line, without a line break.
			line = r.buf[r.pos:r.end]
			advance = len(line)
		}
		if bytes.IndexByte(line, '"') >= 0 {
			return true, r.readSlowRecord()
		}
		lineNo := r.line
		r.pos += advance
		if advance > len(line) {
			r.line++
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			continue // blank line
		}
		rowStart := len(r.arena)
		r.startRow(lineNo)
		// Fields are short: a byte loop beats a call per field. When every
		// column is read, the line goes to the arena in one copy, with its
		// delimiters.
		j, fstart, delim := 0, 0, r.delim
		if r.allKept || r.keepAll {
			r.arena = append(r.arena, line...)
			for i := 0; i <= len(line); i++ {
				if i < len(line) && line[i] != delim {
					continue
				}
				if r.keepAll || j < r.ncol {
					r.endField(j, rowStart+fstart, rowStart+i)
				}
				j++
				fstart = i + 1
			}
			return true, r.endRow(lineNo, rowStart, j)
		}
		for i := 0; i <= len(line); i++ {
			if i < len(line) && line[i] != delim {
				continue
			}
			if kk := r.keepIndex(j); kk >= 0 {
				start := len(r.arena)
				r.arena = append(r.arena, line[fstart:i]...)
				r.endField(kk, start, len(r.arena))
			}
			j++
			fstart = i + 1
		}
		return true, r.endRow(lineNo, rowStart, j)
	}
}

// startRow starts a batch row read from line lineNo.
func (r *csvReader) startRow(lineNo int64) {
	r.row++
	r.batch.Lines = append(r.batch.Lines, lineNo)
}

// span is where a field is in the arena.
type span struct{ start, end int }

// endField ends the field of projected column kk at arena[start:end].
func (r *csvReader) endField(kk, start, end int) {
	if !r.inHeader {
		null := isNullBytes(r.arena[start:end])
		if null {
			end = start
			r.hasNull[kk] = true
		}
		r.nulls[kk][r.brow] = null
	}
	r.spans = append(r.spans, span{start, end})
}

// endRow checks a row of nfields fields whose projected bytes start at
// arena[rowStart:] and adds it to the batch.
func (r *csvReader) endRow(lineNo int64, rowStart, nfields int) error {
	if r.keepAll {
		r.brow++
		return nil
	}
	if nfields != r.ncol {
		e := &InputError{File: r.name, Line: lineNo, Row: r.row,
			Msg: fmt.Sprintf("ragged row: %d fields, but the header has %d", nfields, r.ncol)}
		if nfields < r.ncol {
			e.Column = r.names[nfields]
			e.Msg += "; this column and the ones after it are missing"
		}
		return e
	}
	if !utf8.Valid(r.arena[rowStart:]) {
		// Find the field.
		base := len(r.spans) - len(r.cols)
		for c := range r.cols {
			sp := r.spans[base+c]
			if f := r.arena[sp.start:sp.end]; !utf8.Valid(f) {
				return &InputError{File: r.name, Line: lineNo, Row: r.row, Column: r.cols[c].Name,
					Msg: fmt.Sprintf("invalid UTF-8 at byte %d of the field", invalidUTF8At(f)+1)}
			}
		}
	}
	r.brow++
	return nil
}

// invalidUTF8At returns the offset of the first invalid UTF-8 sequence in b.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		c, size := utf8.DecodeRune(b[i:])
		if c == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}

// readSlowRecord reads a record from buf[pos] byte by byte, refilling the
// buffer as it goes: records with quoted fields and lines longer than the
// buffer.
func (r *csvReader) readSlowRecord() error {
	lineNo := r.line
	rowStart := len(r.arena)
	r.startRow(lineNo)
	j := 0
	for {
		kk := r.keepIndex(j)
		start := len(r.arena)
		if r.pos == r.end {
			if _, err := r.fill(); err != nil {
				return err
			}
		}
		if r.pos < r.end && r.buf[r.pos] == '"' {
			end, err := r.readQuoted(kk, j)
			if err != nil {
				return err
			}
			if kk >= 0 {
				r.endField(kk, start, len(r.arena))
			}
			j++
			if end {
				return r.endRow(lineNo, rowStart, j)
			}
			continue
		}
		// Unquoted: up to the delimiter or the line break.
		for {
			if r.pos == r.end {
				if _, err := r.fill(); err != nil {
					return err
				}
				if r.pos == r.end { // end of the file
					r.dropCR(kk, start)
					if kk >= 0 {
						r.endField(kk, start, len(r.arena))
					}
					return r.endRow(lineNo, rowStart, j+1)
				}
			}
			chunk := r.buf[r.pos:r.end]
			k := indexDelimOrLF(chunk, r.delim)
			if k < 0 {
				if kk >= 0 {
					r.arena = append(r.arena, chunk...)
				}
				r.pos = r.end
				continue
			}
			if kk >= 0 {
				r.arena = append(r.arena, chunk[:k]...)
			}
			c := chunk[k]
			r.pos += k + 1
			if c == r.delim {
				if kk >= 0 {
					r.endField(kk, start, len(r.arena))
				}
				j++
				break
			}
			r.line++
			r.dropCR(kk, start)
			if kk >= 0 {
				r.endField(kk, start, len(r.arena))
			}
			return r.endRow(lineNo, rowStart, j+1)
		}
	}
}

// dropCR drops the carriage return of a CRLF from the end of a field.
func (r *csvReader) dropCR(kk, start int) {
	if kk >= 0 && len(r.arena) > start && r.arena[len(r.arena)-1] == '\r' {
		r.arena = r.arena[:len(r.arena)-1]
	}
}

// readQuoted reads a quoted field of file column j from buf[pos] (the
// opening quote) and what ends it; end reports the end of the record.
func (r *csvReader) readQuoted(kk, j int) (end bool, err error) {
	quoteLine := r.line
	r.pos++
	for {
		if r.pos == r.end {
			if _, err := r.fill(); err != nil {
				return false, err
			}
			if r.pos == r.end {
				return false, r.quoteError(quoteLine, j, "quoted field is not closed before the end of the file")
			}
		}
		chunk := r.buf[r.pos:r.end]
		q := bytes.IndexByte(chunk, '"')
		if q < 0 {
			if kk >= 0 {
				r.arena = append(r.arena, chunk...)
			}
			r.line += int64(bytes.Count(chunk, []byte{'\n'}))
			r.pos = r.end
			continue
		}
		if kk >= 0 {
			r.arena = append(r.arena, chunk[:q]...)
		}
		r.line += int64(bytes.Count(chunk[:q], []byte{'\n'}))
		r.pos += q + 1
		if r.pos == r.end {
			if _, err := r.fill(); err != nil {
				return false, err
			}
		}
		if r.pos < r.end && r.buf[r.pos] == '"' {
			if kk >= 0 {
				r.arena = append(r.arena, '"')
			}
			r.pos++
			continue
		}
		break
	}
	// After the closing quote: a delimiter, a line break or the end.
	if r.pos == r.end {
		return true, nil
	}
	switch c := r.buf[r.pos]; c {
	case r.delim:
		r.pos++
		return false, nil
	case '\n':
		r.pos++
		r.line++
		return true, nil
	case '\r':
		if r.pos+1 == r.end {
			if _, err := r.fill(); err != nil {
				return false, err
			}
		}
		if r.pos+1 == r.end {
			r.pos++ // a CR at the end of the file
			return true, nil
		}
		if r.buf[r.pos+1] == '\n' {
			r.pos += 2
			r.line++
			return true, nil
		}
	}
	return false, r.quoteError(r.line, j, fmt.Sprintf("unexpected %q after the closing quote of a quoted field (a quote inside a quoted field must be doubled)", rune(r.buf[r.pos])))
}

func (r *csvReader) quoteError(line int64, j int, msg string) error {
	e := &InputError{File: r.name, Line: line, Row: r.row, Msg: msg}
	if r.inHeader {
		e.Row = 0
		e.Msg = "header: " + msg
	} else if j < len(r.names) {
		e.Column = r.names[j]
	}
	return e
}

// indexDelimOrLF returns the index of the first delim or '\n' in b, or -1.
// It searches windows that double in size with bytes.IndexByte, so that a
// short field costs little and a long one is scanned at memchr speed.
func indexDelimOrLF(b []byte, delim byte) int {
	for start, w := 0, 32; start < len(b); start, w = start+w, min(w*2, 1<<16) {
		win := b[start:min(start+w, len(b))]
		nl := bytes.IndexByte(win, '\n')
		if nl >= 0 {
			win = win[:nl]
		}
		if k := bytes.IndexByte(win, delim); k >= 0 {
			return start + k
		}
		if nl >= 0 {
			return start + nl
		}
	}
	return -1
}
