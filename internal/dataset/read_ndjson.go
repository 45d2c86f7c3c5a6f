package dataset

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The NDJSON reader.
//
// Rules: every non-blank line is one JSON object (a UTF-8 byte order mark at
// the start is dropped; lines may end in CRLF; a line may be of any
// length). The columns are the union of the objects' keys in order of first
// appearance; a key an object lacks is null in its row. A key twice in one
// object is an error.
//
// Columns must be known before the first batch, and a column's kind must
// not change between batches, so the reader reads the file twice: once when
// it is opened, to collect the keys and the JSON types of their values, and
// again for the batches. That first pass also finds the file's bad input
// (invalid JSON or UTF-8, mixed types) before any batch is returned. Kinds:
//
//   - numbers: KindInt (Type integer) when every number of the column in the
//     whole file is written without fraction or exponent and fits an int64,
//     else KindFloat (Type float);
//   - strings: KindText with Type "", so that the profiler infers their type
//     as for CSV (JSON has no timestamps: dates come as strings);
//   - true and false: KindBool (Type boolean);
//   - objects and arrays: KindText (Type string) holding their compact JSON;
//   - null, or a missing key: Null; a column with only nulls is KindText.
//
// Numbers, strings, booleans and nested values mixed in one column are an
// *InputError naming the line and the column, such as "mixed types: string
// at line 7, number earlier (line 2)".

// jsonClass is the JSON type of a value.
type jsonClass uint8

const (
	jsonNone jsonClass = iota // no value yet, or null
	jsonNumber
	jsonString
	jsonBool
	jsonNested
)

var jsonClassNames = [...]string{"null", "number", "string", "boolean", "object or array"}

// ndColumn is what the first pass learned about a column.
type ndColumn struct {
	name      string
	class     jsonClass
	firstLine int64 // line of the first non-null value
	integral  bool  // every number so far is an int64 literal
	seenLine  int64 // last line the key was seen on (duplicate check)
}

type ndjsonReader struct {
	name      string
	open      func() (*textStream, error)
	closeFile func() error
	stream    *textStream
	br        *bufio.Reader
	long      []byte // a line longer than br's buffer
	line      int64  // lines read
	row       int64  // data rows read

	all   []ndColumn
	index map[string]int // key → index in all
	keep  []int          // per file column: projected index, or -1
	cols  []Column

	batchSize int
	batch     Batch
	brow      int
	arena     []byte
	textEnds  [][2]int // per projected column × batch row: text span in arena
	nulls     [][]bool // per projected column, per batch row
	hasNull   []bool
	compact   bytes.Buffer
	err       error
}

var _ Reader = (*ndjsonReader)(nil)

func newNDJSONReader(ctx context.Context, name string, open func() (*textStream, error), opts ReadOptions, closeFile func() error) (*ndjsonReader, error) {
	r := &ndjsonReader{name: name, open: open, closeFile: closeFile, batchSize: opts.BatchSize, index: map[string]int{}}
	if err := r.scan(ctx); err != nil {
		return nil, err
	}
	if len(r.all) == 0 {
		return nil, &InputError{File: name, Msg: "empty file: no JSON object"}
	}
	if err := r.project(opts.Columns); err != nil {
		return nil, err
	}
	if err := r.restart(); err != nil {
		return nil, err
	}
	return r, nil
}

// restart opens the stream from the start.
func (r *ndjsonReader) restart() error {
	if r.stream != nil {
		r.stream.Close()
	}
	s, err := r.open()
	if err != nil {
		return err
	}
	r.stream = s
	if r.br == nil {
		r.br = bufio.NewReaderSize(s, bufferSize(s.size))
	} else {
		r.br.Reset(s)
	}
	r.line, r.row = 0, 0
	return nil
}

// readLine returns the next line without its line break; the slice is
// valid until the next call. At the end it returns io.EOF.
func (r *ndjsonReader) readLine() ([]byte, error) {
	b, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		r.long = append(r.long[:0], b...)
		for errors.Is(err, bufio.ErrBufferFull) {
			b, err = r.br.ReadSlice('\n')
			r.long = append(r.long, b...)
		}
		b = r.long
	}
	if err != nil && err != io.EOF {
		if ie, ok := err.(*InputError); ok {
			ie.Line = r.line + 1
			return nil, ie
		}
		return nil, err
	}
	if len(b) == 0 && err == io.EOF {
		return nil, io.EOF
	}
	r.line++
	if r.line == 1 {
		b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	}
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	return b, nil
}

// isBlank reports whether a line holds only JSON whitespace.
func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// scan is the first pass: it learns the columns and their classes.
func (r *ndjsonReader) scan(ctx context.Context) (err error) {
	if err := r.restart(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = r.stream.blame(err)
		}
		r.stream.Close()
		r.stream = nil
	}()
	visit := func(key []byte, val []byte, cls jsonClass) error {
		i, ok := r.index[string(key)]
		if !ok {
			i = len(r.all)
			k := string(key)
			r.index[k] = i
			r.all = append(r.all, ndColumn{name: k, integral: true})
		}
		c := &r.all[i]
		if c.seenLine == r.line {
			return r.errorAt(c.name, "duplicate key in one object")
		}
		c.seenLine = r.line
		if err := r.checkClass(c, cls); err != nil {
			return err
		}
		if cls == jsonNumber && c.integral && !isIntLiteral(val) {
			c.integral = false
		}
		return nil
	}
	for {
		if r.line%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("read %s: %w", r.name, err)
			}
		}
		b, err := r.readLine()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if isBlank(b) {
			continue
		}
		r.row++
		if err := r.parseLine(b, true, visit); err != nil {
			return err
		}
	}
}

// checkClass records that column c has a value of class cls on the current
// line, or reports mixed types.
func (r *ndjsonReader) checkClass(c *ndColumn, cls jsonClass) error {
	switch {
	case cls == jsonNone:
		return nil
	case c.class == jsonNone:
		c.class, c.firstLine = cls, r.line
		return nil
	case c.class != cls:
		return r.errorAt(c.name, fmt.Sprintf("mixed types: %s at line %d, %s earlier (line %d)",
			jsonClassNames[cls], r.line, jsonClassNames[c.class], c.firstLine))
	}
	return nil
}

func (r *ndjsonReader) errorAt(column, msg string) error {
	return &InputError{File: r.name, Line: r.line, Row: r.row, Column: column, Msg: msg}
}

// project sets up the projection and the batch.
func (r *ndjsonReader) project(names []string) error {
	want := map[string]bool{}
	for _, n := range names {
		if _, ok := r.index[n]; !ok {
			all := make([]string, len(r.all))
			for i, c := range r.all {
				all[i] = c.name
			}
			return &InputError{File: r.name, Column: n, Msg: fmt.Sprintf("no such column; the file has %s", strings.Join(all, ", "))}
		}
		want[n] = true
	}
	r.keep = make([]int, len(r.all))
	for i, c := range r.all {
		r.keep[i] = -1
		if names != nil && !want[c.name] {
			continue
		}
		r.keep[i] = len(r.cols)
		col := Column{Name: c.name}
		cv := ColumnValues{}
		r.nulls = append(r.nulls, make([]bool, r.batchSize))
		switch c.class {
		case jsonNumber:
			if c.integral {
				col.Type, cv.Kind, cv.Int = TypeInteger, KindInt, make([]int64, r.batchSize)
			} else {
				col.Type, cv.Kind, cv.Float = TypeFloat, KindFloat, make([]float64, r.batchSize)
			}
		case jsonBool:
			col.Type, cv.Kind, cv.Bool = TypeBoolean, KindBool, make([]bool, r.batchSize)
		case jsonNested:
			col.Type, cv.Kind, cv.Text = TypeString, KindText, make([]string, r.batchSize)
		default:
			cv.Kind, cv.Text = KindText, make([]string, r.batchSize)
		}
		r.cols = append(r.cols, col)
		r.batch.Cols = append(r.batch.Cols, cv)
	}
	r.hasNull = make([]bool, len(r.cols))
	r.textEnds = make([][2]int, len(r.cols)*r.batchSize)
	r.batch.Lines = make([]int64, 0, r.batchSize)
	for i := range r.all {
		r.all[i].seenLine = 0
	}
	return nil
}

// Columns returns the projected columns in order of first appearance.
func (r *ndjsonReader) Columns() []Column { return r.cols }

// Next returns the next batch of at most BatchSize rows.
func (r *ndjsonReader) Next(ctx context.Context) (*Batch, error) {
	if r.err != nil {
		return nil, r.err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", r.name, err)
	}
	r.arena, r.brow = r.arena[:0], 0
	r.batch.Lines = r.batch.Lines[:0]
	clear(r.hasNull)
	first := r.row + 1
	for r.brow < r.batchSize && len(r.arena) < maxBatchBytes {
		b, err := r.readLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			r.err = err
			return nil, err
		}
		if isBlank(b) {
			continue
		}
		r.row++
		for c := range r.nulls {
			r.nulls[c][r.brow] = true // until the key shows up
			r.textEnds[c*r.batchSize+r.brow] = [2]int{}
			switch cv := &r.batch.Cols[c]; cv.Kind {
			case KindInt:
				cv.Int[r.brow] = 0
			case KindFloat:
				cv.Float[r.brow] = 0
			case KindBool:
				cv.Bool[r.brow] = false
			}
		}
		if err := r.parseLine(b, false, r.store); err != nil {
			r.err = r.stream.blame(err)
			return nil, r.err
		}
		for c := range r.nulls {
			if r.nulls[c][r.brow] {
				r.hasNull[c] = true
			}
		}
		r.batch.Lines = append(r.batch.Lines, r.line)
		r.brow++
	}
	if r.brow == 0 {
		r.err = io.EOF
		return nil, io.EOF
	}
	s := string(r.arena)
	for c := range r.batch.Cols {
		cv := &r.batch.Cols[c]
		cv.Null = nil
		if r.hasNull[c] {
			cv.Null = r.nulls[c][:r.brow]
		}
		if cv.Kind == KindText {
			spans := r.textEnds[c*r.batchSize : c*r.batchSize+r.brow]
			for i, sp := range spans {
				cv.Text[i] = s[sp[0]:sp[1]]
			}
		}
	}
	r.batch.Rows = r.brow
	r.batch.FirstRow = first
	return &r.batch, nil
}

// store puts one key's value into the batch.
func (r *ndjsonReader) store(key []byte, val []byte, cls jsonClass) error {
	i, ok := r.index[string(key)]
	if !ok {
		return r.errorAt(string(key), "key not seen when the file was opened (did the file change?)")
	}
	c := &r.all[i]
	if c.seenLine == r.line {
		return r.errorAt(c.name, "duplicate key in one object")
	}
	c.seenLine = r.line
	k := r.keep[i]
	if k < 0 {
		return nil
	}
	if cls == jsonNone {
		return nil // null stays null
	}
	if cls != c.class {
		return r.errorAt(c.name, fmt.Sprintf("mixed types: %s at line %d, %s earlier (line %d)",
			jsonClassNames[cls], r.line, jsonClassNames[c.class], c.firstLine))
	}
	cv := &r.batch.Cols[k]
	row := r.brow
	switch cv.Kind {
	case KindInt:
		n, err := strconv.ParseInt(string(val), 10, 64)
		if err != nil {
			return r.errorAt(c.name, fmt.Sprintf("number %s is not an integer like the rest of the column (did the file change?)", val))
		}
		cv.Int[row] = n
	case KindFloat:
		f, err := strconv.ParseFloat(string(val), 64)
		if err != nil {
			var ne *strconv.NumError
			if !errors.As(err, &ne) || ne.Err != strconv.ErrRange {
				return r.errorAt(c.name, fmt.Sprintf("number %s: %v", val, err))
			}
		}
		cv.Float[row] = f
	case KindBool:
		cv.Bool[row] = val[0] == 't'
	case KindText:
		start := len(r.arena)
		if cls == jsonString {
			var err error
			if r.arena, err = appendJSONString(r.arena, val); err != nil {
				return r.errorAt(c.name, err.Error())
			}
		} else {
			r.compact.Reset()
			if err := json.Compact(&r.compact, val); err != nil {
				return r.errorAt(c.name, err.Error())
			}
			r.arena = append(r.arena, r.compact.Bytes()...)
		}
		r.textEnds[k*r.batchSize+row] = [2]int{start, len(r.arena)}
	}
	r.nulls[k][row] = false
	return nil
}

// appendJSONString appends the decoded value of the JSON string literal
// lit to dst.
func appendJSONString(dst, lit []byte) ([]byte, error) {
	body := lit[1 : len(lit)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return append(dst, body...), nil
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return dst, err
	}
	return append(dst, s...), nil
}

// isIntLiteral reports whether a JSON number is written as an integer that
// fits an int64.
func isIntLiteral(b []byte) bool {
	if bytes.ContainsAny(b, ".eE") {
		return false
	}
	_, err := strconv.ParseInt(string(b), 10, 64)
	return err == nil
}

// parseLine checks that b is one JSON object of valid UTF-8 and calls visit
// for each of its keys with the raw value and its class. Without validate,
// it trusts that b is valid JSON (the first pass checked it), though
// malformed input still fails cleanly.
func (r *ndjsonReader) parseLine(b []byte, validate bool, visit func(key, val []byte, cls jsonClass) error) error {
	if validate && !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		msg := "invalid JSON"
		var se *json.SyntaxError
		if errors.As(err, &se) {
			msg = fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, err)
		} else if err != nil {
			msg = "invalid JSON: " + err.Error()
		}
		return &InputError{File: r.name, Line: r.line, Row: r.row, Msg: msg}
	}
	i := skipJSONSpace(b, 0)
	if i >= len(b) {
		return r.malformed()
	}
	if b[i] != '{' {
		_, cls, _ := scanJSONValue(b, i)
		return &InputError{File: r.name, Line: r.line, Row: r.row, Msg: fmt.Sprintf("a line must hold a JSON object, not a %s", jsonKindOf(b[i], cls))}
	}
	validUTF8 := utf8.Valid(b)
	i = skipJSONSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		kend, esc, ok := scanJSONString(b, i)
		if !ok {
			return r.malformed()
		}
		key := b[i+1 : kend-1]
		if esc {
			var s string
			if err := json.Unmarshal(b[i:kend], &s); err != nil {
				return r.malformed()
			}
			key = []byte(s)
		}
		if !validUTF8 && !utf8.Valid(key) {
			return &InputError{File: r.name, Line: r.line, Row: r.row, Msg: fmt.Sprintf("key %q is not valid UTF-8", key)}
		}
		i = skipJSONSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return r.malformed()
		}
		i = skipJSONSpace(b, i+1)
		vend, cls, ok := scanJSONValue(b, i)
		if !ok {
			return r.malformed()
		}
		val := b[i:vend]
		if !validUTF8 && !utf8.Valid(val) {
			return &InputError{File: r.name, Line: r.line, Row: r.row, Column: string(key), Msg: "value is not valid UTF-8"}
		}
		if err := visit(key, val, cls); err != nil {
			return err
		}
		i = skipJSONSpace(b, vend)
		if i >= len(b) {
			return r.malformed()
		}
		if b[i] == '}' {
			return nil
		}
		if b[i] != ',' {
			return r.malformed()
		}
		i = skipJSONSpace(b, i+1)
	}
}

func (r *ndjsonReader) malformed() error {
	return &InputError{File: r.name, Line: r.line, Row: r.row, Msg: "malformed JSON object"}
}

func jsonKindOf(c byte, cls jsonClass) string {
	switch {
	case c == '[':
		return "JSON array"
	case cls == jsonNone:
		return "JSON null"
	}
	return "JSON " + jsonClassNames[cls]
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanJSONString returns the end (after the closing quote) of the string
// literal at b[i] and whether it has escapes.
func scanJSONString(b []byte, i int) (end int, esc, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false, false
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return j + 1, esc, true
		}
	}
	return 0, false, false
}

// scanJSONValue returns the end of the valid JSON value at b[i] and its
// class.
func scanJSONValue(b []byte, i int) (end int, cls jsonClass, ok bool) {
	if i >= len(b) {
		return 0, 0, false
	}
	switch b[i] {
	case '"':
		end, _, ok = scanJSONString(b, i)
		return end, jsonString, ok
	case 't':
		return i + 4, jsonBool, i+4 <= len(b)
	case 'f':
		return i + 5, jsonBool, i+5 <= len(b)
	case 'n':
		return i + 4, jsonNone, i+4 <= len(b)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e, _, ok := scanJSONString(b, j)
				if !ok {
					return 0, 0, false
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, jsonNested, true
				}
			}
		}
		return 0, 0, false
	}
	j := i
	for j < len(b) {
		c := b[j]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			j++
			continue
		}
		break
	}
	return j, jsonNumber, j > i
}

// Close releases the reader and closes the file it opened.
func (r *ndjsonReader) Close() error {
	if r.stream != nil {
		r.stream.Close()
	}
	r.err = errClosed
	if r.closeFile != nil {
		err := r.closeFile()
		r.closeFile = nil
		return err
	}
	return nil
}
