package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/tracking"
)

// This file holds MLflow's JSON wire conventions, shared by every handler.
//
// Requests follow protobuf's JSON mapping as MLflow's server parses it: int64
// fields arrive as numbers or as strings, doubles as numbers or as the strings
// "NaN", "Infinity" and "-Infinity", booleans as true/false or "true"/"false".
// GET requests carry their fields in the query string; repeated fields repeat
// the key. Responses write int64 fields as JSON numbers, as MLflow does.

// Int64 is an int64 request field that accepts a JSON number or a string.
type Int64 struct {
	V   int64
	Set bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (i *Int64) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	s, err := unquote(b)
	if err != nil {
		return err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		// Accept integral floats such as 1.0 or 1e3, as protobuf's parser does.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<63 {
			return fmt.Errorf("%s is not an integer", b)
		}
		v = int64(f)
	}
	i.V, i.Set = v, true
	return nil
}

// unquote returns the text of a JSON scalar that protobuf's JSON mapping
// lets a client send as a number or as a string: the string's contents when
// b is a JSON string, and b itself otherwise.
func unquote(b []byte) (string, error) {
	if len(b) == 0 || b[0] != '"' {
		return string(b), nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", err
	}
	return s, nil
}

// Float64 is a double request field that accepts a JSON number or one of the
// strings "NaN", "Infinity", "-Infinity" (and a numeric string).
type Float64 struct {
	V   float64
	Set bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *Float64) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	s, err := unquote(b)
	if err != nil {
		return err
	}
	switch s {
	case "NaN", "nan":
		f.V, f.Set = math.NaN(), true
		return nil
	case "Infinity", "inf", "+Infinity":
		f.V, f.Set = math.Inf(1), true
		return nil
	case "-Infinity", "-inf":
		f.V, f.Set = math.Inf(-1), true
		return nil
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return fmt.Errorf("%s is not a number", b)
	}
	f.V, f.Set = v, true
	return nil
}

// Bool is a boolean request field that accepts true/false or "true"/"false".
type Bool struct {
	V   bool
	Set bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *Bool) UnmarshalJSON(b []byte) error {
	switch strings.Trim(string(b), `"`) {
	case "null":
		return nil
	case "true", "True", "1":
		v.V, v.Set = true, true
	case "false", "False", "0":
		v.V, v.Set = false, true
	default:
		return fmt.Errorf("%s is not a boolean", b)
	}
	return nil
}

// Str is a string request field that remembers whether it was present and
// rejects non-string JSON values.
type Str struct {
	V   string
	Set bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *Str) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || b[0] != '"' {
		return fmt.Errorf("%s is not a string", b)
	}
	if err := json.Unmarshal(b, &s.V); err != nil {
		return err
	}
	s.Set = true
	return nil
}

// decode reads the request's fields into dst, a pointer to a struct with json
// tags. GET requests (and bodiless DELETEs) are read from the query string;
// everything else from a JSON body of at most maxBytes. A malformed body is an
// EBADREQUEST error; a field of the wrong type or a required field that is
// missing is an EINVALID error that names the field (see unmarshalFields).
func decode(r *http.Request, maxBytes int64, dst any) error {
	if r.Method == http.MethodGet || (r.ContentLength <= 0 && len(r.URL.RawQuery) > 0 && r.Method == http.MethodDelete) {
		return decodeQuery(r, dst)
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return mloop.Errorf(mloop.ETOOLARGE, "Request body exceeds the limit of %d bytes.", maxBytes)
		}
		return mloop.Errorf(mloop.EBADREQUEST, "Could not read the request body: %v", err)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		if len(r.URL.RawQuery) > 0 {
			return decodeQuery(r, dst)
		}
		body = []byte("{}")
	}
	// Old clients double-encode the body as a JSON string; MLflow accepts that.
	if body[0] == '"' {
		var s string
		if err := json.Unmarshal(body, &s); err == nil {
			body = []byte(s)
		}
	}
	return unmarshalFields(body, dst)
}

// requiredTag marks a request field that must be present, not null and not
// the empty string, as MLflow's _assert_required: `mlflow:"required"`.
const requiredTag = "required"

// unmarshalFields decodes a JSON object into dst, a pointer to a struct, one
// top-level field at a time and in the struct's field order, which follows
// the schema order of MLflow's handler: the first field that is required
// (tagged `mlflow:"required"`) but missing, or present with a value of the
// wrong type, is reported with MLflow's message naming it. A required run_id
// may be given as run_uuid, its deprecated alias, as MLflow accepts. Unknown
// fields are ignored, as MLflow's server ignores them.
func unmarshalFields(body []byte, dst any) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
			return mloop.Errorf(mloop.EBADREQUEST, "Malformed JSON in request body: %v", err)
		}
		return mloop.Errorf(mloop.EINVALID, "The request body must be a JSON object.")
	}
	v := reflect.ValueOf(dst).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		value, present := raw[name]
		if f.Tag.Get("mlflow") == requiredTag {
			if name == "run_id" && isNone(value) {
				if alias, ok := raw["run_uuid"]; ok {
					value, present = alias, true
				}
			}
			if isNone(value) || string(value) == `""` {
				return missing(name)
			}
		}
		if !present {
			continue
		}
		if err := json.Unmarshal(value, v.Field(i).Addr().Interface()); err != nil {
			return invalidValue(name, value)
		}
	}
	return nil
}

// isNone reports whether a JSON field is absent or null: None, for MLflow.
func isNone(value json.RawMessage) bool {
	return len(value) == 0 || string(value) == "null"
}

// decodeQuery builds a JSON object from the query string, using the shape of
// dst to tell repeated fields (slices) from single ones, and decodes it.
func decodeQuery(r *http.Request, dst any) error {
	q := r.URL.Query()
	repeated := map[string]bool{}
	t := reflect.TypeOf(dst).Elem()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && f.Type.Kind() == reflect.Slice {
			repeated[name] = true
		}
	}
	m := make(map[string]any, len(q))
	for k, vs := range q {
		k = strings.TrimSuffix(k, "[]")
		if repeated[k] {
			m[k] = vs
		} else if len(vs) > 0 {
			m[k] = vs[0]
		}
	}
	body, _ := json.Marshal(m)
	return unmarshalFields(body, dst)
}

// listJSON is a repeated request field that also keeps the JSON it was
// decoded from: some of MLflow's checks reject a whole list, printing it,
// when one of its items lacks a field.
type listJSON[T any] struct {
	Items []T
	Raw   json.RawMessage
}

// UnmarshalJSON implements json.Unmarshaler.
func (l *listJSON[T]) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if err := json.Unmarshal(b, &l.Items); err != nil {
		return err
	}
	l.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// missing returns MLflow's error for a required parameter that is absent.
func missing(name string) error {
	return mloop.Errorf(mloop.EINVALID, "Missing value for required parameter '%s'. See the API docs for more information about request parameters.", name)
}

// invalidValue returns MLflow's error for a request field whose JSON value
// has the wrong type or fails one of the handler's checks. MLflow prints the
// value as Python's str() of the parsed JSON (see pythonStr) and names its
// Python type.
func invalidValue(name string, value json.RawMessage) error {
	text, typ := pythonStr(value)
	return mloop.Errorf(mloop.EINVALID, "Invalid value %s for parameter '%s' supplied. Hint: Value was of type '%s'. See the API docs for more information about request parameters.", text, name, typ)
}

// ok writes v as a 200 JSON response; use it for successful MLflow replies
// (an empty reply is {}).
func ok(w http.ResponseWriter, v any) error {
	if v == nil {
		v = struct{}{}
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// apply decodes the request's fields into req, a pointer to a struct, runs
// act and answers with MLflow's empty reply {}: the whole of every handler
// whose call changes state and returns nothing. act sees the request's
// context.
func (s *Server) apply(w http.ResponseWriter, r *http.Request, req any, act func(ctx context.Context) error) error {
	if err := decode(r, s.MaxBodyBytes, req); err != nil {
		return err
	}
	if err := act(r.Context()); err != nil {
		return err
	}
	return ok(w, nil)
}

// jsonFloat is a double response field: finite values as JSON numbers, and
// NaN and ±Inf as the strings "NaN", "Infinity", "-Infinity" of protobuf's
// JSON mapping, which MLflow's clients parse (bare NaN is not valid JSON).
type jsonFloat float64

// MarshalJSON implements json.Marshaler.
func (f jsonFloat) MarshalJSON() ([]byte, error) {
	return appendJSONFloat(nil, float64(f)), nil
}

// maxShownValue bounds, in bytes, how much of a rejected value an error
// message repeats; longer values end with "…".
const maxShownValue = 1000

// errValueTooLong stops formatPython once its limit is passed.
var errValueTooLong = errors.New("value too long to show")

// pythonStr returns a JSON value as MLflow's validation messages print it:
// Python's str() of what json.loads returns, so a string appears without
// quotes, 9.0 stays 9.0, true is True, null is None, and lists and objects
// are Python reprs with single-quoted strings, in the order they were sent
// ([{'key': 'mae', 'value': 2.5}]). typ is the Python type's name (str, int,
// float, bool, NoneType, list, dict). The text is cut at maxShownValue
// bytes. A value that is not valid JSON is shown as it is, typed str.
func pythonStr(value json.RawMessage) (text, typ string) {
	return formatPython(value, maxShownValue)
}

// formatPython is pythonStr with the text cut at limit bytes.
func formatPython(value json.RawMessage, limit int) (text, typ string) {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return truncateText(string(value), limit), "str"
	}
	if s, ok := tok.(string); ok {
		return truncateText(s, limit), "str" // str() of a str is the str itself
	}
	var b strings.Builder
	typ, err = writePythonRepr(&b, dec, tok, limit)
	if err != nil && !errors.Is(err, errValueTooLong) {
		return truncateText(string(value), limit), "str"
	}
	return truncateText(b.String(), limit), typ
}

// truncateText cuts s to limit bytes, on a rune boundary, marking the cut.
func truncateText(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// writePythonRepr writes Python's repr() of the JSON value that starts with
// tok, reading the rest of it from dec, and returns its Python type name.
// It stops with errValueTooLong once more than limit bytes are written.
func writePythonRepr(b *strings.Builder, dec *json.Decoder, tok json.Token, limit int) (string, error) {
	if b.Len() > limit {
		return "", errValueTooLong
	}
	switch t := tok.(type) {
	case nil:
		b.WriteString("None")
		return "NoneType", nil
	case bool:
		b.WriteString(map[bool]string{true: "True", false: "False"}[t])
		return "bool", nil
	case string:
		writePythonString(b, t)
		return "str", nil
	case json.Number:
		s := string(t)
		if strings.ContainsAny(s, ".eE") {
			b.WriteString(pythonFloat(s))
			return "float", nil
		}
		if s == "-0" {
			s = "0"
		}
		b.WriteString(s)
		return "int", nil
	case json.Delim:
		typ, end, sep := "list", byte(']'), ""
		if t == '{' {
			typ, end = "dict", '}'
		}
		b.WriteByte(byte(t))
		for dec.More() {
			b.WriteString(sep)
			sep = ", "
			item, err := dec.Token()
			if err != nil {
				return "", err
			}
			if typ == "dict" {
				key, _ := item.(string)
				writePythonString(b, key)
				b.WriteString(": ")
				if item, err = dec.Token(); err != nil {
					return "", err
				}
			}
			if _, err := writePythonRepr(b, dec, item, limit); err != nil {
				return typ, err
			}
		}
		if _, err := dec.Token(); err != nil {
			return "", err
		}
		b.WriteByte(end)
		return typ, nil
	}
	return "", fmt.Errorf("unexpected JSON token %v", tok)
}

// writePythonString writes Python's repr() of s: single quotes unless s
// holds a single quote and no double quote, with backslash escapes for the
// quote, backslashes and characters that are not printable.
func writePythonString(b *strings.Builder, s string) {
	quote := '\''
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		quote = '"'
	}
	b.WriteRune(quote)
	for _, r := range s {
		switch {
		case r == '\\' || r == quote:
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			fmt.Fprintf(b, `\U%08x`, r)
		}
	}
	b.WriteRune(quote)
}

// pythonFloat returns Python's repr() of the JSON number s parsed as a
// float: the shortest digits that round-trip, in positional notation with
// at least one decimal (9.0, 0.0001, 1e15 as 1000000000000000.0) when the
// decimal exponent is in [-4, 16), and otherwise in exponent notation with
// at least two exponent digits (1e-05, 1.5e+16). Overflow is inf.
func pythonFloat(s string) string {
	f, _ := strconv.ParseFloat(s, 64)
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // such as -1.5e-05
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mantissa, exponent, _ := strings.Cut(e, "e")
	digits := strings.Replace(mantissa, ".", "", 1)
	exp, _ := strconv.Atoi(exponent)
	point := exp + 1 // digits are 0.<digits> × 10^point
	switch {
	case point < -3 || point > 16:
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		expSign := "+"
		if exp < 0 {
			expSign, exp = "-", -exp
		}
		return fmt.Sprintf("%s%se%s%02d", sign, m, expSign, exp)
	case point <= 0:
		return sign + "0." + strings.Repeat("0", -point) + digits
	case point >= len(digits):
		return sign + digits + strings.Repeat("0", point-len(digits)) + ".0"
	default:
		return sign + digits[:point] + "." + digits[point:]
	}
}

// writeMetricList writes {"metrics":[…],"next_page_token":"…"} straight to w:
// metric histories run to millions of points, and writing them by hand,
// without a reflection-driven encoder or an intermediate slice, is what lets
// get-history stream them fast. The output is what encoding/json writes for
// []metricOutJSON with omitempty on metrics and next_page_token.
func writeMetricList(w http.ResponseWriter, ms []tracking.Metric, withRunID bool, next string) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	b := make([]byte, 0, 256)
	b = append(b, '{')
	if len(ms) > 0 {
		b = append(b, `"metrics":[`...)
		var lastKey, quotedKey, lastRun, quotedRun []byte
		for i, m := range ms {
			if i > 0 {
				b = append(b, ',')
			}
			if quotedKey == nil || string(lastKey) != m.Key {
				lastKey, quotedKey = []byte(m.Key), appendJSONString(nil, m.Key)
			}
			b = append(b, `{"key":`...)
			b = append(b, quotedKey...)
			b = append(b, `,"value":`...)
			b = appendJSONFloat(b, m.Value)
			b = append(b, `,"timestamp":`...)
			b = strconv.AppendInt(b, m.Timestamp, 10)
			b = append(b, `,"step":`...)
			b = strconv.AppendInt(b, m.Step, 10)
			if withRunID && m.RunID != "" {
				if quotedRun == nil || string(lastRun) != m.RunID {
					lastRun, quotedRun = []byte(m.RunID), appendJSONString(nil, m.RunID)
				}
				b = append(b, `,"run_id":`...)
				b = append(b, quotedRun...)
			}
			b = append(b, '}')
			if len(b) > 32<<10 {
				if _, err := bw.Write(b); err != nil {
					return nil // the client went away; nothing more to say to it
				}
				b = b[:0]
			}
		}
		b = append(b, ']')
	}
	if next != "" {
		if len(ms) > 0 {
			b = append(b, ',')
		}
		b = append(b, `"next_page_token":`...)
		b = appendJSONString(b, next)
	}
	b = append(b, "}\n"...)
	if _, err := bw.Write(b); err != nil {
		return nil
	}
	_ = bw.Flush()
	return nil
}

// appendJSONString appends s as a JSON string, escaped as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// appendJSONFloat appends v as jsonFloat writes it.
func appendJSONFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(v, -1):
		return append(b, `"-Infinity"`...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
