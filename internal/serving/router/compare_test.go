package router

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/protocol"
)

func TestAgreement(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	cases := []struct {
		name            string
		objective       string
		perRow          int
		primary, shadow []float32
		rows, agreed    int
		sum             float64
	}{
		{"logistic same side", "binary:logistic", 1, []float32{0.1, 0.7, 0.5, 0.49}, []float32{0.3, 0.9, 0.6, 0.2}, 4, 4, 0.2 + 0.2 + 0.1 + 0.29},
		{"logistic across 0.5", "binary:logistic", 1, []float32{0.49, 0.5, 0.9}, []float32{0.5, 0.49, 0.1}, 3, 0, 0.01 + 0.01 + 0.8},
		{"logitraw sign", "binary:logitraw", 1, []float32{-2, 0, 3, -0.1}, []float32{-0.5, 1, -3, 0}, 4, 2, 1.5 + 1 + 6 + 0.1},
		{"softmax class", "multi:softmax", 1, []float32{0, 2, 1}, []float32{0, 2, 2}, 3, 2, 1},
		{"softprob argmax", "multi:softprob", 3, []float32{0.2, 0.5, 0.3, 0.6, 0.2, 0.2}, []float32{0.1, 0.8, 0.1, 0.3, 0.4, 0.3}, 2, 1, 0.1 + 0.3 + 0.2 + 0.3 + 0.2 + 0.1},
		{"argmax ties take the first", "", 2, []float32{0.5, 0.5}, []float32{0.6, 0.4}, 1, 1, 0.2},
		{"regression within tolerance", "reg:squarederror", 1, []float32{1000, 0.0001, -5}, []float32{1000.9, 0.0009, -5.004}, 3, 3, 0.9 + 0.0008 + 0.004},
		{"regression beyond tolerance", "reg:squarederror", 1, []float32{1000, 0.5, -5}, []float32{1001.1, 0.5012, -5.006}, 3, 0, 1.1 + 0.0012 + 0.006},
		{"unknown objective is regression", "", 1, []float32{0.4, 0.6}, []float32{0.6, 0.6}, 2, 1, 0.2},
		{"reg:logistic is regression", "reg:logistic", 1, []float32{0.4}, []float32{0.45}, 1, 0, 0.05},
		{"NaN agrees with NaN only", "reg:squarederror", 1, []float32{nan, nan, 1}, []float32{nan, 1, nan}, 3, 1, 0},
		{"infinities", "reg:squarederror", 1, []float32{inf, inf}, []float32{inf, 1}, 2, 1, 0},
		{"length mismatch", "binary:logistic", 1, []float32{0.1, 0.2}, []float32{0.1}, 0, 0, 0},
		{"not whole rows", "multi:softprob", 3, []float32{1, 2, 3, 4}, []float32{1, 2, 3, 4}, 0, 0, 0},
		{"no outputs per row", "binary:logistic", 0, []float32{1}, []float32{1}, 0, 0, 0},
		{"empty", "binary:logistic", 1, nil, nil, 0, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows, agreed, sum := Agreement(c.objective, c.perRow, c.primary, c.shadow)
			if rows != c.rows || agreed != c.agreed {
				t.Errorf("rows/agreed = %d/%d, want %d/%d", rows, agreed, c.rows, c.agreed)
			}
			if math.Abs(sum-c.sum) > 1e-4 { // float32 inputs
				t.Errorf("sum of absolute differences = %v, want %v", sum, c.sum)
			}
		})
	}
}

func TestDecodeOIPOutputs(t *testing.T) {
	nan := float32(math.NaN())
	cases := []struct {
		name   string
		body   string
		values []float32
		perRow int
	}{
		{"mloop's own response", string(protocol.EncodeOIP("flights", "3", "r1", 1, []float32{0.25, 0.75}, 2)), []float32{0.25, 0.75}, 1},
		{"flat 2-D", `{"model_name":"m","outputs":[{"name":"p","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}]}`, []float32{1, 2, 3, 4, 5, 6}, 3},
		{"nested 2-D", `{"outputs":[{"name":"p","shape":[2,2],"datatype":"FP64","data":[[1.5,2],[3,-4e-2]]}]}`, []float32{1.5, 2, 3, -0.04}, 2},
		{"first output only", `{"outputs":[{"name":"label","shape":[1],"datatype":"INT64","data":[2]},{"name":"p","shape":[1,3],"datatype":"FP32","data":[0,0,1]}]}`, []float32{2}, 1},
		{"null and python literals", `{"outputs":[{"name":"p","shape":[5],"datatype":"FP32","data":[null,NaN,Infinity,-Infinity,1]}],"id":"NaN Infinity \"NaN\""}`,
			[]float32{nan, nan, float32(math.Inf(1)), float32(math.Inf(-1)), 1}, 1},
		{"bool", `{"outputs":[{"name":"p","shape":[2],"datatype":"BOOL","data":[true,false]}]}`, []float32{1, 0}, 1},
		{"shape [n,1]", `{"outputs":[{"name":"p","shape":[2,1],"datatype":"fp32","data":[[1],[2]]}]}`, []float32{1, 2}, 1},
		{"no rows", `{"outputs":[{"name":"p","shape":[0],"datatype":"FP32","data":[]}]}`, []float32{}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			values, perRow, err := DecodeOIPOutputs([]byte(c.body))
			if err != nil {
				t.Fatalf("DecodeOIPOutputs: %v", err)
			}
			if perRow != c.perRow || !slices.EqualFunc(values, c.values, sameFloat) {
				t.Errorf("got %v per row %d, want %v per row %d", values, perRow, c.values, c.perRow)
			}
		})
	}
}

// sameFloat is == with NaN equal to NaN.
func sameFloat(a, b float32) bool { return a == b || (a != a && b != b) }

func TestDecodeOIPOutputsErrors(t *testing.T) {
	cases := []struct{ name, body, msg string }{
		{"empty", ``, "not an Open Inference Protocol response"},
		{"not JSON", `<html>oops</html>`, "not an Open Inference Protocol response"},
		{"array", `[1,2]`, "not an Open Inference Protocol response"},
		{"trailing data", `{"outputs":[{"name":"p","shape":[1],"datatype":"FP32","data":[1]}]} {}`, "data after the JSON object"},
		{"no outputs", `{"error":"model failed"}`, `no "outputs"`},
		{"empty outputs", `{"outputs":[]}`, `no "outputs"`},
		{"outputs not a list", `{"outputs":{"name":"p"}}`, "not an Open Inference Protocol response"},
		{"scalar shape", `{"outputs":[{"name":"p","shape":[],"datatype":"FP32","data":[1]}]}`, `"p": shape [], want [rows] or [rows, outputs]`},
		{"rank 3", `{"outputs":[{"name":"p","shape":[1,1,1],"datatype":"FP32","data":[1]}]}`, "want [rows] or [rows, outputs]"},
		{"negative rows", `{"outputs":[{"name":"p","shape":[-1],"datatype":"FP32","data":[]}]}`, "want non-negative rows"},
		{"zero outputs", `{"outputs":[{"name":"p","shape":[3,0],"datatype":"FP32","data":[]}]}`, "at least one output per row"},
		{"huge shape", `{"outputs":[{"name":"p","shape":[100000000000,100000000000],"datatype":"FP32","data":[1]}]}`, "at most"},
		{"shape not numbers", `{"outputs":[{"name":"p","shape":["2"],"datatype":"FP32","data":[1,2]}]}`, "not an Open Inference Protocol response"},
		{"bytes", `{"outputs":[{"name":"p","shape":[1],"datatype":"BYTES","data":["cat"]}]}`, `datatype "BYTES", want a numeric datatype`},
		{"no datatype", `{"outputs":[{"name":"p","shape":[1],"data":[1]}]}`, `datatype ""`},
		{"no data", `{"outputs":[{"name":"p","shape":[1],"datatype":"FP32"}]}`, `no "data"`},
		{"data not a list", `{"outputs":[{"name":"p","shape":[1],"datatype":"FP32","data":1}]}`, "data is not an array"},
		{"too few values", `{"outputs":[{"name":"p","shape":[2,2],"datatype":"FP32","data":[1,2,3]}]}`, "3 values for shape [2 2], want 4"},
		{"too many values", `{"outputs":[{"name":"p","shape":[2],"datatype":"FP32","data":[1,2,3]}]}`, "3 values for shape [2], want 2"},
		{"strings in data", `{"outputs":[{"name":"p","shape":[1],"datatype":"FP32","data":["0.5"]}]}`, "want numbers"},
		{"bools in numeric data", `{"outputs":[{"name":"p","shape":[1],"datatype":"FP32","data":[true]}]}`, "want numbers"},
		{"objects in data", `{"outputs":[{"name":"p","shape":[1],"datatype":"FP32","data":[{"v":1}]}]}`, "want numbers"},
		{"bad literal", `{"outputs":[{"name":"p","shape":[1],"datatype":"FP32","data":[-NaN]}]}`, "not an Open Inference Protocol response"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			values, _, err := DecodeOIPOutputs([]byte(c.body))
			if err == nil {
				t.Fatalf("got %v, want an error containing %q", values, c.msg)
			}
			if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %v, want EINVALID containing %q", err, c.msg)
			}
		})
	}
}

func FuzzDecodeOIPOutputs(f *testing.F) {
	f.Add([]byte(protocol.EncodeOIP("m", "1", "id", 3, []float32{0.1, 0.2, 0.7, 1, 0, 0}, 2)))
	f.Add([]byte(`{"outputs":[{"name":"p","shape":[2,2],"datatype":"FP64","data":[[1.5,NaN],[Infinity,-Infinity]]}]}`))
	f.Add([]byte(`{"outputs":[{"name":"p","shape":[2],"datatype":"BOOL","data":[true,null]}]}`))
	f.Add([]byte(`{"outputs":[{"name":"\"NaN","shape":[1],"datatype":"INT64","data":[1e999]}]}`))
	f.Add([]byte(`{"outputs":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		values, perRow, err := DecodeOIPOutputs(body)
		if err != nil {
			if mloop.ErrorCode(err) != mloop.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		if perRow < 1 || len(values)%perRow != 0 {
			t.Fatalf("%d values with %d per row", len(values), perRow)
		}
		// What mloop writes back reads the same (±Inf become null, so NaN).
		again, perRow2, err := DecodeOIPOutputs(protocol.EncodeOIP("m", "", "", perRow, values, len(values)/perRow))
		if err != nil {
			t.Fatalf("re-encoded response: %v", err)
		}
		if perRow2 != perRow || !slices.EqualFunc(values, again, func(a, b float32) bool {
			if math.IsInf(float64(a), 0) {
				return b != b
			}
			return sameFloat(a, b)
		}) {
			t.Fatalf("re-encoded %v per row %d, read back %v per row %d", values, perRow, again, perRow2)
		}
	})
}
