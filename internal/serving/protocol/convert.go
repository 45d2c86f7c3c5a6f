package protocol

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving"
)

// dtype is an Open Inference Protocol tensor datatype, or dtAny for the
// row formats that carry plain JSON values.
type dtype uint8

const (
	dtAny dtype = iota
	dtFP
	dtInt
	dtUint
	dtBool
	dtBytes
	dtUnknown
)

// datatype is a parsed OIP datatype name.
type datatype struct {
	kind dtype
	bits int // for dtInt and dtUint
}

// parseDatatype reads an OIP datatype name.
func parseDatatype(name []byte) datatype {
	switch string(name) {
	case "FP16", "FP32", "FP64":
		return datatype{kind: dtFP}
	case "INT8":
		return datatype{dtInt, 8}
	case "INT16":
		return datatype{dtInt, 16}
	case "INT32":
		return datatype{dtInt, 32}
	case "INT64":
		return datatype{dtInt, 64}
	case "UINT8":
		return datatype{dtUint, 8}
	case "UINT16":
		return datatype{dtUint, 16}
	case "UINT32":
		return datatype{dtUint, 32}
	case "UINT64":
		return datatype{dtUint, 64}
	case "BOOL":
		return datatype{kind: dtBool}
	case "BYTES":
		return datatype{kind: dtBytes}
	}
	return datatype{kind: dtUnknown}
}

// convert turns the value just scanned by s (of kind k, starting at
// start) into a feature value. It returns a problem
// description (for the caller to prefix with the value's place) when the
// value does not fit the datatype dt or the feature type ft.
//
// Missing values are null and NaN. Row formats (dtAny) take numbers,
// booleans (1 and 0) and ±Infinity; OIP tensors take what their datatype
// holds. A categorical feature takes non-negative integer codes only.
func convert(s *scanner, start int, v float64, k kind, dt datatype, ft serving.FeatureType) (float32, string) {
	tok := func() string { return s.describe(k, start) }
	switch k {
	case kNull, kNaN:
		return float32(math.NaN()), ""
	case kArray, kObject, kString:
		return 0, tok() + " is not a number"
	}
	switch dt.kind {
	case dtBool:
		if k != kTrue && k != kFalse {
			return 0, tok() + " is not a boolean (the datatype is BOOL)"
		}
	case dtFP:
		if k != kNumber {
			return 0, tok() + " is not a number"
		}
	case dtInt, dtUint:
		if k != kNumber {
			return 0, tok() + " is not a number"
		}
		lo, hi := intRange(dt)
		if v != math.Trunc(v) || v < lo || v > hi || math.IsInf(v, 0) {
			name := "INT"
			if dt.kind == dtUint {
				name = "UINT"
			}
			return 0, fmt.Sprintf("%s is not a %s%d", tok(), name, dt.bits)
		}
	}
	if ft == serving.Categorical && (v != math.Trunc(v) || v < 0 || v >= 1<<24) {
		return 0, tok() + " is not a category code (categorical features take integer codes from 0 to 16777215)"
	}
	f := float32(v)
	if math.IsInf(float64(f), 0) && !math.IsInf(v, 0) {
		return 0, tok() + " is out of the range of a 32-bit float"
	}
	return f, ""
}

// intRange returns the values an integer datatype holds.
func intRange(dt datatype) (lo, hi float64) {
	if dt.kind == dtUint {
		return 0, math.Ldexp(1, dt.bits) - 1
	}
	return -math.Ldexp(1, dt.bits-1), math.Ldexp(1, dt.bits-1) - 1
}

// featureList names a model's features for error messages:
// "5 features: a,b,c,d,e" (long lists are cut).
func featureList(features []serving.Feature) string {
	const show = 20
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(features)))
	if len(features) == 1 {
		b.WriteString(" feature: ")
	} else {
		b.WriteString(" features: ")
	}
	for i, f := range features {
		if i == show {
			fmt.Fprintf(&b, ",… (%d more)", len(features)-show)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(f.Name)
	}
	return b.String()
}

// invalid returns an EINVALID error.
func invalid(format string, args ...any) error {
	return mloop.Errorf(mloop.EINVALID, format, args...)
}

// DefaultMaxRows is the row limit of a batch when a decoder is given a
// maxRows of zero or less.
const DefaultMaxRows = 10000

// rowLimit returns the row limit for a decoder's maxRows argument.
func rowLimit(maxRows int) int {
	if maxRows <= 0 {
		return DefaultMaxRows
	}
	return maxRows
}

// noFeatures is the error for a model that declares no features, which no
// request can fit.
func noFeatures() error {
	return mloop.Errorf(mloop.EINVALID, "the model declares no features")
}

// tooMany returns the error for a batch over the row limit.
func tooMany(rows, maxRows int) error {
	return invalid("the request has %d rows; the limit is %d (send smaller batches)", rows, maxRows)
}

// quoteName shows a client-supplied name in an error message.
func quoteName(name string) string {
	if len(name) > 80 {
		name = name[:80] + "…"
	}
	name = strings.ToValidUTF8(name, "\uFFFD")
	if strings.ContainsAny(name, "'\n\r\t") {
		return strconv.Quote(name)
	}
	return "'" + name + "'"
}

// featureIndex returns the index of the feature named by key, or -1. hint is
// where to look first (features usually arrive in order).
func featureIndex(features []serving.Feature, key []byte, esc bool, hint int) int {
	if esc {
		name := unquote(key, true)
		for i := range features {
			if features[i].Name == name {
				return i
			}
		}
		return -1
	}
	if hint >= 0 && hint < len(features) && features[hint].Name == string(key) {
		return hint
	}
	for i := range features {
		if features[i].Name == string(key) {
			return i
		}
	}
	return -1
}

// missingFeatures lists the features that seen does not mark, or "" when
// there are none.
func missingFeatures(features []serving.Feature, seen []bool) string {
	var missing []string
	for i, ok := range seen {
		if !ok {
			missing = append(missing, quoteName(features[i].Name))
		}
	}
	if len(missing) == 0 {
		return ""
	}
	if len(missing) > 20 {
		missing = append(missing[:20], fmt.Sprintf("… (%d more)", len(missing)-20))
	}
	return strings.Join(missing, ", ")
}

// featureByName returns the index of the feature called name, or -1,
// looking at hint first.
func featureByName(features []serving.Feature, name string, hint int) int {
	if hint >= 0 && hint < len(features) && features[hint].Name == name {
		return hint
	}
	for i := range features {
		if features[i].Name == name {
			return i
		}
	}
	return -1
}
