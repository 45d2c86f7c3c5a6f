package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mloop/mloop"
)

// maxDepth bounds how deeply arrays and objects may nest in a request body,
// so that a hostile body cannot exhaust the stack.
const maxDepth = 64

// kind is the JSON type of a scanned value.
type kind uint8

const (
	kNumber kind = iota // a number, or Infinity / -Infinity
	kNull               // null
	kNaN                // the NaN literal Python's json module writes
	kTrue               // true
	kFalse              // false
	kString             // a string
	kArray              // an array (not consumed by value)
	kObject             // an object (not consumed by value)
)

// scanner reads one JSON document from b without reflection. It accepts
// standard JSON plus the NaN, Infinity and -Infinity literals that Python's
// json module writes. Syntax errors are EBADREQUEST.
type scanner struct {
	b     []byte
	i     int
	depth int
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// peek skips white space and returns the next byte without consuming it,
// or 0 at the end of the input.
func (s *scanner) peek() byte {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// syntax returns the EBADREQUEST error for malformed JSON at the current
// position.
func (s *scanner) syntax(format string, args ...any) error {
	return mloop.Errorf(mloop.EBADREQUEST, "the body is not valid JSON: at byte %d: %s", s.i, fmt.Sprintf(format, args...))
}

// end checks that nothing but white space follows the document.
func (s *scanner) end() error {
	if s.peek() != 0 {
		return s.syntax("unexpected data after the JSON value")
	}
	return nil
}

// object consumes an object, calling fn for each member with the member's
// raw key (escapes not decoded; esc reports whether it has any). fn must
// consume the member's value.
func (s *scanner) object(fn func(key []byte, esc bool) error) error {
	if s.peek() != '{' {
		return s.syntax("expected an object")
	}
	if s.depth++; s.depth > maxDepth {
		return s.syntax("nested more than %d levels deep", maxDepth)
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		s.depth--
		return nil
	}
	for {
		key, esc, err := s.str()
		if err != nil {
			return err
		}
		if s.peek() != ':' {
			return s.syntax("expected ':' after an object key")
		}
		s.i++
		if err := fn(key, esc); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return nil
		default:
			return s.syntax("expected ',' or '}' in an object")
		}
	}
}

// array consumes an array, calling fn for each element with its index. fn
// must consume the element.
func (s *scanner) array(fn func(i int) error) error {
	if s.peek() != '[' {
		return s.syntax("expected an array")
	}
	if s.depth++; s.depth > maxDepth {
		return s.syntax("nested more than %d levels deep", maxDepth)
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		s.depth--
		return nil
	}
	for n := 0; ; n++ {
		if err := fn(n); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			s.depth--
			return nil
		default:
			return s.syntax("expected ',' or ']' in an array")
		}
	}
}

// str consumes a string and returns its raw contents between the quotes;
// esc reports whether they hold escape sequences (see unquote).
func (s *scanner) str() (raw []byte, esc bool, err error) {
	if s.peek() != '"' {
		return nil, false, s.syntax("expected a string")
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], esc, nil
		case c == '\\':
			esc = true
			j++
			if j >= len(s.b) {
				break
			}
			switch s.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s.b) {
					s.i = j
					return nil, false, s.syntax("unterminated string")
				}
				for _, h := range s.b[j+1 : j+5] {
					if !isHex(h) {
						s.i = j
						return nil, false, s.syntax("invalid \\u escape in a string")
					}
				}
				j += 4
			default:
				s.i = j
				return nil, false, s.syntax("invalid escape in a string")
			}
		case c < 0x20:
			s.i = j
			return nil, false, s.syntax("control character in a string")
		}
	}
	s.i = len(s.b)
	return nil, false, s.syntax("unterminated string")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unquote returns the text of a string that str returned.
func unquote(raw []byte, esc bool) string {
	if !esc {
		return string(raw)
	}
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	var out string
	if err := json.Unmarshal(quoted, &out); err != nil {
		// str validated every escape, so this cannot happen; keep the raw
		// text rather than losing it.
		return string(raw)
	}
	return out
}

// text returns a string value's text, reading escapes.
func (s *scanner) text() (string, error) {
	raw, esc, err := s.str()
	if err != nil {
		return "", err
	}
	return unquote(raw, esc), nil
}

// keyIs reports whether an object key equals name.
func keyIs(key []byte, esc bool, name string) bool {
	if esc {
		return unquote(key, true) == name
	}
	return string(key) == name
}

// skip consumes any value.
func (s *scanner) skip() error {
	switch s.peek() {
	case '{':
		return s.object(func([]byte, bool) error { return s.skip() })
	case '[':
		return s.array(func(int) error { return s.skip() })
	case '"':
		_, _, err := s.str()
		return err
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if s.i+1 < len(s.b) && s.b[s.i+1] == 'I' {
			break
		}
		end, err := s.numberEnd()
		s.i = end
		return err
	}
	_, _, _, err := s.value()
	return err
}

// span consumes any value and returns where it starts.
func (s *scanner) span() (int, error) {
	s.peek()
	start := s.i
	return start, s.skip()
}

// value consumes a scalar and returns its number (for kNumber), kind and
// starting offset. An array or object is reported (kArray, kObject) but not
// consumed.
func (s *scanner) value() (v float64, k kind, start int, err error) {
	c := s.peek()
	start = s.i
	rest := s.b[s.i:]
	switch c {
	case '{':
		return 0, kObject, start, nil
	case '[':
		return 0, kArray, start, nil
	case '"':
		_, _, err := s.str()
		return 0, kString, start, err
	case 'n':
		return 0, kNull, start, s.literal(rest, "null")
	case 't':
		return 1, kTrue, start, s.literal(rest, "true")
	case 'f':
		return 0, kFalse, start, s.literal(rest, "false")
	case 'N':
		return math.NaN(), kNaN, start, s.literal(rest, "NaN")
	case 'I':
		return math.Inf(1), kNumber, start, s.literal(rest, "Infinity")
	case '-':
		if len(rest) > 1 && rest[1] == 'I' {
			return math.Inf(-1), kNumber, start, s.literal(rest, "-Infinity")
		}
	case 0:
		return 0, kNull, start, s.syntax("unexpected end of the body")
	}
	v, err = s.number()
	return v, kNumber, start, err
}

func (s *scanner) literal(rest []byte, lit string) error {
	if !bytes.HasPrefix(rest, []byte(lit)) {
		return s.syntax("invalid literal")
	}
	s.i += len(lit)
	return nil
}

// number consumes a number in JSON's grammar and returns its value.
func (s *scanner) number() (float64, error) {
	end, err := s.numberEnd()
	if err != nil {
		return 0, err
	}
	tok := s.b[s.i:end]
	s.i = end
	if v, ok := fastFloat(tok); ok {
		return v, nil
	}
	v, err := strconv.ParseFloat(string(tok), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, s.syntax("invalid number")
	}
	return v, nil // out of range: ±Inf or 0, as ParseFloat rounds
}

// numberEnd checks the number at the scanner's position against JSON's
// grammar and returns where it ends, without consuming it.
func (s *scanner) numberEnd() (int, error) {
	b, j := s.b, s.i
	digits := func() bool {
		k := j
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		return j > k
	}
	if j < len(b) && b[j] == '-' {
		j++
	}
	if j < len(b) && b[j] == '0' {
		j++
	} else if !digits() {
		return 0, s.syntax("invalid value")
	}
	if j < len(b) && b[j] == '.' {
		j++
		if !digits() {
			s.i = j
			return 0, s.syntax("invalid number")
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if !digits() {
			s.i = j
			return 0, s.syntax("invalid number")
		}
	}
	return j, nil
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// fastFloat reads a valid JSON number of at most 15 significant digits and
// no exponent exactly (both the digits and the power of ten are exact in
// float64, so one division rounds correctly), which covers most feature
// values; ok is false for any other number.
func fastFloat(tok []byte) (v float64, ok bool) {
	neg := false
	if len(tok) > 0 && tok[0] == '-' {
		neg, tok = true, tok[1:]
	}
	var m uint64
	digits, frac, dot := 0, 0, false
	for _, c := range tok {
		switch {
		case '0' <= c && c <= '9':
			m = m*10 + uint64(c-'0')
			if digits++; digits > 15 {
				return 0, false
			}
			if dot {
				frac++
			}
		case c == '.':
			dot = true
		default: // an exponent
			return 0, false
		}
	}
	v = float64(m) / pow10[frac]
	if neg {
		v = -v
	}
	return v, true
}

// describe returns how an error message shows the value of kind k that
// starts at offset start: a short excerpt of its JSON text.
func (s *scanner) describe(k kind, start int) string {
	switch k {
	case kArray:
		return "a list"
	case kObject:
		return "an object"
	}
	end := s.i
	if end <= start || end > len(s.b) {
		end = start
	}
	tok := s.b[start:end]
	const max = 40
	if len(tok) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(tok[cut]) {
			cut--
		}
		return strings.ToValidUTF8(string(tok[:cut]), "\uFFFD") + "…"
	}
	return strings.ToValidUTF8(string(tok), "\uFFFD")
}
