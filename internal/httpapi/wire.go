package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/mloop/mloop"
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
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
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
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
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
// everything else from a JSON body of at most maxBytes. A malformed body or a
// field of the wrong type is an EINVALID error that names the field.
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
		return nil
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

// unmarshalFields decodes a JSON object into dst, a pointer to a struct, one
// top-level field at a time, so a value of the wrong type is reported with
// MLflow's message naming the field. Unknown fields are ignored, as MLflow's
// server ignores them.
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
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		value, ok := raw[name]
		if name == "" || name == "-" || !ok {
			continue
		}
		if err := json.Unmarshal(value, v.Field(i).Addr().Interface()); err != nil {
			shown := string(value)
			if len(shown) > 100 {
				shown = shown[:100] + "…"
			}
			return mloop.Errorf(mloop.EINVALID, "Invalid value %s for parameter '%s' supplied.", shown, name)
		}
	}
	return nil
}

// decodeQuery builds a JSON object from the query string, using the shape of
// dst to tell repeated fields (slices) from single ones, and decodes it.
func decodeQuery(r *http.Request, dst any) error {
	q := r.URL.Query()
	if len(q) == 0 {
		return nil
	}
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

// missing returns MLflow's error for a required parameter that is absent.
func missing(name string) error {
	return mloop.Errorf(mloop.EINVALID, "Missing value for required parameter '%s'. See the API docs for more information about request parameters.", name)
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

// jsonFloat is a double response field: finite values as JSON numbers, and
// NaN and ±Inf as the strings "NaN", "Infinity", "-Infinity" of protobuf's
// JSON mapping, which MLflow's clients parse (bare NaN is not valid JSON).
type jsonFloat float64

// MarshalJSON implements json.Marshaler.
func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Infinity"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}
