package payloadlog

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendRecord appends rec to b as one NDJSON line (with its trailing
// newline) and returns the extended buffer.
//
// Float values are written in the shortest form that reads back as the same
// float32. JSON has no NaN or infinities: NaN (a missing value) is written as
// null, and ±Inf as ±1e999, which every JSON reader parses as (or overflows
// to) an infinity.
func appendRecord(b []byte, rec *Record) []byte {
	b = append(b, `{"time":`...)
	b = append(b, '"')
	b = rec.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = append(b, `,"request_id":`...)
	b = appendString(b, rec.RequestID)
	b = append(b, `,"deployment":`...)
	b = appendString(b, rec.Deployment)
	b = append(b, `,"revision":`...)
	b = appendString(b, rec.Revision)
	b = append(b, `,"model_version":`...)
	b = appendString(b, rec.ModelVersion)
	b = append(b, `,"latency_us":`...)
	b = strconv.AppendInt(b, rec.LatencyMicros, 10)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(rec.Status), 10)
	b = append(b, `,"inputs":[`...)
	in := rec.Inputs
	if in.Rows > 0 && in.Check() == nil {
		for i := 0; i < in.Rows; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendFloats(b, in.Values[i*in.Cols:(i+1)*in.Cols])
		}
	}
	b = append(b, `],"outputs":`...)
	b = appendFloats(b, rec.Outputs)
	b = append(b, `,"outputs_per_row":`...)
	b = strconv.AppendInt(b, int64(rec.OutputsPerRow), 10)
	b = append(b, `,"error":`...)
	b = appendString(b, rec.Error)
	b = append(b, "}\n"...)
	return b
}

// appendFloats appends vs as a JSON array.
func appendFloats(b []byte, vs []float32) []byte {
	b = append(b, '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFloat(b, v)
	}
	return append(b, ']')
}

// appendFloat appends one value: null for NaN, ±1e999 for ±Inf, otherwise
// the shortest decimal that reads back as v.
func appendFloat(b []byte, v float32) []byte {
	f := float64(v)
	switch {
	case math.IsNaN(f):
		return append(b, "null"...)
	case math.IsInf(f, 1):
		return append(b, "1e999"...)
	case math.IsInf(f, -1):
		return append(b, "-1e999"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 32)
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
