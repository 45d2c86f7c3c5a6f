package dataset

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/format"
)

// The Parquet reader.
//
// It reads column chunks page by page (only the projected columns' chunks),
// decodes each page once into a typed slice, and copies batches out of
// those slices; dictionary pages are decoded once per chunk, so a string
// column with a dictionary costs no allocation per value. A batch never
// spans two row groups, so batches may be shorter than BatchSize.
//
// Types, by logical type first, then by physical type:
//
//   - INT(8..64, signed) and plain INT32/INT64: KindInt (integer); unsigned
//     integers too, an UINT64 value above the int64 range being an error;
//   - FLOAT, DOUBLE, FLOAT16 and DECIMAL: KindFloat (float);
//   - BOOLEAN: KindBool (boolean);
//   - STRING, ENUM, JSON, UUID (as its canonical text) and plain
//     BYTE_ARRAY: KindText (string);
//   - TIMESTAMP (millis, micros, nanos, whether adjusted to UTC or not),
//     DATE and legacy INT96 timestamps: KindTimestamp in microseconds
//     (nanoseconds are floored to microseconds);
//   - TIME: KindInt, microseconds since midnight;
//   - the NULL type: KindText, every value null.
//
// Optional columns give Null. Columns inside groups (structs, lists, maps)
// and repeated columns are not read: projecting one, or reading every
// column of a file that has one, is an *InputError. So are BSON, INTERVAL
// and geospatial columns.
//
// Corrupt or truncated files are *InputError naming the file and, when
// known, the row group and the column; panics of the Parquet library are
// recovered and reported the same way.

// pqConv says how a column's physical values become batch values.
type pqConv uint8

const (
	pqInt       pqConv = iota // INT32/INT64 as is
	pqUint32                  // INT32 bits as uint32
	pqUint64                  // INT64 bits as uint64, checked
	pqFloat                   // FLOAT/DOUBLE
	pqDecimal                 // INT32/INT64/FIXED/BYTE_ARRAY unscaled decimal
	pqText                    // BYTE_ARRAY as text
	pqBool                    // BOOLEAN
	pqTimestamp               // INT64 × mul / div to µs
	pqDate                    // INT32 days
	pqInt96                   // legacy INT96 timestamp
	pqUUID                    // FIXED[16] UUID
	pqFloat16                 // FIXED[2] half float
	pqTime                    // TIME × mul / div to µs
	pqNull                    // NULL logical type
)

// pqColumn is one projected column and its reading state.
type pqColumn struct {
	name    string
	leaf    int // index of the column chunk in a row group
	kind    Kind
	phys    parquet.Kind
	conv    pqConv
	mul     int64 // pqTimestamp, pqTime: value × mul / div
	div     int64
	pow10   float64 // pqDecimal: the unscaled value divided by this
	maxDef  byte
	pages   parquet.Pages
	rgRows  int64 // rows of the current row group
	rgDone  int64 // rows of the current row group staged so far
	dictRef parquet.Dictionary
	dict    pqStage // the decoded dictionary of the current chunk
	stage   pqStage // the decoded current page
	off     int     // next staged row to copy
	n       int     // staged rows
	nullBuf []bool  // the batch's null flags
	scratch []parquet.Value
}

// pqStage holds decoded values of one kind.
type pqStage struct {
	ints   []int64
	floats []float64
	texts  []string
	bools  []bool
	null   []bool
	hasNil bool
	// dict says that the page's values are the dictionary indexes in idx
	// (checked to be in range; 0 for null rows) rather than values.
	dict bool
	idx  []int32
}

type parquetReader struct {
	name      string
	file      *parquet.File
	closeFile func() error
	cols      []Column
	pcols     []*pqColumn
	rowGroups []parquet.RowGroup
	rg        int   // current row group, -1 before the first
	rgRows    int64 // rows of the current row group
	rgRead    int64 // rows of it returned
	row       int64 // rows returned
	batchSize int
	batch     Batch
	err       error
}

var _ Reader = (*parquetReader)(nil)

func newParquetReader(name string, ra io.ReaderAt, size int64, opts ReadOptions, closeFile func() error) (r *parquetReader, err error) {
	if err := checkParquetFrame(name, ra, size); err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, &InputError{File: name, Msg: fmt.Sprintf("corrupt Parquet file: %v", p)}
		}
	}()
	f, err := parquet.OpenFile(ra, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true), parquet.ReadBufferSize(1<<20))
	if err != nil {
		return nil, &InputError{File: name, Msg: fmt.Sprintf("not a readable Parquet file: %v", err)}
	}
	r = &parquetReader{name: name, file: f, closeFile: closeFile, rowGroups: f.RowGroups(), rg: -1, batchSize: opts.BatchSize}
	if err := r.checkMetadata(size); err != nil {
		return nil, err
	}
	top := f.Root().Columns()
	byName := make(map[string]*parquet.Column, len(top))
	names := make([]string, len(top))
	for i, c := range top {
		byName[c.Name()] = c
		names[i] = c.Name()
	}
	want := map[string]bool{}
	for _, n := range opts.Columns {
		if byName[n] == nil {
			return nil, &InputError{File: name, Column: n, Msg: fmt.Sprintf("no such column; the file has %s", strings.Join(names, ", "))}
		}
		want[n] = true
	}
	for _, c := range top {
		if opts.Columns != nil && !want[c.Name()] {
			continue
		}
		pc, typ, err := r.newColumn(c)
		if err != nil {
			return nil, err
		}
		r.pcols = append(r.pcols, pc)
		r.cols = append(r.cols, Column{Name: c.Name(), Type: typ})
		pc.nullBuf = make([]bool, r.batchSize)
		cv := ColumnValues{Kind: pc.kind}
		switch pc.kind {
		case KindInt, KindTimestamp:
			cv.Int = make([]int64, r.batchSize)
		case KindFloat:
			cv.Float = make([]float64, r.batchSize)
		case KindBool:
			cv.Bool = make([]bool, r.batchSize)
		case KindText:
			cv.Text = make([]string, r.batchSize)
		}
		r.batch.Cols = append(r.batch.Cols, cv)
	}
	return r, nil
}

// checkParquetFrame checks the magic numbers and the footer length before
// the library reads them, so that a corrupt length cannot make it allocate
// more than the file holds.
func checkParquetFrame(name string, ra io.ReaderAt, size int64) error {
	if size < 12 {
		return &InputError{File: name, Msg: fmt.Sprintf("not a Parquet file: %d bytes is too short (truncated?)", size)}
	}
	var head, tail [4]byte
	var foot [8]byte
	if _, err := ra.ReadAt(head[:], 0); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if _, err := ra.ReadAt(foot[:], size-8); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	copy(tail[:], foot[4:])
	if string(head[:]) != "PAR1" {
		return &InputError{File: name, Msg: "not a Parquet file: it does not start with PAR1"}
	}
	if string(tail[:]) != "PAR1" {
		return &InputError{File: name, Msg: "truncated or corrupt Parquet file: it does not end with PAR1 (encrypted footers are not supported)"}
	}
	if n := int64(binary.LittleEndian.Uint32(foot[:4])); n > size-12 {
		return &InputError{File: name, Msg: fmt.Sprintf("truncated or corrupt Parquet file: footer of %d bytes in a file of %d", n, size)}
	}
	return nil
}

// checkMetadata checks what the footer says against the file's size.
func (r *parquetReader) checkMetadata(size int64) error {
	md := r.file.Metadata()
	if md.NumRows < 0 {
		return &InputError{File: r.name, Msg: fmt.Sprintf("corrupt Parquet file: %d rows", md.NumRows)}
	}
	for i, rg := range md.RowGroups {
		if rg.NumRows < 0 {
			return &InputError{File: r.name, Msg: fmt.Sprintf("corrupt Parquet file: row group %d has %d rows", i, rg.NumRows)}
		}
		for _, cc := range rg.Columns {
			m := &cc.MetaData
			start := m.DataPageOffset
			if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
				start = m.DictionaryPageOffset
			}
			if start < 0 || m.TotalCompressedSize < 0 || start > size || m.TotalCompressedSize > size-start {
				return &InputError{File: r.name, Column: strings.Join(m.PathInSchema, "."),
					Msg: fmt.Sprintf("truncated or corrupt Parquet file: row group %d: column chunk at bytes %d..%d of a file of %d", i, start, start+m.TotalCompressedSize, size)}
			}
		}
	}
	return nil
}

// newColumn maps a top-level column to its reading plan and type.
func (r *parquetReader) newColumn(c *parquet.Column) (*pqColumn, Type, error) {
	fail := func(msg string) (*pqColumn, Type, error) {
		return nil, "", &InputError{File: r.name, Column: c.Name(), Msg: msg}
	}
	if !c.Leaf() || c.Repeated() || c.MaxRepetitionLevel() > 0 {
		return fail("column is nested or repeated; mloop reads flat tables (project the flat columns with --columns, or flatten the file)")
	}
	if c.MaxDefinitionLevel() > 1 {
		return fail("column is nested; mloop reads flat tables")
	}
	t := c.Type()
	pc := &pqColumn{name: c.Name(), leaf: c.Index(), phys: t.Kind(), maxDef: byte(c.MaxDefinitionLevel()), mul: 1, div: 1}
	lt := t.LogicalType()
	var lv format.LogicalTypeValue
	if lt != nil {
		lv = lt.Value
	}
	set := func(k Kind, conv pqConv, typ Type) (*pqColumn, Type, error) {
		pc.kind, pc.conv = k, conv
		return pc, typ, nil
	}
	switch l := lv.(type) {
	case *format.TimestampType:
		if pc.phys != parquet.Int64 {
			break
		}
		switch l.Unit.Value.(type) {
		case *format.MilliSeconds:
			pc.mul = 1000
		case *format.NanoSeconds:
			pc.div = 1000
		}
		return set(KindTimestamp, pqTimestamp, TypeTimestamp)
	case *format.DateType:
		if pc.phys == parquet.Int32 {
			return set(KindTimestamp, pqDate, TypeTimestamp)
		}
	case *format.TimeType:
		switch l.Unit.Value.(type) {
		case *format.MilliSeconds:
			pc.mul = 1000
		case *format.NanoSeconds:
			pc.div = 1000
		}
		if pc.phys == parquet.Int32 || pc.phys == parquet.Int64 {
			return set(KindInt, pqTime, TypeInteger)
		}
	case *format.IntType:
		switch {
		case !l.IsSigned && pc.phys == parquet.Int32:
			return set(KindInt, pqUint32, TypeInteger)
		case !l.IsSigned && pc.phys == parquet.Int64:
			return set(KindInt, pqUint64, TypeInteger)
		}
	case *format.DecimalType:
		pc.pow10 = math.Pow10(int(l.Scale))
		switch pc.phys {
		case parquet.Int32, parquet.Int64, parquet.FixedLenByteArray, parquet.ByteArray:
			return set(KindFloat, pqDecimal, TypeFloat)
		}
	case *format.UUIDType:
		if pc.phys == parquet.FixedLenByteArray && t.Length() == 16 {
			return set(KindText, pqUUID, TypeString)
		}
	case *format.Float16Type:
		if pc.phys == parquet.FixedLenByteArray && t.Length() == 2 {
			return set(KindFloat, pqFloat16, TypeFloat)
		}
	case *format.NullType:
		return set(KindText, pqNull, TypeString)
	case *format.StringType, *format.EnumType, *format.JsonType, nil:
		// By physical type below.
	default:
		return fail(fmt.Sprintf("unsupported Parquet type %s", lt))
	}
	if ct := t.ConvertedType(); ct != nil && lv == nil && int32(*ct) == 21 { // INTERVAL
		return fail("unsupported Parquet type INTERVAL")
	}
	switch pc.phys {
	case parquet.Int32, parquet.Int64:
		return set(KindInt, pqInt, TypeInteger)
	case parquet.Float, parquet.Double:
		return set(KindFloat, pqFloat, TypeFloat)
	case parquet.Boolean:
		return set(KindBool, pqBool, TypeBoolean)
	case parquet.ByteArray:
		return set(KindText, pqText, TypeString)
	case parquet.Int96:
		return set(KindTimestamp, pqInt96, TypeTimestamp)
	}
	return fail(fmt.Sprintf("unsupported Parquet type %s", t))
}

// Columns returns the projected columns in file order, with the types
// their Parquet types map to.
func (r *parquetReader) Columns() []Column { return r.cols }

// Next returns the next batch of at most BatchSize rows of one row group.
func (r *parquetReader) Next(ctx context.Context) (b *Batch, err error) {
	if r.err != nil {
		return nil, r.err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", r.name, err)
	}
	col := ""
	defer func() {
		if p := recover(); p != nil {
			b, err = nil, r.corrupt(col, fmt.Sprint(p))
		}
		if err != nil {
			r.err = err
		}
	}()
	for r.rg < 0 || r.rgRead == r.rgRows {
		if r.rg+1 >= len(r.rowGroups) {
			return nil, io.EOF
		}
		if err := r.openRowGroup(r.rg + 1); err != nil {
			return nil, err
		}
	}
	n := int(min(int64(r.batchSize), r.rgRows-r.rgRead))
	for i, pc := range r.pcols {
		col = pc.name
		if err := r.fillColumn(pc, &r.batch.Cols[i], n); err != nil {
			return nil, err
		}
	}
	r.batch.Rows = n
	r.batch.FirstRow = r.row + 1
	r.row += int64(n)
	r.rgRead += int64(n)
	return &r.batch, nil
}

func (r *parquetReader) corrupt(col, msg string) error {
	return &InputError{File: r.name, Row: r.row + 1, Column: col,
		Msg: fmt.Sprintf("corrupt Parquet file: row group %d: %s", r.rg, msg)}
}

// openRowGroup starts reading row group i.
func (r *parquetReader) openRowGroup(i int) error {
	r.closePages()
	r.rg = i
	rg := r.rowGroups[i]
	r.rgRows, r.rgRead = rg.NumRows(), 0
	chunks := rg.ColumnChunks()
	for _, pc := range r.pcols {
		if pc.leaf >= len(chunks) {
			return r.corrupt(pc.name, "column chunk missing")
		}
		pc.pages = chunks[pc.leaf].Pages()
		pc.rgRows, pc.rgDone = r.rgRows, 0
		pc.off, pc.n = 0, 0
		pc.dictRef = nil
	}
	return nil
}

func (r *parquetReader) closePages() {
	for _, pc := range r.pcols {
		if pc.pages != nil {
			pc.pages.Close()
			pc.pages = nil
		}
	}
}

// fillColumn copies the next n rows of column pc into dst.
func (r *parquetReader) fillColumn(pc *pqColumn, dst *ColumnValues, n int) error {
	hasNull := false
	nulls := pc.nullBuf[:n]
	for done := 0; done < n; {
		if pc.off == pc.n {
			if err := r.nextPage(pc); err != nil {
				return err
			}
		}
		k := min(n-done, pc.n-pc.off)
		s := &pc.stage
		var rowNull []bool
		if s.hasNil {
			rowNull = s.null[pc.off : pc.off+k]
		}
		switch {
		case s.dict:
			ix := s.idx[pc.off : pc.off+k]
			switch pc.kind {
			case KindInt, KindTimestamp:
				lookup(dst.Int[done:done+k], pc.dict.ints, ix, rowNull)
			case KindFloat:
				lookup(dst.Float[done:done+k], pc.dict.floats, ix, rowNull)
			case KindBool:
				lookup(dst.Bool[done:done+k], pc.dict.bools, ix, rowNull)
			case KindText:
				lookup(dst.Text[done:done+k], pc.dict.texts, ix, rowNull)
			}
		case pc.kind == KindInt || pc.kind == KindTimestamp:
			copy(dst.Int[done:done+k], s.ints[pc.off:pc.off+k])
		case pc.kind == KindFloat:
			copy(dst.Float[done:done+k], s.floats[pc.off:pc.off+k])
		case pc.kind == KindBool:
			copy(dst.Bool[done:done+k], s.bools[pc.off:pc.off+k])
		case pc.kind == KindText:
			copy(dst.Text[done:done+k], s.texts[pc.off:pc.off+k])
		}
		if s.hasNil {
			copy(nulls[done:done+k], s.null[pc.off:pc.off+k])
			hasNull = true
		} else {
			clear(nulls[done : done+k])
		}
		pc.off += k
		done += k
	}
	dst.Null = nil
	if hasNull {
		dst.Null = nulls
	}
	return nil
}

// nextPage decodes the column's next non-empty page.
func (r *parquetReader) nextPage(pc *pqColumn) error {
	for {
		if pc.rgDone >= pc.rgRows {
			return r.corrupt(pc.name, fmt.Sprintf("column chunk has more rows than the row group's %d", pc.rgRows))
		}
		p, err := pc.pages.ReadPage()
		if err == io.EOF {
			return r.corrupt(pc.name, fmt.Sprintf("column chunk ends after %d of the row group's %d rows", pc.rgDone, pc.rgRows))
		}
		if err != nil {
			return r.corrupt(pc.name, err.Error())
		}
		err = r.decodePage(pc, p)
		parquet.Release(p)
		if err != nil {
			return err
		}
		if pc.n > 0 {
			pc.rgDone += int64(pc.n)
			if pc.rgDone > pc.rgRows {
				return r.corrupt(pc.name, fmt.Sprintf("column chunk has more rows than the row group's %d", pc.rgRows))
			}
			return nil
		}
	}
}

// grow returns s resized to n elements, reusing its memory.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

// decodePage decodes page p of column pc into pc.stage.
func (r *parquetReader) decodePage(pc *pqColumn, p parquet.Page) error {
	n64 := p.NumValues()
	if n64 < 0 || n64 > pc.rgRows-pc.rgDone {
		return r.corrupt(pc.name, fmt.Sprintf("page of %d values where %d rows remain", n64, pc.rgRows-pc.rgDone))
	}
	n := int(n64)
	pc.off, pc.n = 0, n
	s := &pc.stage
	s.null = grow(s.null, n)
	s.hasNil, s.dict = false, false
	if p.Dictionary() != nil && pc.phys != parquet.Boolean && pc.phys != parquet.Int96 && pc.phys != parquet.FixedLenByteArray {
		s.idx = grow(s.idx, n)
	} else {
		switch pc.kind {
		case KindInt, KindTimestamp:
			s.ints = grow(s.ints, n)
		case KindFloat:
			s.floats = grow(s.floats, n)
		case KindBool:
			s.bools = grow(s.bools, n)
		case KindText:
			s.texts = grow(s.texts, n)
		}
	}
	// Definition levels: which rows have a value.
	present := n
	defs := p.DefinitionLevels()
	if pc.maxDef > 0 {
		if len(defs) != n {
			return r.corrupt(pc.name, fmt.Sprintf("page has %d definition levels for %d values", len(defs), n))
		}
		present = bytes.Count(defs, []byte{pc.maxDef})
	}
	s.hasNil = present < n
	if s.hasNil {
		for i, d := range defs {
			s.null[i] = d != pc.maxDef
		}
	} else {
		clear(s.null)
	}
	if pc.conv == pqNull {
		for i := range s.null {
			s.null[i] = true
		}
		clear(s.texts)
		s.hasNil = n > 0
		return nil
	}
	switch pc.phys {
	case parquet.Int32, parquet.Int64, parquet.Float, parquet.Double, parquet.ByteArray:
		return r.decodeFast(pc, p, n, present)
	}
	return r.decodeValues(pc, p, n)
}

// decodeFast decodes pages of the common physical types from their raw
// buffers, through the dictionary when the page has one.
func (r *parquetReader) decodeFast(pc *pqColumn, p parquet.Page, n, present int) error {
	s := &pc.stage
	data := p.Data()
	if d := p.Dictionary(); d != nil {
		if d != pc.dictRef {
			if err := r.decodeDict(pc, d); err != nil {
				return err
			}
			pc.dictRef = d
		}
		if data.Kind() != encoding.Int32 {
			return r.corrupt(pc.name, "dictionary page without indexes")
		}
		idx := data.Int32()
		if len(idx) < present {
			return r.corrupt(pc.name, fmt.Sprintf("page has %d values for %d present rows", len(idx), present))
		}
		s.dict = true
		if bad := spreadIndexes(s.idx, idx, s.null, s.hasNil, uint32(dictLen(&pc.dict, pc.kind))); bad >= 0 {
			return r.corrupt(pc.name, fmt.Sprintf("dictionary index %d out of range (%d entries)", bad, dictLen(&pc.dict, pc.kind)))
		}
		return nil
	}
	// Plain values: convert them into a dense stage, then spread them over
	// the rows that are present.
	var tmp pqStage
	m, err := r.convert(pc, &data, &tmp)
	if err != nil {
		return err
	}
	if m < present {
		return r.corrupt(pc.name, fmt.Sprintf("page has %d values for %d present rows", m, present))
	}
	switch pc.kind {
	case KindInt, KindTimestamp:
		spread(s.ints, tmp.ints, s.null, s.hasNil)
	case KindFloat:
		spread(s.floats, tmp.floats, s.null, s.hasNil)
	case KindText:
		spread(s.texts, tmp.texts, s.null, s.hasNil)
	case KindBool:
		spread(s.bools, tmp.bools, s.null, s.hasNil)
	}
	return nil
}

// spreadIndexes sets dst[i] to idx[j] for the rows i that are not null, j
// counting those rows, and the null rows to 0; it returns an index that is
// not below n, or -1.
func spreadIndexes(dst, idx []int32, null []bool, hasNil bool, n uint32) int32 {
	if !hasNil {
		for i, x := range idx[:len(dst)] {
			if uint32(x) >= n {
				return x
			}
			dst[i] = x
		}
		return -1
	}
	j := 0
	for i := range dst {
		if null[i] {
			dst[i] = 0
			continue
		}
		x := idx[j]
		j++
		if uint32(x) >= n {
			return x
		}
		dst[i] = x
	}
	return -1
}

// lookup sets dst[i] to dict[idx[i]], or to zero where null (when non-nil)
// says so.
func lookup[T any](dst, dict []T, idx []int32, null []bool) {
	if null == nil {
		for i, x := range idx {
			dst[i] = dict[x]
		}
		return
	}
	var zero T
	for i, x := range idx {
		if null[i] {
			dst[i] = zero
		} else {
			dst[i] = dict[x]
		}
	}
}

// spread sets the rows of dst that are not null to the values of src in
// order, and the other rows to zero.
func spread[T any](dst, src []T, null []bool, hasNil bool) {
	if !hasNil {
		copy(dst, src)
		return
	}
	var zero T
	j := 0
	for i := range dst {
		if null[i] {
			dst[i] = zero
			continue
		}
		dst[i] = src[j]
		j++
	}
}

// zero sets staged row i to the zero value.
func (r *parquetReader) zero(pc *pqColumn, i int) {
	s := &pc.stage
	switch pc.kind {
	case KindInt, KindTimestamp:
		s.ints[i] = 0
	case KindFloat:
		s.floats[i] = 0
	case KindText:
		s.texts[i] = ""
	case KindBool:
		s.bools[i] = false
	}
}

func dictLen(s *pqStage, k Kind) int {
	switch k {
	case KindInt, KindTimestamp:
		return len(s.ints)
	case KindFloat:
		return len(s.floats)
	case KindText:
		return len(s.texts)
	case KindBool:
		return len(s.bools)
	}
	return 0
}

// decodeDict decodes a chunk's dictionary into pc.dict.
func (r *parquetReader) decodeDict(pc *pqColumn, d parquet.Dictionary) error {
	pc.dict = pqStage{}
	data := d.Page().Data()
	_, err := r.convert(pc, &data, &pc.dict)
	return err
}

// decimalFloats returns the values of a DECIMAL column stored as integers:
// each unscaled value divided by pow10 (10^scale).
func decimalFloats[T int32 | int64](xs []T, pow10 float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x) / pow10
	}
	return out
}

// convert converts the plain values of a page of the column's physical type
// into dst, allocating dst's slices; it returns their number.
func (r *parquetReader) convert(pc *pqColumn, data *encoding.Values, dst *pqStage) (int, error) {
	if data.Kind() != encodingKind(pc.phys) {
		return 0, r.corrupt(pc.name, fmt.Sprintf("page holds %s values in a %s column", data.Kind(), pc.phys))
	}
	switch pc.phys {
	case parquet.Int32:
		xs := data.Int32()
		switch pc.kind {
		case KindFloat: // decimal
			dst.floats = decimalFloats(xs, pc.pow10)
		default:
			dst.ints = make([]int64, len(xs))
			for i, x := range xs {
				dst.ints[i] = pc.convInt(int64(x), uint32(x))
			}
		}
		return len(xs), nil
	case parquet.Int64:
		xs := data.Int64()
		switch pc.kind {
		case KindFloat: // decimal
			dst.floats = decimalFloats(xs, pc.pow10)
		default:
			dst.ints = make([]int64, len(xs))
			if pc.conv == pqInt {
				copy(dst.ints, xs)
				break
			}
			for i, x := range xs {
				if pc.conv == pqUint64 && x < 0 {
					return 0, r.corrupt(pc.name, fmt.Sprintf("unsigned value %d is beyond the int64 range", uint64(x)))
				}
				dst.ints[i] = pc.convInt(x, 0)
			}
		}
		return len(xs), nil
	case parquet.Float:
		xs := data.Float()
		dst.floats = make([]float64, len(xs))
		for i, x := range xs {
			dst.floats[i] = float64(x)
		}
		return len(xs), nil
	case parquet.Double:
		xs := data.Double()
		dst.floats = make([]float64, len(xs))
		copy(dst.floats, xs)
		return len(xs), nil
	case parquet.ByteArray:
		buf, offs := data.ByteArray()
		if len(offs) == 0 {
			return 0, nil
		}
		m := len(offs) - 1
		if pc.kind == KindFloat { // decimal
			dst.floats = make([]float64, m)
			for i := range m {
				a, b := offs[i], offs[i+1]
				if a > b || int(b) > len(buf) {
					return 0, r.corrupt(pc.name, "byte array offsets out of range")
				}
				dst.floats[i] = decimalFloat(buf[a:b], pc.pow10)
			}
			return m, nil
		}
		all := string(buf)
		dst.texts = make([]string, m)
		for i := range m {
			a, b := offs[i], offs[i+1]
			if a > b || int(b) > len(all) {
				return 0, r.corrupt(pc.name, "byte array offsets out of range")
			}
			dst.texts[i] = all[a:b]
		}
		return m, nil
	}
	// Dictionaries of the other physical types go through their values.
	return 0, r.corrupt(pc.name, fmt.Sprintf("unexpected %s dictionary", pc.phys))
}

// encodingKind returns the kind of encoding.Values that holds values of a
// physical type.
func encodingKind(k parquet.Kind) encoding.Kind {
	switch k {
	case parquet.Boolean:
		return encoding.Boolean
	case parquet.Int32:
		return encoding.Int32
	case parquet.Int64:
		return encoding.Int64
	case parquet.Int96:
		return encoding.Int96
	case parquet.Float:
		return encoding.Float
	case parquet.Double:
		return encoding.Double
	case parquet.ByteArray:
		return encoding.ByteArray
	case parquet.FixedLenByteArray:
		return encoding.FixedLenByteArray
	}
	return encoding.Undefined
}

// convInt converts an INT32 or INT64 value by the column's conversion; u
// is the INT32 value as unsigned.
func (pc *pqColumn) convInt(x int64, u uint32) int64 {
	switch pc.conv {
	case pqUint32:
		return int64(u)
	case pqDate:
		return x * 86400e6
	case pqTimestamp, pqTime:
		if pc.div != 1 {
			return floorDiv(x, pc.div)
		}
		return x * pc.mul
	}
	return x
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// decimalFloat converts a big-endian two's complement unscaled decimal and
// divides it by pow10.
func decimalFloat(b []byte, pow10 float64) float64 {
	if len(b) <= 8 {
		var v int64
		for _, c := range b {
			v = v<<8 | int64(c)
		}
		if len(b) > 0 && len(b) < 8 && b[0]&0x80 != 0 {
			v -= 1 << (8 * len(b))
		}
		return float64(v) / pow10
	}
	v := new(big.Int).SetBytes(b)
	if b[0]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	f, _ := new(big.Float).SetInt(v).Float64()
	return f / pow10
}

// decodeValues decodes pages of the other physical types (BOOLEAN, INT96,
// FIXED_LEN_BYTE_ARRAY) value by value.
func (r *parquetReader) decodeValues(pc *pqColumn, p parquet.Page, n int) error {
	vr := p.Values()
	if pc.scratch == nil {
		pc.scratch = make([]parquet.Value, 1024)
	}
	s := &pc.stage
	i := 0
	for {
		m, err := vr.ReadValues(pc.scratch)
		if m > n-i {
			return r.corrupt(pc.name, fmt.Sprintf("page has more than its %d values", n))
		}
		for _, v := range pc.scratch[:m] {
			s.null[i] = v.IsNull()
			if s.null[i] {
				s.hasNil = true
				r.zero(pc, i)
				i++
				continue
			}
			if err := pc.setValue(s, i, v); err != nil {
				return r.corrupt(pc.name, err.Error())
			}
			i++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return r.corrupt(pc.name, err.Error())
		}
		if m == 0 {
			return r.corrupt(pc.name, "page reader made no progress")
		}
	}
	if i != n {
		return r.corrupt(pc.name, fmt.Sprintf("page has %d of its %d values", i, n))
	}
	return nil
}

// setValue stores one non-null value of a BOOLEAN, INT96 or
// FIXED_LEN_BYTE_ARRAY column.
func (pc *pqColumn) setValue(s *pqStage, i int, v parquet.Value) error {
	switch pc.conv {
	case pqBool:
		s.bools[i] = v.Boolean()
	case pqInt96:
		x := v.Int96()
		nanos := int64(uint64(x[1])<<32 | uint64(x[0]))
		days := int64(x[2]) - 2440588 // Julian day of 1970-01-01
		s.ints[i] = days*86400e6 + floorDiv(nanos, 1000)
	case pqUUID:
		b := v.ByteArray()
		if len(b) != 16 {
			return fmt.Errorf("UUID of %d bytes", len(b))
		}
		s.texts[i] = fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	case pqFloat16:
		b := v.ByteArray()
		if len(b) != 2 {
			return fmt.Errorf("FLOAT16 of %d bytes", len(b))
		}
		s.floats[i] = float16(binary.LittleEndian.Uint16(b))
	case pqDecimal:
		s.floats[i] = decimalFloat(v.ByteArray(), pc.pow10)
	case pqText:
		s.texts[i] = string(v.ByteArray())
	default:
		return errors.New("unexpected physical type")
	}
	return nil
}

// float16 converts an IEEE 754 half-precision float.
func float16(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1+frac/1024, exp-15)
}

// Close releases the reader and closes the file it opened.
func (r *parquetReader) Close() error {
	r.closePages()
	r.err = errClosed
	if r.closeFile != nil {
		err := r.closeFile()
		r.closeFile = nil
		return err
	}
	return nil
}
