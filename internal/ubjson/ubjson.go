// Package ubjson decodes Universal Binary JSON (UBJSON, Draft 12,
// https://ubjson.org), the binary format XGBoost uses for its .ubj model
// files.
//
// Decoded values use the same Go types as encoding/json with a few
// additions for speed and memory:
//
//	Z null                      nil
//	T true, F false             bool
//	i, U, I, l, L integers      int64
//	d float32, D float64        float64
//	H high-precision number     string (its decimal text, checked to be a JSON number)
//	C char, S string            string
//	[ ] array                   []any
//	{ } object                  map[string]any
//
// Optimized arrays that declare a fixed numeric element type with "$" (and
// therefore a count with "#") decode into typed slices instead of []any:
//
//	[$d#…  []float32
//	[$D#…  []float64
//	[$i#…  []int8
//	[$U#…  []uint8
//	[$I#…, [$l#…, [$L#…  []int64
//
// Every other array, including counted arrays without "$" and arrays of a
// fixed non-numeric type ($S, $C, $H, $Z, $T, $F, $[, ${), decodes into []any.
// Objects always decode into map[string]any; a duplicated key keeps its last
// value. The no-op marker N is skipped wherever a value or an object key may
// start, and is not counted as an element of a counted container.
//
// The decoder is meant for untrusted input: nesting is limited to MaxDepth
// containers, declared lengths never drive an allocation larger than the
// bytes actually read (buffers grow as data arrives, and a declared length
// that exceeds the known input size is rejected at once), containers of
// zero-width elements ($Z, $T, $F) are limited to MaxZeroWidthElements in
// total, and strings and keys must be valid UTF-8. Malformed input yields an
// *mloop.Error of kind mloop.EINVALID whose message names the byte offset.
package ubjson

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"unicode/utf8"

	"github.com/mloop/mloop"
)

// MaxDepth is the deepest nesting of arrays and objects the decoder accepts.
const MaxDepth = 512

// MaxZeroWidthElements is the largest total number of elements, summed over
// one input, that optimized containers of the zero-width types $Z, $T and $F
// may declare. Such elements occupy no bytes, so without this limit a few
// bytes of input could demand unbounded memory.
const MaxZeroWidthElements = 1 << 20

// maxPrealloc caps how many elements or bytes are allocated up front from a
// declared count before the corresponding bytes have been read.
const maxPrealloc = 1 << 16

// chunkSize is how many bytes of a typed array or string are read at a time.
const chunkSize = 32 << 10

// Decode reads r to its end, which must hold exactly one UBJSON value, and
// returns that value (see the package documentation for the Go types
// produced). Trailing no-op markers are allowed; any other byte after the
// value is an error. When r reports its size (bytes.Reader, strings.Reader,
// bytes.Buffer, or a regular *os.File), declared lengths beyond it are
// rejected before any allocation. Malformed input yields an error of kind
// mloop.EINVALID; a failure of r itself is returned wrapped.
func Decode(r io.Reader) (any, error) {
	d := &decoder{r: bufio.NewReaderSize(r, 64<<10), remaining: inputSize(r)}
	return d.document()
}

// inputSize returns how many bytes are left to read from r, or -1 when r
// does not tell.
func inputSize(r io.Reader) int64 {
	switch r := r.(type) {
	case interface{ Len() int }:
		return int64(r.Len())
	case *os.File:
		fi, err := r.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return -1
		}
		pos, err := r.Seek(0, io.SeekCurrent)
		if err != nil || pos > fi.Size() {
			return -1
		}
		return fi.Size() - pos
	}
	return -1
}

// Unmarshal decodes the single UBJSON value held in data, with the same rules
// and results as Decode.
func Unmarshal(data []byte) (any, error) {
	d := &decoder{buf: data, remaining: int64(len(data))}
	return d.document()
}

// decoder holds the state of one decoding. It reads either from buf (when
// non-nil or r is nil) or through r.
type decoder struct {
	r   *bufio.Reader
	buf []byte // whole input when decoding from memory; r is nil then

	off       int64 // bytes consumed so far
	remaining int64 // bytes left in the input when known, else -1
	depth     int
	zeroWidth int64 // zero-width elements declared so far
	scratch   []byte
}

func (d *decoder) document() (any, error) {
	v, err := d.value()
	if err != nil {
		return nil, err
	}
	for {
		m, err := d.readByte()
		if errors.Is(err, errEOF) {
			return v, nil
		} else if err != nil {
			return nil, err
		}
		if m != 'N' {
			return nil, d.errorf(d.off-1, "unexpected trailing data (marker %s) after the value", markerName(m))
		}
	}
}

// errEOF reports a clean end of input where one may occur; callers turn it
// into a truncation error elsewhere.
var errEOF = errors.New("end of input")

func (d *decoder) errorf(at int64, format string, args ...any) error {
	return mloop.Errorf(mloop.EINVALID, "ubjson: %s at byte %d", fmt.Sprintf(format, args...), at)
}

func (d *decoder) truncated(what string) error {
	return mloop.Errorf(mloop.EINVALID, "ubjson: unexpected end of input reading %s at byte %d; the input is truncated or not UBJSON", what, d.off)
}

// readErr converts an error from the underlying reader.
func (d *decoder) readErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return d.truncated(what)
	}
	return fmt.Errorf("ubjson: read %s at byte %d: %w", what, d.off, err)
}

// readByte returns the next byte, or errEOF at a clean end of input.
func (d *decoder) readByte() (byte, error) {
	if d.r == nil {
		if d.off >= int64(len(d.buf)) {
			return 0, errEOF
		}
		b := d.buf[d.off]
		d.off++
		return b, nil
	}
	b, err := d.r.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, errEOF
		}
		return 0, fmt.Errorf("ubjson: read at byte %d: %w", d.off, err)
	}
	d.off++
	return b, nil
}

// mustByte is readByte where end of input is a truncation error.
func (d *decoder) mustByte(what string) (byte, error) {
	b, err := d.readByte()
	if errors.Is(err, errEOF) {
		return 0, d.truncated(what)
	}
	return b, err
}

// next returns n bytes of input. The slice is valid only until the next read.
// n must be at most chunkSize when reading from a stream.
func (d *decoder) next(n int, what string) ([]byte, error) {
	if d.r == nil {
		if int64(n) > int64(len(d.buf))-d.off {
			d.off = int64(len(d.buf))
			return nil, d.truncated(what)
		}
		b := d.buf[d.off : d.off+int64(n)]
		d.off += int64(n)
		return b, nil
	}
	if cap(d.scratch) < n {
		d.scratch = make([]byte, max(n, 64))
	}
	b := d.scratch[:n]
	got, err := io.ReadFull(d.r, b)
	d.off += int64(got)
	if err != nil {
		return nil, d.readErr(err, what)
	}
	return b, nil
}

// checkLength rejects a declared length of n elements of size bytes each
// that cannot fit in what is left of the input, when that is known.
func (d *decoder) checkLength(n int64, size int64, at int64, what string) error {
	if n < 0 {
		return d.errorf(at, "negative %s length %d", what, n)
	}
	if d.remaining >= 0 && size > 0 && n > (d.remaining-d.off)/size {
		return d.errorf(at, "%s length %d exceeds the %d bytes left in the input", what, n, max(d.remaining-d.off, 0))
	}
	return nil
}

// value decodes one value, skipping leading no-ops.
func (d *decoder) value() (any, error) {
	for {
		m, err := d.mustByte("a value marker")
		if err != nil {
			return nil, err
		}
		if m != 'N' {
			return d.valueOf(m, d.off-1)
		}
	}
}

// valueOf decodes the body of a value whose type marker m (read at offset
// at, or implied by an optimized container) is already known.
func (d *decoder) valueOf(m byte, at int64) (any, error) {
	switch m {
	case 'Z':
		return nil, nil
	case 'T':
		return true, nil
	case 'F':
		return false, nil
	case 'i', 'U', 'I', 'l', 'L':
		return d.intOf(m)
	case 'd':
		b, err := d.next(4, "a float32")
		if err != nil {
			return nil, err
		}
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
	case 'D':
		b, err := d.next(8, "a float64")
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	case 'H':
		start := d.off
		s, err := d.str("high-precision number")
		if err != nil {
			return nil, err
		}
		if !isJSONNumber(s) {
			return nil, d.errorf(start, "high-precision number %q is not a decimal number", truncate(s))
		}
		return s, nil
	case 'C':
		b, err := d.mustByte("a char")
		if err != nil {
			return nil, err
		}
		if b > 127 {
			return nil, d.errorf(d.off-1, "char 0x%02x is not ASCII", b)
		}
		return string(rune(b)), nil
	case 'S':
		return d.str("string")
	case '[':
		return d.array(at)
	case '{':
		return d.object(at)
	default:
		return nil, d.errorf(at, "unknown value marker %s", markerName(m))
	}
}

// intOf reads the body of an integer of type m.
func (d *decoder) intOf(m byte) (int64, error) {
	switch m {
	case 'i':
		b, err := d.mustByte("an int8")
		return int64(int8(b)), err
	case 'U':
		b, err := d.mustByte("a uint8")
		return int64(b), err
	case 'I':
		b, err := d.next(2, "an int16")
		if err != nil {
			return 0, err
		}
		return int64(int16(binary.BigEndian.Uint16(b))), nil
	case 'l':
		b, err := d.next(4, "an int32")
		if err != nil {
			return 0, err
		}
		return int64(int32(binary.BigEndian.Uint32(b))), nil
	default: // 'L'
		b, err := d.next(8, "an int64")
		if err != nil {
			return 0, err
		}
		return int64(binary.BigEndian.Uint64(b)), nil
	}
}

// length reads an integer value (marker and body) used as a length or count,
// and rejects negative values.
func (d *decoder) length(what string) (int64, error) {
	at := d.off
	m, err := d.mustByte(what + " length")
	if err != nil {
		return 0, err
	}
	switch m {
	case 'i', 'U', 'I', 'l', 'L':
	default:
		return 0, d.errorf(at, "%s length must be an integer, found marker %s", what, markerName(m))
	}
	n, err := d.intOf(m)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, d.errorf(at, "negative %s length %d", what, n)
	}
	return n, nil
}

// str reads a length-prefixed UTF-8 string.
func (d *decoder) str(what string) (string, error) {
	at := d.off
	n, err := d.length(what)
	if err != nil {
		return "", err
	}
	if err := d.checkLength(n, 1, at, what); err != nil {
		return "", err
	}
	var s string
	if d.r == nil || n <= chunkSize {
		b, err := d.next(int(n), what)
		if err != nil {
			return "", err
		}
		s = string(b)
	} else {
		buf := make([]byte, 0, min(n, maxPrealloc))
		for left := n; left > 0; {
			c := min(left, chunkSize)
			b, err := d.next(int(c), what)
			if err != nil {
				return "", err
			}
			buf = append(buf, b...)
			left -= c
		}
		s = string(buf)
	}
	if !utf8.ValidString(s) {
		return "", d.errorf(at, "%s is not valid UTF-8", what)
	}
	return s, nil
}

// header reads the optional "$type" and "#count" that may open a container.
// count is -1 when the container is not counted, and typ is 0 when its
// elements carry their own markers.
func (d *decoder) header(what string) (typ byte, count int64, err error) {
	m, err := d.peek(what)
	if err != nil {
		return 0, 0, err
	}
	if m == '$' {
		d.skip()
		typAt := d.off
		typ, err = d.mustByte(what + " element type")
		if err != nil {
			return 0, 0, err
		}
		switch typ {
		case 'Z', 'T', 'F', 'i', 'U', 'I', 'l', 'L', 'd', 'D', 'H', 'C', 'S', '[', '{':
		default:
			return 0, 0, d.errorf(typAt, "invalid %s element type %s", what, markerName(typ))
		}
		m, err = d.peek(what)
		if err != nil {
			return 0, 0, err
		}
		if m != '#' {
			return 0, 0, d.errorf(d.off, "%s with type $%c needs a count (#), found %s", what, typ, markerName(m))
		}
	}
	if m != '#' {
		return 0, -1, nil
	}
	d.skip()
	countAt := d.off
	count, err = d.length(what)
	if err != nil {
		return 0, 0, err
	}
	switch {
	case typ == 'Z' || typ == 'T' || typ == 'F':
		d.zeroWidth += count
		if count > MaxZeroWidthElements || d.zeroWidth > MaxZeroWidthElements {
			return 0, 0, d.errorf(countAt, "%s of $%c declares %d elements, more than the %d allowed", what, typ, count, MaxZeroWidthElements)
		}
	default:
		// Every element (object entry: key length) takes at least one byte.
		if err := d.checkLength(count, max(elemSize(typ), 1), countAt, what); err != nil {
			return 0, 0, err
		}
	}
	return typ, count, nil
}

// elemSize is the number of bytes of one element of the fixed type typ, or 0
// when it varies.
func elemSize(typ byte) int64 {
	switch typ {
	case 'i', 'U', 'C':
		return 1
	case 'I':
		return 2
	case 'l', 'd':
		return 4
	case 'L', 'D':
		return 8
	}
	return 0
}

func (d *decoder) peek(what string) (byte, error) {
	if d.r == nil {
		if d.off >= int64(len(d.buf)) {
			return 0, d.truncated(what)
		}
		return d.buf[d.off], nil
	}
	b, err := d.r.Peek(1)
	if err != nil {
		return 0, d.readErr(err, what)
	}
	return b[0], nil
}

// skip consumes the byte just peeked.
func (d *decoder) skip() {
	if d.r != nil {
		_, _ = d.r.Discard(1)
	}
	d.off++
}

func (d *decoder) enter(at int64) error {
	d.depth++
	if d.depth > MaxDepth {
		return d.errorf(at, "containers nested deeper than %d", MaxDepth)
	}
	return nil
}

// array decodes an array whose '[' was read at offset at.
func (d *decoder) array(at int64) (any, error) {
	if err := d.enter(at); err != nil {
		return nil, err
	}
	defer func() { d.depth-- }()
	typ, count, err := d.header("array")
	if err != nil {
		return nil, err
	}
	switch typ {
	case 'd', 'D', 'i', 'U', 'I', 'l', 'L':
		return d.typedArray(typ, count)
	}
	var out []any
	if count >= 0 {
		out = make([]any, 0, min(count, maxPrealloc))
		for i := int64(0); i < count; i++ {
			v, err := d.element(typ)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	out = []any{}
	for {
		m, err := d.mustByte("an array element or ]")
		if err != nil {
			return nil, err
		}
		switch m {
		case ']':
			return out, nil
		case 'N':
			continue
		}
		v, err := d.valueOf(m, d.off-1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

// element decodes one element of a counted container of fixed type typ
// (0 when each element carries its own marker).
func (d *decoder) element(typ byte) (any, error) {
	if typ == 0 {
		return d.value()
	}
	return d.valueOf(typ, d.off)
}

// typedArray decodes count elements of the fixed numeric type typ into a
// typed slice, reading in chunks so that memory grows only with input read.
func (d *decoder) typedArray(typ byte, count int64) (any, error) {
	size := elemSize(typ)
	pre := count // checked against the input size by header
	if d.remaining < 0 {
		pre = min(count, maxPrealloc)
	}
	var (
		f32 []float32
		f64 []float64
		i8  []int8
		u8  []uint8
		i64 []int64
	)
	switch typ {
	case 'd':
		f32 = make([]float32, 0, pre)
	case 'D':
		f64 = make([]float64, 0, pre)
	case 'i':
		i8 = make([]int8, 0, pre)
	case 'U':
		u8 = make([]uint8, 0, pre)
	default:
		i64 = make([]int64, 0, pre)
	}
	for left := count; left > 0; {
		n := min(left, chunkSize/size)
		b, err := d.next(int(n*size), "a typed array")
		if err != nil {
			return nil, err
		}
		left -= n
		switch typ {
		case 'd':
			for j := 0; j < len(b); j += 4 {
				f32 = append(f32, math.Float32frombits(binary.BigEndian.Uint32(b[j:])))
			}
		case 'D':
			for j := 0; j < len(b); j += 8 {
				f64 = append(f64, math.Float64frombits(binary.BigEndian.Uint64(b[j:])))
			}
		case 'i':
			for _, c := range b {
				i8 = append(i8, int8(c))
			}
		case 'U':
			u8 = append(u8, b...)
		case 'I':
			for j := 0; j < len(b); j += 2 {
				i64 = append(i64, int64(int16(binary.BigEndian.Uint16(b[j:]))))
			}
		case 'l':
			for j := 0; j < len(b); j += 4 {
				i64 = append(i64, int64(int32(binary.BigEndian.Uint32(b[j:]))))
			}
		case 'L':
			for j := 0; j < len(b); j += 8 {
				i64 = append(i64, int64(binary.BigEndian.Uint64(b[j:])))
			}
		}
	}
	switch typ {
	case 'd':
		return f32, nil
	case 'D':
		return f64, nil
	case 'i':
		return i8, nil
	case 'U':
		return u8, nil
	default:
		return i64, nil
	}
}

// object decodes an object whose '{' was read at offset at.
func (d *decoder) object(at int64) (any, error) {
	if err := d.enter(at); err != nil {
		return nil, err
	}
	defer func() { d.depth-- }()
	typ, count, err := d.header("object")
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, min(max(count, 0), 64))
	if count >= 0 {
		for i := int64(0); i < count; i++ {
			k, err := d.str("object key")
			if err != nil {
				return nil, err
			}
			v, err := d.element(typ)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	}
	for {
		m, err := d.peek("an object key or }")
		if err != nil {
			return nil, err
		}
		switch m {
		case '}':
			d.skip()
			return out, nil
		case 'N':
			d.skip()
			continue
		}
		k, err := d.str("object key")
		if err != nil {
			return nil, err
		}
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
}

// isJSONNumber reports whether s follows the JSON number grammar, which
// UBJSON requires of high-precision numbers.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - start
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// markerName renders a marker byte for error messages.
func markerName(m byte) string {
	if m >= 0x21 && m < 0x7f {
		return fmt.Sprintf("'%c'", m)
	}
	return fmt.Sprintf("0x%02x", m)
}
