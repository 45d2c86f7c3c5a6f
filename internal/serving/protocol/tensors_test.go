package protocol

import (
	"bytes"
	"encoding/json"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/mloop/mloop"
)

func TestDecodeOIPTensors(t *testing.T) {
	nan := float32(math.NaN())
	for _, c := range []struct {
		name, body string
		id         string
		rows, cols int
		values     []float32
		err        string // substring; "" for success
	}{
		{name: "matrix", body: `{"id":"a","inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,null,NaN]]}]}`,
			id: "a", rows: 2, cols: 3, values: []float32{1, 2, 3, 4, nan, nan}},
		{name: "one column", body: `{"inputs":[{"name":"x","shape":[3],"datatype":"INT64","data":[1,2,3]}]}`,
			rows: 3, cols: 1, values: []float32{1, 2, 3}},
		{name: "columns", body: `{"id":"b","inputs":[{"name":"p","shape":[2],"datatype":"FP64","data":[1,2]},{"name":"q","shape":[2,1],"datatype":"FP32","data":[3,4]}]}`,
			id: "b", rows: 2, cols: 2, values: []float32{1, 3, 2, 4}},
		{name: "no inputs", body: `{"id":"c"}`, id: "c", err: "no inputs"},
		{name: "ragged columns", body: `{"id":"d","inputs":[{"name":"p","shape":[2],"datatype":"FP64","data":[1,2]},{"name":"q","shape":[3],"datatype":"FP32","data":[3,4,5]}]}`,
			id: "d", err: "rows"},
		{name: "lying shape", body: `{"inputs":[{"name":"x","shape":[1,1000000000],"datatype":"FP32","data":[1]}]}`, err: "cannot hold"},
		{name: "not json", body: `{"inputs":`, err: ""},
		{name: "nested matrix", body: `{"inputs":[{"name":"x","shape":[2,2],"datatype":"INT32","data":[[1,2],[3,4]]}]}`,
			rows: 2, cols: 2, values: []float32{1, 2, 3, 4}},
		{name: "column [rows,1]", body: `{"inputs":[{"name":"x","shape":[2,1],"datatype":"FP32","data":[[1],[2]]}]}`,
			rows: 2, cols: 1, values: []float32{1, 2}},
		{name: "bad value names row and column", body: `{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,"a",6]}]}`,
			err: "input 'x' row 1 column 1: \"a\" is not a number"},
		{name: "too few values", body: `{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1, 2, 3]}]}`, err: "has 3 values; its shape [2,2] needs 4"},
		{name: "too many values", body: `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2,3]}]}`, err: "more values than its shape"},
		{name: "nesting against the shape", body: `{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2,3],[4]]}]}`, err: "holds 3 elements"},
		{name: "three dimensions", body: `{"inputs":[{"name":"x","shape":[1,1,1],"datatype":"FP32","data":[1]}]}`, err: "has shape [1,1,1]"},
		{name: "no rows", body: `{"inputs":[{"name":"x","shape":[0,3],"datatype":"FP32","data":[]}]}`, err: "no rows"},
		{name: "over the row limit", body: `{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1,2,3]}]}`, err: "the limit is 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			maxRows := 0
			if c.name == "over the row limit" {
				maxRows = 2
			}
			req, b, err := DecodeOIPTensors([]byte(c.body), maxRows)
			if c.name == "not json" {
				if mloop.ErrorCode(err) != mloop.EBADREQUEST {
					t.Fatalf("got %v, want a bad request", err)
				}
				return
			}
			if c.id != "" && (req == nil || req.ID != c.id) {
				t.Errorf("got request %+v, want id %q", req, c.id)
			}
			if c.err != "" {
				if err == nil || !contains(mloop.ErrorMessage(err), c.err) {
					t.Fatalf("got error %v, want one with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Rows != c.rows || b.Cols != c.cols || !sameValues(b.Values, c.values) {
				t.Errorf("got %d×%d %v, want %d×%d %v", b.Rows, b.Cols, b.Values, c.rows, c.cols, c.values)
			}
		})
	}
}

// TestDecodeOIPTensorsHugeShape sends a body of 8 MiB whose shape claims
// 4194304 columns but whose data holds one value: the decoder refuses it
// without allocating memory in proportion to the shape.
func TestDecodeOIPTensorsHugeShape(t *testing.T) {
	const cols = 4 << 20
	pad := strings.Repeat("x", 8<<20)
	body := []byte(`{"parameters":{"pad":"` + pad + `"},"inputs":[{"name":"x","shape":[1,` + "4194304" + `],"datatype":"FP32","data":[1]}]}`)
	if len(body) < 2*cols {
		t.Fatalf("the body (%d bytes) is too short to pass the old check", len(body))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := DecodeOIPTensors(body, 1)
	runtime.ReadMemStats(&after)
	// The body itself is 8 MiB; the decoder may allocate a little, never
	// per column (4194304 named columns took 216 MB).
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("decoding allocated %d bytes, want under 1 MiB", got)
	}
	if err == nil || !contains(mloop.ErrorMessage(err), "which its data cannot hold") {
		t.Fatalf("got %v, want a shape its data cannot hold", err)
	}
	// The same holds for a lying row count in one column.
	body = []byte(`{"parameters":{"pad":"` + pad + `"},"inputs":[{"name":"x","shape":[4194304],"datatype":"FP32","data":[1]}]}`)
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err = DecodeOIPTensors(body, 1<<30)
	runtime.ReadMemStats(&after)
	if err == nil || !contains(mloop.ErrorMessage(err), "which its data cannot hold") {
		t.Fatalf("got %v, want a shape its data cannot hold", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("decoding a lying row count allocated %d bytes, want under 1 MiB", got)
	}
}

func TestOIPRequestID(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"id":"a-1","inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, "a-1"},
		{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"id":"last"}`, "last"},
		{`{"parameters":{"id":"nested"},"id":"top"}`, "top"},
		{`{"id":"esc\u0041\n"}`, "escA\n"},
		{`{"inputs":[]}`, ""},
		{`{"id":5}`, ""},
		{`[{"id":"x"}]`, ""},
		{`{"inputs":[1,}],"id":"after a syntax error"}`, ""},
		{`{"id":"before a syntax error","inputs":[1,}]}`, "before a syntax error"},
		{``, ""},
	} {
		if got := OIPRequestID([]byte(c.body)); got != c.want {
			t.Errorf("OIPRequestID(%s) = %q, want %q", c.body, got, c.want)
		}
	}
}

func FuzzOIPRequestID(f *testing.F) {
	f.Add([]byte(`{"id":"a","inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,null,NaN]]}]}`))
	f.Add([]byte(`{"inputs":[],"id":"\u00e9"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		id := OIPRequestID(body)
		if len(id) > 3*len(body) {
			t.Fatalf("id of %d bytes from a body of %d", len(id), len(body))
		}
		// A body that DecodeOIPTensors reads has the same id.
		if req, _, err := DecodeOIPTensors(body, 100); err == nil && req.ID != id {
			t.Fatalf("OIPRequestID = %q, DecodeOIPTensors read id %q", id, req.ID)
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func FuzzDecodeOIPTensors(f *testing.F) {
	f.Add([]byte(`{"id":"a","inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,null,NaN]]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"p","shape":[2],"datatype":"FP64","data":[1,2]},{"name":"q","shape":[2,1],"datatype":"FP32","data":[3,4]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[0,0],"datatype":"FP32","data":[]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, b, err := DecodeOIPTensors(body, 100)
		if err != nil {
			if code := mloop.ErrorCode(err); code != mloop.EINVALID && code != mloop.EBADREQUEST {
				t.Fatalf("got error kind %q (%v), want invalid or bad_request", code, err)
			}
			return
		}
		if b.Cols < 1 || b.Rows < 1 || b.Rows > 100 || b.Rows*b.Cols != len(b.Values) || b.Cols > len(body) {
			t.Fatalf("got an inconsistent batch %d×%d with %d values", b.Rows, b.Cols, len(b.Values))
		}
		if !bytes.Contains(body, []byte("NaN")) && !bytes.Contains(body, []byte("Infinity")) && !json.Valid(body) {
			t.Fatalf("accepted a body that is not JSON: %q", body)
		}
	})
}

func TestAppendOIP(t *testing.T) {
	preds := []float32{0.25, float32(math.NaN()), 3, 4}
	want := "prefix" + string(EncodeOIP("m", "2", "id-1", 2, preds, 2))
	if got := string(AppendOIP([]byte("prefix"), "m", "2", "id-1", 2, preds, 2)); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
