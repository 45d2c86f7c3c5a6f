package ubjson

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/mloop/mloop"
)

// cat concatenates byte slices, strings and single bytes into one input.
func cat(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			b = append(b, p...)
		case byte:
			b = append(b, p)
		case int:
			b = append(b, byte(p))
		case []byte:
			b = append(b, p...)
		default:
			panic(fmt.Sprintf("cat: %T", p))
		}
	}
	return b
}

func be16(v int16) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
func be32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }
func f32(v float32) []byte {
	return binary.BigEndian.AppendUint32(nil, math.Float32bits(v))
}
func f64(v float64) []byte {
	return binary.BigEndian.AppendUint64(nil, math.Float64bits(v))
}

// plainReader hides Len so that Decode cannot learn the input size.
type plainReader struct{ r io.Reader }

func (p plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }

// decodeModes decodes data through Unmarshal, Decode on a sized reader, and
// Decode on a one-byte-at-a-time reader of unknown size, and fails unless
// all three agree. It returns the value and error of Unmarshal.
func decodeModes(t testing.TB, data []byte) (any, error) {
	t.Helper()
	v1, err1 := Unmarshal(data)
	v2, err2 := Decode(bytes.NewReader(data))
	v3, err3 := Decode(plainReader{&oneByteReader{data: data}})
	if (err1 == nil) != (err2 == nil) || (err1 == nil) != (err3 == nil) {
		t.Fatalf("modes disagree on %x: Unmarshal %v, Decode(sized) %v, Decode(stream) %v", data, err1, err2, err3)
	}
	if err1 != nil {
		for _, err := range []error{err1, err2, err3} {
			if got := mloop.ErrorCode(err); got != mloop.EINVALID {
				t.Fatalf("error kind of %v = %q, want %q", err, got, mloop.EINVALID)
			}
		}
		return nil, err1
	}
	e1, e2, e3 := encode(v1), encode(v2), encode(v3)
	if !bytes.Equal(e1, e2) || !bytes.Equal(e1, e3) {
		t.Fatalf("modes decode %x differently: %#v, %#v, %#v", data, v1, v2, v3)
	}
	return v1, nil
}

// oneByteReader returns at most one byte per Read, to exercise buffering.
type oneByteReader struct {
	data []byte
}

func (o *oneByteReader) Read(b []byte) (int, error) {
	if len(o.data) == 0 {
		return 0, io.EOF
	}
	if len(b) == 0 {
		return 0, nil
	}
	b[0] = o.data[0]
	o.data = o.data[1:]
	return 1, nil
}

func TestDecodeValues(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want any
	}{
		{"null", cat("Z"), nil},
		{"true", cat("T"), true},
		{"false", cat("F"), false},
		{"int8", cat("i", 0xfe), int64(-2)},
		{"uint8", cat("U", 0xfe), int64(254)},
		{"int16", cat("I", be16(-300)), int64(-300)},
		{"int32", cat("l", be32(-70000)), int64(-70000)},
		{"int64", cat("L", be64(math.MinInt64)), int64(math.MinInt64)},
		{"float32", cat("d", f32(1.5)), float64(1.5)},
		{"float64", cat("D", f64(-2.25e300)), -2.25e300},
		{"high precision", cat("H", "i", 22, "3.14159265358979323846"), "3.14159265358979323846"},
		{"high precision exponent", cat("H", "i", 7, "-1.5e+3"), "-1.5e+3"},
		{"char", cat("C", "a"), "a"},
		{"string", cat("S", "i", 5, "héll"), "héll"},
		{"string uint8 length", cat("S", "U", 3, "abc"), "abc"},
		{"string int16 length", cat("S", "I", be16(2), "ab"), "ab"},
		{"string int32 length", cat("S", "l", be32(1), "a"), "a"},
		{"string int64 length", cat("S", "L", be64(0)), ""},
		{"empty array", cat("[]"), []any{}},
		{"array", cat("[", "i", 1, "S", "i", 1, "x", "Z", "]"), []any{int64(1), "x", nil}},
		{"nested", cat("[[]", "{}", "]"), []any{[]any{}, map[string]any{}}},
		{"empty object", cat("{}"), map[string]any{}},
		{"object", cat("{", "i", 1, "a", "T", "U", 2, "bc", "[]", "}"), map[string]any{"a": true, "bc": []any{}}},
		{"duplicate key keeps last", cat("{", "i", 1, "a", "i", 1, "i", 1, "a", "i", 2, "}"), map[string]any{"a": int64(2)}},
		{"no-op before value", cat("NNT"), true},
		{"no-op after value", cat("TNN"), true},
		{"no-op in array", cat("[N", "i", 1, "NN", "i", 2, "N]"), []any{int64(1), int64(2)}},
		{"no-op in object", cat("{N", "i", 1, "k", "N", "F", "N}"), map[string]any{"k": false}},
		{"counted array", cat("[#", "i", 3, "i", 1, "S", "i", 1, "x", "Z"), []any{int64(1), "x", nil}},
		{"counted array skips no-ops", cat("[#", "i", 2, "N", "T", "N", "F"), []any{true, false}},
		{"counted empty array", cat("[#", "i", 0), []any{}},
		{"typed int8", cat("[$i#", "i", 3, 0xff, 0, 1), []int8{-1, 0, 1}},
		{"typed uint8", cat("[$U#", "i", 3, 0xff, 0, 1), []uint8{255, 0, 1}},
		{"typed int16", cat("[$I#", "i", 2, be16(-2), be16(300)), []int64{-2, 300}},
		{"typed int32", cat("[$l#", "U", 2, be32(-2), be32(1<<20)), []int64{-2, 1 << 20}},
		{"typed int64", cat("[$L#", "L", be64(1), be64(1<<40)), []int64{1 << 40}},
		{"typed float32", cat("[$d#", "i", 2, f32(0.25), f32(-1)), []float32{0.25, -1}},
		{"typed float64", cat("[$D#", "i", 1, f64(math.Pi)), []float64{math.Pi}},
		{"typed empty float32", cat("[$d#", "i", 0), []float32{}},
		{"typed string", cat("[$S#", "i", 2, "i", 1, "a", "i", 0), []any{"a", ""}},
		{"typed char", cat("[$C#", "i", 2, "ab"), []any{"a", "b"}},
		{"typed null", cat("[$Z#", "i", 2), []any{nil, nil}},
		{"typed true", cat("[$T#", "i", 2), []any{true, true}},
		{"typed array", cat("[$[#", "i", 2, "]", "$U#", "i", 1, 7), []any{[]any{}, []uint8{7}}},
		{"typed object elements", cat("[${#", "i", 1, "#", "i", 1, "i", 1, "k", "T"), []any{map[string]any{"k": true}}},
		{"counted object", cat("{#", "i", 2, "i", 1, "a", "T", "i", 1, "b", "N", "i", 5), map[string]any{"a": true, "b": int64(5)}},
		{"typed object", cat("{$d#", "i", 2, "i", 1, "a", f32(2), "i", 1, "b", f32(-0.5)), map[string]any{"a": 2.0, "b": -0.5}},
		{"typed object null", cat("{$Z#", "i", 1, "i", 1, "a"), map[string]any{"a": nil}},
		{"typed object strings", cat("{$S#", "i", 1, "i", 1, "a", "i", 2, "xy"), map[string]any{"a": "xy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeModes(t, tt.in)
			if err != nil {
				t.Fatalf("decode %x: %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decode %x = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	deep := func(n int) []byte { return append(bytes.Repeat([]byte("["), n), bytes.Repeat([]byte("]"), n)...) }
	tests := []struct {
		name string
		in   []byte
		want string // substring of the message
	}{
		{"empty", nil, "unexpected end of input reading a value marker at byte 0"},
		{"only no-ops", cat("NNN"), "unexpected end of input reading a value marker at byte 3"},
		{"unknown marker", cat("[", "i", 1, "x"), "unknown value marker 'x' at byte 3"},
		{"unknown control marker", cat(0x00), "unknown value marker 0x00 at byte 0"},
		{"truncated int16", cat("I", 1), "unexpected end of input reading an int16"},
		{"truncated int64", cat("L", 1, 2, 3), "unexpected end of input reading an int64"},
		{"truncated float32", cat("d", 1), "reading a float32"},
		{"truncated float64", cat("D"), "reading a float64"},
		{"truncated string", cat("S", "i", 5, "ab"), "string length 5 exceeds the 2 bytes left in the input at byte 1"},
		{"truncated string length", cat("S"), "reading string length at byte 1"},
		{"truncated array", cat("[", "i", 1), "reading an array element or ] at byte 3"},
		{"truncated object", cat("{", "i", 1, "a"), "reading a value marker at byte 4"},
		{"truncated object key", cat("{", "i", 3, "a"), "object key length 3 exceeds"},
		{"short counted array", cat("[#", "i", 2, "T"), "array length 2 exceeds the 1 bytes left in the input at byte 2"},
		{"truncated counted array", cat("[#", "i", 2, "S", "i", 1, "a"), "reading a value marker at byte 8"},
		{"truncated typed array", cat("[$d#", "i", 2, f32(1)), "array length 2 exceeds the 4 bytes left"},
		{"negative string length", cat("S", "i", 0xff), "negative string length -1 at byte 1"},
		{"negative count", cat("[#", "L", be64(-5)), "negative array length -5 at byte 2"},
		{"negative key length", cat("{", "I", be16(-1)), "negative object key length -1 at byte 1"},
		{"non-integer length", cat("S", "d", f32(1)), "string length must be an integer, found marker 'd' at byte 1"},
		{"huge count", cat("[$L#", "L", be64(math.MaxInt64)), "exceeds the 0 bytes left"},
		{"huge untyped count", cat("[#", "l", be32(math.MaxInt32), "T"), "exceeds the 1 bytes left"},
		{"type without count", cat("[$i", "i", 1), "array with type $i needs a count (#), found 'i' at byte 3"},
		{"bad element type", cat("[$N#", "i", 1), "invalid array element type 'N' at byte 2"},
		{"bad element type marker", cat("[$x#", "i", 1), "invalid array element type 'x'"},
		{"zero width bomb", cat("[$Z#", "l", be32(1<<30)), "more than the 1048576 allowed at byte 4"},
		{"nested zero width bomb", cat("[$[#", "i", 100, bytes.Repeat(cat("$T#", "l", be32(1<<19)), 100)), "more than the 1048576 allowed"},
		{"non-ascii char", cat("C", 0xc3), "char 0xc3 is not ASCII at byte 1"},
		{"invalid utf-8", cat("S", "i", 2, 0xc3, 0x28), "string is not valid UTF-8 at byte 1"},
		{"invalid utf-8 key", cat("{", "i", 1, 0xff, "T}"), "object key is not valid UTF-8"},
		{"bad high precision", cat("H", "i", 3, "1.x"), `high-precision number "1.x" is not a decimal number`},
		{"high precision inf", cat("H", "i", 3, "Inf"), "is not a decimal number"},
		{"high precision leading zero", cat("H", "i", 2, "01"), "is not a decimal number"},
		{"trailing data", cat("TF"), "unexpected trailing data (marker 'F') after the value at byte 1"},
		{"stray close", cat("]"), "unknown value marker ']' at byte 0"},
		{"object end in array", cat("[}"), "unknown value marker '}' at byte 1"},
		{"key without length marker", cat("{", "a", "T}"), "object key length must be an integer, found marker 'a' at byte 1"},
		{"too deep", deep(MaxDepth + 1), fmt.Sprintf("containers nested deeper than %d at byte %d", MaxDepth, MaxDepth)},
		{"too deep objects", bytes.Repeat(cat("{", "i", 1, "k"), MaxDepth+1), "containers nested deeper than 512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeModes(t, tt.in)
			if err == nil {
				t.Fatalf("decode %x: got no error, want %q", tt.in, tt.want)
			}
			if msg := mloop.ErrorMessage(err); !strings.Contains(msg, tt.want) || !strings.HasPrefix(msg, "ubjson: ") {
				t.Errorf("decode %x: error %q, want it to contain %q", tt.in, msg, tt.want)
			}
		})
	}
}

func TestDecodeStreamTruncation(t *testing.T) {
	// When the input size is unknown, declared lengths cannot be checked up
	// front; decoding must still fail cleanly at the end of the input.
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"typed array", cat("[$d#", "L", be64(math.MaxInt64/8), f32(1)), "unexpected end of input reading a typed array at byte 17"},
		{"string", cat("S", "L", be64(math.MaxInt64), "abc"), "unexpected end of input reading string at byte 13"},
		{"counted array", cat("[#", "L", be64(math.MaxInt64), "TTT"), "unexpected end of input reading a value marker at byte 14"},
		{"counted object", cat("{#", "L", be64(math.MaxInt64)), "unexpected end of input reading object key length at byte 11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Decode(plainReader{bytes.NewReader(tt.in)})
			runtime.ReadMemStats(&after)
			if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), tt.want) {
				t.Fatalf("Decode(%x) error %v, want %s containing %q", tt.in, err, mloop.EINVALID, tt.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
				t.Errorf("Decode(%x) allocated %d bytes, want at most 8 MiB for a hostile count", tt.in, alloc)
			}
		})
	}
}

func TestDecodeLarge(t *testing.T) {
	// Larger than the read chunk, so typed arrays and strings are assembled
	// from several reads in streaming mode.
	const n = 100_003
	floats := make([]float32, n)
	ints := make([]int64, n)
	for i := range floats {
		floats[i] = float32(i) * 0.5
		ints[i] = int64(i) * -7
	}
	long := strings.Repeat("xgboost ", 20_000)
	in := encode(map[string]any{"f": floats, "i": ints, "s": long})
	got, err := decodeModes(t, in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"f": floats, "i": ints, "s": long}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("large document did not round-trip")
	}
}

func TestDepthLimitAccepted(t *testing.T) {
	in := append(bytes.Repeat([]byte("["), MaxDepth), bytes.Repeat([]byte("]"), MaxDepth)...)
	v, err := decodeModes(t, in)
	if err != nil {
		t.Fatalf("decode %d nested arrays: %v", MaxDepth, err)
	}
	depth := 0
	for a, ok := v.([]any); ok; a, ok = a[0].([]any) {
		depth++
		if len(a) == 0 {
			break
		}
	}
	if depth != MaxDepth {
		t.Errorf("decoded depth %d, want %d", depth, MaxDepth)
	}
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		want := randomValue(rng, 0)
		data := encode(want)
		got, err := decodeModes(t, data)
		if err != nil {
			t.Fatalf("case %d: decode %x: %v", i, data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: round trip of %#v gave %#v", i, want, got)
		}
	}
}

func randomValue(rng *rand.Rand, depth int) any {
	k := rng.IntN(16)
	if depth > 4 && k >= 12 {
		k = rng.IntN(12)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return rng.IntN(2) == 0
	case 2:
		return int64(rng.IntN(256) - 128)
	case 3:
		return rng.Int64() >> rng.IntN(64)
	case 4:
		return -rng.Int64() >> rng.IntN(64)
	case 5:
		return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
	case 6:
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(' ' + rng.IntN(95))
		}
		return string(b) + "é"
	case 7:
		s := make([]float32, rng.IntN(20))
		for i := range s {
			s[i] = float32(rng.NormFloat64())
		}
		return s
	case 8:
		s := make([]float64, rng.IntN(20))
		for i := range s {
			s[i] = rng.NormFloat64()
		}
		return s
	case 9:
		s := make([]int64, rng.IntN(20))
		for i := range s {
			s[i] = rng.Int64() >> rng.IntN(64)
		}
		return s
	case 10:
		s := make([]uint8, rng.IntN(20))
		for i := range s {
			s[i] = uint8(rng.IntN(256))
		}
		return s
	case 11:
		s := make([]int8, rng.IntN(20))
		for i := range s {
			s[i] = int8(rng.IntN(256))
		}
		return s
	case 12, 13:
		a := make([]any, rng.IntN(5))
		for i := range a {
			a[i] = randomValue(rng, depth+1)
		}
		return a
	default:
		m := map[string]any{}
		for range rng.IntN(5) {
			m[fmt.Sprintf("k%d", rng.IntN(100))] = randomValue(rng, depth+1)
		}
		return m
	}
}

// encode is a small UBJSON encoder for tests. It writes integers in their
// smallest marker, float64 as D, typed slices as optimized arrays with a
// count of varying integer width, and object keys in sorted order, so equal
// values encode to equal bytes.
func encode(v any) []byte {
	var b []byte
	var enc func(v any)
	intBody := func(n int64) {
		switch {
		case n >= math.MinInt8 && n <= math.MaxInt8:
			b = append(b, 'i', byte(n))
		case n >= 0 && n <= math.MaxUint8:
			b = append(b, 'U', byte(n))
		case n >= math.MinInt16 && n <= math.MaxInt16:
			b = append(b, 'I')
			b = binary.BigEndian.AppendUint16(b, uint16(n))
		case n >= math.MinInt32 && n <= math.MaxInt32:
			b = append(b, 'l')
			b = binary.BigEndian.AppendUint32(b, uint32(n))
		default:
			b = append(b, 'L')
			b = binary.BigEndian.AppendUint64(b, uint64(n))
		}
	}
	str := func(s string) {
		intBody(int64(len(s)))
		b = append(b, s...)
	}
	typed := func(t byte, n int) {
		b = append(b, '[', '$', t, '#')
		intBody(int64(n))
	}
	enc = func(v any) {
		switch v := v.(type) {
		case nil:
			b = append(b, 'Z')
		case bool:
			if v {
				b = append(b, 'T')
			} else {
				b = append(b, 'F')
			}
		case int64:
			intBody(v)
		case float64:
			b = append(b, 'D')
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(v))
		case string:
			b = append(b, 'S')
			str(v)
		case []float32:
			typed('d', len(v))
			for _, x := range v {
				b = binary.BigEndian.AppendUint32(b, math.Float32bits(x))
			}
		case []float64:
			typed('D', len(v))
			for _, x := range v {
				b = binary.BigEndian.AppendUint64(b, math.Float64bits(x))
			}
		case []int64:
			typed('L', len(v))
			for _, x := range v {
				b = binary.BigEndian.AppendUint64(b, uint64(x))
			}
		case []uint8:
			typed('U', len(v))
			b = append(b, v...)
		case []int8:
			typed('i', len(v))
			for _, x := range v {
				b = append(b, byte(x))
			}
		case []any:
			b = append(b, '[')
			for _, x := range v {
				enc(x)
			}
			b = append(b, ']')
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			b = append(b, '{')
			for _, k := range keys {
				str(k)
				enc(v[k])
			}
			b = append(b, '}')
		default:
			panic(fmt.Sprintf("encode: unsupported %T", v))
		}
	}
	enc(v)
	return b
}

// TestXGBoostModel checks that a model saved by XGBoost 1.7.4 as UBJSON
// decodes to the same document XGBoost saved as JSON. testdata/model.ubj and
// model.json come from:
//
//	/usr/bin/python3 -c "import xgboost as xgb, numpy as np
//	rng=np.random.default_rng(0)
//	X=rng.normal(size=(200,4)).astype(np.float32); y=(X[:,0]+0.5*X[:,1]>0).astype(int)
//	d=xgb.DMatrix(X,label=y,feature_names=['f_a','f_b','f_c','f_d'])
//	b=xgb.train({'objective':'binary:logistic','max_depth':3,'eta':0.3,'base_score':0.5},d,num_boost_round=3)
//	b.save_model('model.ubj'); b.save_model('model.json')"
func TestXGBoostModel(t *testing.T) {
	ubj, err := os.ReadFile(filepath.Join("testdata", "model.ubj"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(filepath.Join("testdata", "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want any
	if err := json.Unmarshal(js, &want); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join("testdata", "model.ubj"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fromFile, err := Decode(f)
	if err != nil {
		t.Fatalf("Decode(model.ubj): %v", err)
	}
	got, err := decodeModes(t, ubj)
	if err != nil {
		t.Fatalf("decode model.ubj: %v", err)
	}
	if !bytes.Equal(encode(fromFile), encode(got)) {
		t.Fatalf("Decode(*os.File) and Unmarshal disagree")
	}
	if err := sameDocument("$", got, want); err != nil {
		t.Fatal(err)
	}
	// XGBoost writes tree arrays as typed arrays; make sure they arrive as
	// the typed slices the package documents.
	tree := got.(map[string]any)["learner"].(map[string]any)["gradient_booster"].(map[string]any)["model"].(map[string]any)["trees"].([]any)[0].(map[string]any)
	for key, want := range map[string]any{
		"base_weights":  []float32(nil),
		"split_indices": []int64(nil),
		"default_left":  []uint8(nil),
		"left_children": []int64(nil),
	} {
		if reflect.TypeOf(tree[key]) != reflect.TypeOf(want) {
			t.Errorf("tree[%q] is %T, want %T", key, tree[key], want)
		}
	}
}

// sameDocument compares a decoded UBJSON document with the JSON one,
// comparing numbers as float64 (or as float32 when the UBJSON side is a
// float32, since XGBoost prints float32 values in shortest float32 form).
func sameDocument(path string, got, want any) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: got %T, want object", path, got)
		}
		if len(g) != len(w) {
			return fmt.Errorf("%s: got %d keys, want %d", path, len(g), len(w))
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s: missing key %q", path, k)
			}
			if err := sameDocument(path+"."+k, gv, wv); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, f32s := asList(got)
		if g == nil {
			return fmt.Errorf("%s: got %T, want array", path, got)
		}
		if len(g) != len(w) {
			return fmt.Errorf("%s: got %d elements, want %d", path, len(g), len(w))
		}
		for i := range w {
			gv := g[i]
			if f32s {
				if wf, ok := w[i].(float64); ok && float32(wf) == float32(gv.(float64)) {
					continue
				}
			}
			if err := sameDocument(fmt.Sprintf("%s[%d]", path, i), gv, w[i]); err != nil {
				return err
			}
		}
		return nil
	case float64:
		var g float64
		switch x := got.(type) {
		case float64:
			g = x
		case int64:
			g = float64(x)
		default:
			return fmt.Errorf("%s: got %T, want number", path, got)
		}
		if g != w {
			return fmt.Errorf("%s: got %v, want %v", path, g, w)
		}
		return nil
	default:
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("%s: got %#v, want %#v", path, got, want)
		}
		return nil
	}
}

// asList converts any decoded array into []any of float64 for typed slices,
// and reports whether the source was []float32.
func asList(v any) ([]any, bool) {
	conv := func(n int, f func(int) float64) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	switch s := v.(type) {
	case []any:
		return s, false
	case []float32:
		return conv(len(s), func(i int) float64 { return float64(s[i]) }), true
	case []float64:
		return conv(len(s), func(i int) float64 { return s[i] }), false
	case []int64:
		return conv(len(s), func(i int) float64 { return float64(s[i]) }), false
	case []uint8:
		return conv(len(s), func(i int) float64 { return float64(s[i]) }), false
	case []int8:
		return conv(len(s), func(i int) float64 { return float64(s[i]) }), false
	}
	return nil, false
}

func FuzzDecode(f *testing.F) {
	f.Add(cat("[$d#", "i", 2, f32(0.25), f32(-1)))
	f.Add(cat("{#", "i", 2, "i", 1, "a", "T", "i", 1, "b", "N", "i", 5))
	f.Add(cat("[$[#", "i", 2, "]", "$U#", "i", 1, 7))
	f.Add(cat("{$Z#", "i", 1, "i", 1, "a"))
	f.Add(cat("[N", "H", "i", 3, "1e5", "C", "a", "I", be16(-3), "l", be32(9), "L", be64(1), "D", f64(1), "]"))
	f.Add(encode(map[string]any{"x": []any{[]int64{1}, []int8{-1}, []float64{2}, "s", nil, true}}))
	if b, err := os.ReadFile(filepath.Join("testdata", "model.ubj")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decodeModes(t, data)
		if err != nil {
			return
		}
		// A decoded value re-encodes to a canonical form that decodes back
		// to the same value.
		canon := encode(v)
		v2, err := Unmarshal(canon)
		if err != nil {
			t.Fatalf("re-decode of %x: %v", canon, err)
		}
		if !bytes.Equal(encode(v2), canon) {
			t.Fatalf("canonical form %x is not stable", canon)
		}
	})
}

func TestDecodeFileSize(t *testing.T) {
	// A regular file tells Decode its size, so an oversized declared length
	// is rejected before reading or allocating.
	path := filepath.Join(t.TempDir(), "bad.ubj")
	in := cat("[$D#", "L", be64(1<<40), f64(1))
	if err := os.WriteFile(path, in, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = Decode(f)
	want := "ubjson: array length 1099511627776 exceeds the 8 bytes left in the input at byte 4"
	if got := mloop.ErrorMessage(err); got != want || mloop.ErrorCode(err) != mloop.EINVALID {
		t.Errorf("Decode(truncated file) error %v, want %s %q", err, mloop.EINVALID, want)
	}
}

func TestDecodeReaderError(t *testing.T) {
	boom := errors.New("disk on fire")
	_, err := Decode(io.MultiReader(bytes.NewReader(cat("[", "T")), iotestErrReader{boom}))
	if !errors.Is(err, boom) {
		t.Fatalf("Decode error %v, want it to wrap %v", err, boom)
	}
	if mloop.ErrorCode(err) != mloop.EINTERNAL {
		t.Errorf("error kind %q, want %q for a failing reader", mloop.ErrorCode(err), mloop.EINTERNAL)
	}
}

type iotestErrReader struct{ err error }

func (e iotestErrReader) Read([]byte) (int, error) { return 0, e.err }

func BenchmarkDecodeModel(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "model.ubj"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeFloat32Array(b *testing.B) {
	s := make([]float32, 1<<20)
	for i := range s {
		s[i] = float32(i)
	}
	data := encode(map[string]any{"w": s})
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(plainReader{bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
	}
}
