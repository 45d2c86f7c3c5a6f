package protocol

import (
	"bytes"
	"encoding/json"
	"math"
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
	} {
		t.Run(c.name, func(t *testing.T) {
			req, b, err := DecodeOIPTensors([]byte(c.body), 0)
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
