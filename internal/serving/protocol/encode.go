package protocol

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// EncodeOIP writes an Open Inference Protocol inference response carrying
// one FP32 output named OutputName: shape [rows] when outputs is 1, else
// [rows, outputs], data row-major. id is echoed when not empty, and
// model_version is written when not empty. NaN and ±Inf become null.
// preds must hold rows×outputs values; anything else is a programming error
// and panics.
func EncodeOIP(modelName, modelVersion, id string, outputs int, preds []float32, rows int) []byte {
	b := make([]byte, 0, 128+len(modelName)+len(modelVersion)+len(id)+len(preds)*12)
	return AppendOIP(b, modelName, modelVersion, id, outputs, preds, rows)
}

// AppendOIP appends to dst the response EncodeOIP writes, so that a
// caller can reuse a buffer, and returns the extended buffer.
func AppendOIP(dst []byte, modelName, modelVersion, id string, outputs int, preds []float32, rows int) []byte {
	checkPreds(preds, rows, outputs)
	b := append(dst, `{"model_name":`...)
	b = appendString(b, modelName)
	if modelVersion != "" {
		b = append(b, `,"model_version":`...)
		b = appendString(b, modelVersion)
	}
	if id != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, id)
	}
	b = append(b, `,"outputs":[{"name":"`+OutputName+`","shape":[`...)
	b = strconv.AppendInt(b, int64(rows), 10)
	if outputs != 1 {
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(outputs), 10)
	}
	b = append(b, `],"datatype":"FP32","data":[`...)
	for i, p := range preds {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFloat(b, p)
	}
	return append(b, "]}]}"...)
}

// encodePredictions writes {"predictions": …} as KServe V1 and MLflow do.
func encodePredictions(preds []float32, rows, outputs int) []byte {
	checkPreds(preds, rows, outputs)
	b := make([]byte, 0, 20+len(preds)*12+rows*3)
	b = append(b, `{"predictions":[`...)
	for r := 0; r < rows; r++ {
		if r > 0 {
			b = append(b, ',')
		}
		if outputs == 1 {
			b = appendFloat(b, preds[r])
			continue
		}
		b = append(b, '[')
		for j, p := range preds[r*outputs : (r+1)*outputs] {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendFloat(b, p)
		}
		b = append(b, ']')
	}
	return append(b, "]}"...)
}

func checkPreds(preds []float32, rows, outputs int) {
	if rows < 0 || outputs < 1 || len(preds) != rows*outputs {
		panic(fmt.Sprintf("protocol: %d predictions for %d rows of %d outputs", len(preds), rows, outputs))
	}
}

// appendFloat writes v as a JSON number in the shortest form that reads
// back as the same float32, as encoding/json does; NaN and ±Inf, which JSON
// cannot hold, become null.
func appendFloat(b []byte, v float32) []byte {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 32)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendString writes s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
