package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mloop/mloop"
)

// regressionTolerance is the relative tolerance under which two regression
// predictions agree: |a−b| ≤ regressionTolerance×max(1, |a|, |b|).
const regressionTolerance = 1e-3

// Agreement compares a shadow's predictions with the primary's for the same
// rows (outputsPerRow values per row, row-major) and returns how many rows
// were compared, how many agreed, and the sum of the absolute differences
// over every output value. Rows agree when they lead to the same decision:
//
//   - more than one output per row (class probabilities or scores): the
//     same argmax (the first largest value);
//   - binary:logistic: both at least 0.5 or both below;
//   - binary:logitraw: the same sign (0 counts as positive);
//   - multi:softmax: the same class value;
//   - any other objective (regression, unknown, or "" for a process
//     model): |a−b| ≤ 1e-3×max(1, |a|, |b|).
//
// NaN agrees only with NaN, and a pair with a NaN or an infinity adds
// nothing to sumAbsDiff. Slices of different lengths, or not a whole
// number of rows, compare nothing: rows is 0.
func Agreement(objective string, outputsPerRow int, primary, shadow []float32) (rows, agreed int, sumAbsDiff float64) {
	if outputsPerRow < 1 || len(primary) != len(shadow) || len(primary)%outputsPerRow != 0 {
		return 0, 0, 0
	}
	rows = len(primary) / outputsPerRow
	for i, a := range primary {
		d := math.Abs(float64(a) - float64(shadow[i]))
		if !math.IsNaN(d) && !math.IsInf(d, 0) {
			sumAbsDiff += d
		}
	}
	if outputsPerRow > 1 {
		for r := range rows {
			lo, hi := r*outputsPerRow, (r+1)*outputsPerRow
			if argmax(primary[lo:hi]) == argmax(shadow[lo:hi]) {
				agreed++
			}
		}
		return rows, agreed, sumAbsDiff
	}
	same := sameRegression
	switch objective {
	case "binary:logistic":
		same = func(a, b float32) bool { return (a >= 0.5) == (b >= 0.5) }
	case "binary:logitraw":
		same = func(a, b float32) bool { return (a >= 0) == (b >= 0) }
	case "multi:softmax":
		same = func(a, b float32) bool { return a == b }
	}
	for i, a := range primary {
		b := shadow[i]
		aNaN, bNaN := a != a, b != b
		if aNaN || bNaN {
			if aNaN && bNaN {
				agreed++
			}
			continue
		}
		if same(a, b) {
			agreed++
		}
	}
	return rows, agreed, sumAbsDiff
}

// sameRegression reports whether two regression predictions agree within
// regressionTolerance.
func sameRegression(a, b float32) bool {
	if a == b { // also equal infinities
		return true
	}
	x, y := float64(a), float64(b)
	if math.IsInf(x, 0) || math.IsInf(y, 0) {
		return false
	}
	return math.Abs(x-y) <= regressionTolerance*max(1, math.Abs(x), math.Abs(y))
}

// argmax returns the index of the first largest value of v; NaN is never
// the largest, and a row of NaN gives -1.
func argmax(v []float32) int {
	best := -1
	for i, x := range v {
		if x != x {
			continue
		}
		if best < 0 || x > v[best] {
			best = i
		}
	}
	return best
}

// oipResponse is the part of an Open Inference Protocol inference response
// that DecodeOIPOutputs reads.
type oipResponse struct {
	Outputs []struct {
		Name     string          `json:"name"`
		Shape    []int64         `json:"shape"`
		Datatype string          `json:"datatype"`
		Data     json.RawMessage `json:"data"`
	} `json:"outputs"`
}

// maxOutputValues bounds the values of a decoded response, whatever its
// shape claims.
const maxOutputValues = 1 << 26

// DecodeOIPOutputs reads an Open Inference Protocol inference response
// body, {"outputs": [{"name", "shape", "datatype", "data"}, …]}, and
// returns its first output's values, row-major, with perRow values per row:
// 1 for shape [n], k for shape [n, k]. Data may be flat or nested; JSON
// null and the NaN literal that Python's json module writes are NaN, and
// Infinity/-Infinity are ±Inf. Numeric and BOOL datatypes are accepted. A
// body that is not such a response (malformed JSON, no outputs, a shape of
// another rank, a datatype such as BYTES, data that does not fill the
// shape) is EINVALID with a message that says what was wrong.
func DecodeOIPOutputs(body []byte) (values []float32, perRow int, err error) {
	var resp oipResponse
	dec := json.NewDecoder(bytes.NewReader(pythonLiterals(body)))
	if err := dec.Decode(&resp); err != nil {
		return nil, 0, mloop.Errorf(mloop.EINVALID, "inference response: not an Open Inference Protocol response: %v", err)
	}
	if dec.More() {
		return nil, 0, mloop.Errorf(mloop.EINVALID, "inference response: data after the JSON object")
	}
	if len(resp.Outputs) == 0 {
		return nil, 0, mloop.Errorf(mloop.EINVALID, `inference response: no "outputs"; an Open Inference Protocol response has {"outputs": [{"name", "shape", "datatype", "data"}]}`)
	}
	out := resp.Outputs[0]
	what := fmt.Sprintf("inference response output %q", out.Name)
	var n, k int64
	switch len(out.Shape) {
	case 1:
		n, k = out.Shape[0], 1
	case 2:
		n, k = out.Shape[0], out.Shape[1]
	default:
		return nil, 0, mloop.Errorf(mloop.EINVALID, "%s: shape %v, want [rows] or [rows, outputs]", what, out.Shape)
	}
	if n < 0 || k < 1 || n > maxOutputValues || k > maxOutputValues || n*k > maxOutputValues {
		return nil, 0, mloop.Errorf(mloop.EINVALID, "%s: shape %v, want non-negative rows, at least one output per row and at most %d values", what, out.Shape, maxOutputValues)
	}
	isBool := false
	switch dt := strings.ToUpper(out.Datatype); dt {
	case "BOOL":
		isBool = true
	case "FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64":
	default:
		return nil, 0, mloop.Errorf(mloop.EINVALID, "%s: datatype %q, want a numeric datatype (FP32, FP64, INT64, …) or BOOL", what, out.Datatype)
	}
	if len(out.Data) == 0 {
		return nil, 0, mloop.Errorf(mloop.EINVALID, `%s: no "data"`, what)
	}
	values = make([]float32, 0, min(n*k, int64(len(out.Data))/2+1)) // a value takes 2 bytes at least
	d := json.NewDecoder(bytes.NewReader(out.Data))
	d.UseNumber()
	var data any
	if err := d.Decode(&data); err != nil {
		return nil, 0, mloop.Errorf(mloop.EINVALID, "%s: data: %v", what, err)
	}
	if _, ok := data.([]any); !ok {
		return nil, 0, mloop.Errorf(mloop.EINVALID, "%s: data is not an array", what)
	}
	if values, err = flattenData(values, data, isBool, n*k, 0); err != nil {
		return nil, 0, mloop.Errorf(mloop.EINVALID, "%s: %v", what, err)
	}
	if int64(len(values)) != n*k {
		return nil, 0, mloop.Errorf(mloop.EINVALID, "%s: %d values for shape %v, want %d", what, len(values), out.Shape, n*k)
	}
	return values, int(k), nil
}

// flattenData appends the values of v (a number, null, a boolean or a
// nested array of them) to dst, stopping with an error beyond limit values.
func flattenData(dst []float32, v any, isBool bool, limit int64, depth int) ([]float32, error) {
	if int64(len(dst)) > limit {
		return dst, fmt.Errorf("more than the %d values the shape holds", limit)
	}
	switch x := v.(type) {
	case []any:
		if depth > 32 {
			return dst, errors.New("data nested too deeply")
		}
		var err error
		for _, e := range x {
			if dst, err = flattenData(dst, e, isBool, limit, depth+1); err != nil {
				return dst, err
			}
		}
		return dst, nil
	case nil:
		return append(dst, float32(math.NaN())), nil
	case bool:
		if !isBool {
			return dst, fmt.Errorf("value %v in numeric data, want numbers", x)
		}
		if x {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return dst, fmt.Errorf("value %s is not a number", x)
		}
		return append(dst, float32(f)), nil
	default:
		return dst, fmt.Errorf("value of type %T in data, want numbers", v)
	}
}

// pythonLiterals rewrites, outside JSON strings, the NaN, Infinity and
// -Infinity literals that Python's json module writes into JSON that
// encoding/json reads: null (NaN) and numbers out of float64's range
// (which parse as ±Inf). Body without them comes back unchanged.
func pythonLiterals(body []byte) []byte {
	if !bytes.Contains(body, []byte("NaN")) && !bytes.Contains(body, []byte("Infinity")) {
		return body
	}
	out := make([]byte, 0, len(body)+16)
	inString := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		if inString {
			out = append(out, c)
			if c == '\\' && i+1 < len(body) {
				i++
				out = append(out, body[i])
			} else if c == '"' {
				inString = false
			}
			continue
		}
		switch {
		case c == '"':
			inString = true
			out = append(out, c)
		case bytes.HasPrefix(body[i:], []byte("NaN")):
			out = append(out, "null"...)
			i += len("NaN") - 1
		case bytes.HasPrefix(body[i:], []byte("Infinity")):
			out = append(out, "1e999"...)
			i += len("Infinity") - 1
		case bytes.HasPrefix(body[i:], []byte("-Infinity")):
			out = append(out, "-1e999"...)
			i += len("-Infinity") - 1
		default:
			out = append(out, c)
		}
	}
	return out
}
