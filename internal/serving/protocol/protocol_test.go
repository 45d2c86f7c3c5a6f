package protocol

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving"
)

var testFeatures = []serving.Feature{
	{Name: "a", Type: serving.Numeric},
	{Name: "b", Type: serving.Numeric},
	{Name: "c", Type: serving.Categorical},
}

var nan = float32(math.NaN())

// sameValues compares batches treating NaN as equal to NaN.
func sameValues(got, want []float32) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g != w && !(g != g && w != w) {
			return false
		}
	}
	return true
}

type decodeCase struct {
	name    string
	body    string
	maxRows int
	rows    int
	want    []float32
	code    string // error kind, "" for success
	msg     string // substring of the error message
}

func checkDecode(t *testing.T, tc decodeCase, b serving.Batch, err error) {
	t.Helper()
	if tc.code != "" {
		if err == nil {
			t.Fatalf("got batch %+v, want a %s error containing %q", b, tc.code, tc.msg)
		}
		if got := mloop.ErrorCode(err); got != tc.code {
			t.Errorf("got error kind %q (%v), want %q", got, err, tc.code)
		}
		if msg := mloop.ErrorMessage(err); !strings.Contains(msg, tc.msg) {
			t.Errorf("got message %q, want it to contain %q", msg, tc.msg)
		}
		return
	}
	if err != nil {
		t.Fatalf("got error %v, want a batch", err)
	}
	if b.Rows != tc.rows || b.Cols != len(testFeatures) || !sameValues(b.Values, tc.want) {
		t.Fatalf("got batch %d×%d %v, want %d×%d %v", b.Rows, b.Cols, b.Values, tc.rows, len(testFeatures), tc.want)
	}
}

func TestDecodeOIP(t *testing.T) {
	inf := float32(math.Inf(1))
	cases := []decodeCase{
		{name: "matrix flat", body: `{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}]}`,
			rows: 2, want: []float32{1, 2, 3, 4, 5, 6}},
		{name: "matrix nested", body: `{"inputs":[{"name":"input-0","shape":[2,3],"datatype":"FP64","data":[[1.5,2,3],[4,-5e-1,6]]}]}`,
			rows: 2, want: []float32{1.5, 2, 3, 4, -0.5, 6}},
		{name: "data before shape", body: `{"inputs":[{"data":[[1,2,3]],"datatype":"FP32","shape":[1,3],"name":"x","parameters":{"content_type":"np"}}]}`,
			rows: 1, want: []float32{1, 2, 3}},
		{name: "null NaN Infinity", body: `{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[null,NaN,1,Infinity,-Infinity,2]}]}`,
			rows: 2, want: []float32{nan, nan, 1, inf, -inf, 2}},
		{name: "per feature any order", body: `{"inputs":[
			{"name":"c","shape":[2],"datatype":"INT64","data":[3,null]},
			{"name":"a","shape":[2,1],"datatype":"FP32","data":[[1],[2]]},
			{"name":"b","shape":[2],"datatype":"BOOL","data":[true,false]}]}`,
			rows: 2, want: []float32{1, 1, 3, 2, 0, nan}},
		{name: "int datatypes", body: `{"inputs":[{"name":"x","shape":[1,3],"datatype":"UINT8","data":[0,255,7]}]}`,
			rows: 1, want: []float32{0, 255, 7}},
		{name: "escaped keys and names", body: `{"inp\u0075ts":[{"name":"\u0061","shape":[1],"datatype":"FP32","data":[1]},{"name":"b","shape":[1],"datatype":"FP32","data":[2]},{"name":"c","shape":[1],"datatype":"FP32","data":[0]}]}`,
			rows: 1, want: []float32{1, 2, 0}},
		{name: "bad JSON", body: `{"inputs":[`, code: mloop.EBADREQUEST, msg: "not valid JSON"},
		{name: "trailing data", body: `{"inputs":[]} x`, code: mloop.EBADREQUEST, msg: "after the JSON value"},
		{name: "bad literal", body: `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[nan,1,2]}]}`, code: mloop.EBADREQUEST, msg: "invalid"},
		{name: "not an object", body: `[1,2]`, code: mloop.EINVALID, msg: "JSON object"},
		{name: "no inputs", body: `{"id":"1"}`, code: mloop.EINVALID, msg: "no inputs"},
		{name: "wrong shape", body: `{"inputs":[{"name":"x","shape":[3,4],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12]}]}`,
			code: mloop.EINVALID, msg: "input 'x' has shape [3,4]; the model takes 3 features: a,b,c"},
		{name: "1-D single input", body: `{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1,2,3]}]}`,
			code: mloop.EINVALID, msg: "input 'x' has shape [3]"},
		{name: "too few values", body: `{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5]}]}`,
			code: mloop.EINVALID, msg: "input 'x' has 5 values; its shape [2,3] needs 6"},
		{name: "too many values", body: `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3,4]}]}`,
			code: mloop.EINVALID, msg: "more values than its shape [1,3] holds"},
		{name: "missing feature", body: `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]},{"name":"c","shape":[1],"datatype":"FP32","data":[1]}]}`,
			code: mloop.EINVALID, msg: "no input for feature 'b'"},
		{name: "unknown input", body: `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]},{"name":"zz","shape":[1],"datatype":"FP32","data":[1]}]}`,
			code: mloop.EINVALID, msg: "input 'zz' is not a feature"},
		{name: "duplicate input", body: `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]},{"name":"a","shape":[1],"datatype":"FP32","data":[1]}]}`,
			code: mloop.EINVALID, msg: "input 'a' is sent twice"},
		{name: "row counts differ", body: `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]},{"name":"b","shape":[2],"datatype":"FP32","data":[1,2]},{"name":"c","shape":[1],"datatype":"FP32","data":[1]}]}`,
			code: mloop.EINVALID, msg: "input 'b' has 2 rows, but input 'a' has 1"},
		{name: "per-feature 2-D", body: `{"inputs":[{"name":"a","shape":[1,2],"datatype":"FP32","data":[1,2]},{"name":"b","shape":[1],"datatype":"FP32","data":[1]}]}`,
			code: mloop.EINVALID, msg: "input 'a' has shape [1,2]; a per-feature input"},
		{name: "string value", body: `{"inputs":[{"name":"x","shape":[4,3],"datatype":"FP32","data":[1,2,3,1,2,3,1,2,3,1,"abc",3]}]}`,
			code: mloop.EINVALID, msg: `input 'x' row 3 (feature 'b'): "abc" is not a number`},
		{name: "per-feature string", body: `{"inputs":[{"name":"b","shape":[2],"datatype":"FP32","data":[1,"abc"]},{"name":"a","shape":[2],"datatype":"FP32","data":[1,2]},{"name":"c","shape":[2],"datatype":"FP32","data":[1,2]}]}`,
			code: mloop.EINVALID, msg: `input 'b' row 1: "abc" is not a number`},
		{name: "object value", body: `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,{"v":2},3]}]}`,
			code: mloop.EINVALID, msg: "an object is not a number"},
		{name: "categorical fraction", body: `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,1.5]}]}`,
			code: mloop.EINVALID, msg: "feature 'c'): 1.5 is not a category code"},
		{name: "categorical negative", body: `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,-1]}]}`,
			code: mloop.EINVALID, msg: "-1 is not a category code"},
		{name: "ragged rows", body: `{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2,3,4],[5,6]]}]}`,
			code: mloop.EINVALID, msg: "a list at depth 2 holds 4 elements; its shape [2,3] wants 3"},
		{name: "nested too deep", body: `{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[[[1],[2,3,4,5]],[6]]}]}`,
			code: mloop.EINVALID, msg: "nested deeper than its shape"},
		{name: "mixed lists and values", body: `{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,[2,3],4,5,6]}]}`,
			code: mloop.EINVALID, msg: "mixes lists and values"},
		{name: "categorical huge", body: `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP64","data":[1,2,1e300]}]}`,
			code: mloop.EINVALID, msg: "1e300 is not a category code"},
		{name: "beyond float32", body: `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP64","data":[1e39,2,1]}]}`,
			code: mloop.EINVALID, msg: "1e39 is out of the range of a 32-bit float"},
		{name: "int fraction", body: `{"inputs":[{"name":"x","shape":[1,3],"datatype":"INT32","data":[1,2.5,1]}]}`,
			code: mloop.EINVALID, msg: "2.5 is not a INT32"},
		{name: "uint range", body: `{"inputs":[{"name":"x","shape":[1,3],"datatype":"UINT8","data":[1,256,1]}]}`,
			code: mloop.EINVALID, msg: "256 is not a UINT8"},
		{name: "bool as number", body: `{"inputs":[{"name":"x","shape":[1,3],"datatype":"BOOL","data":[1,true,false]}]}`,
			code: mloop.EINVALID, msg: "1 is not a boolean"},
		{name: "number as bool", body: `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[true,1,1]}]}`,
			code: mloop.EINVALID, msg: "true is not a number"},
		{name: "bytes", body: `{"inputs":[{"name":"x","shape":[1,3],"datatype":"BYTES","data":["a","b","c"]}]}`,
			code: mloop.EINVALID, msg: "datatype 'BYTES'"},
		{name: "no datatype", body: `{"inputs":[{"name":"x","shape":[1,3],"data":[1,2,3]}]}`, code: mloop.EINVALID, msg: "input 'x' has no datatype"},
		{name: "no shape", body: `{"inputs":[{"name":"x","datatype":"FP32","data":[1,2,3]}]}`, code: mloop.EINVALID, msg: "input 'x' has no shape"},
		{name: "no data", body: `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32"}]}`, code: mloop.EINVALID, msg: "input 'x' has no data"},
		{name: "no name", body: `{"inputs":[{"shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`, code: mloop.EINVALID, msg: "inputs[0] has no name"},
		{name: "bad dimension", body: `{"inputs":[{"name":"x","shape":[-1,3],"datatype":"FP32","data":[1,2,3]}]}`, code: mloop.EINVALID, msg: "-1 is not a dimension"},
		{name: "zero rows", body: `{"inputs":[{"name":"x","shape":[0,3],"datatype":"FP32","data":[]}]}`, code: mloop.EINVALID, msg: "no rows"},
		{name: "too many rows", maxRows: 2, body: `{"inputs":[{"name":"x","shape":[3,3],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9]}]}`,
			code: mloop.EINVALID, msg: "3 rows; the limit is 2"},
		{name: "lying shape", body: `{"inputs":[{"name":"x","shape":[2000000000,3],"datatype":"FP32","data":[1]}]}`, maxRows: math.MaxInt32,
			code: mloop.EINVALID, msg: "more than its data holds"},
		{name: "id not a string", body: `{"id":5,"inputs":[]}`, code: mloop.EINVALID, msg: `"id" must be a string`},
		{name: "deep nesting", body: `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}]}`,
			code: mloop.EBADREQUEST, msg: "nested more than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, b, err := DecodeOIP([]byte(tc.body), testFeatures, tc.maxRows)
			checkDecode(t, tc, b, err)
		})
	}
}

func TestDecodeOIPRequest(t *testing.T) {
	body := `{"id":"req-\"7\"","parameters":{"x":[1,{"y":null}]},"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}],"outputs":[{"name":"predict"},{"name":"proba","parameters":{}}]}`
	req, _, err := DecodeOIP([]byte(body), testFeatures, 0)
	if err != nil {
		t.Fatal(err)
	}
	if req.ID != `req-"7"` {
		t.Errorf("got id %q, want %q", req.ID, `req-"7"`)
	}
	if strings.Join(req.Outputs, ",") != "predict,proba" {
		t.Errorf("got outputs %q, want [predict proba]", req.Outputs)
	}
	req, _, err = DecodeOIP([]byte(`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`), testFeatures, 0)
	if err != nil {
		t.Fatal(err)
	}
	if req.ID != "" || req.Outputs != nil {
		t.Errorf("got %+v, want no id and no outputs", req)
	}
}

func TestDecodeOIPOneFeature(t *testing.T) {
	one := []serving.Feature{{Name: "only", Type: serving.Numeric}}
	for _, body := range []string{
		`{"inputs":[{"name":"anything","shape":[2],"datatype":"FP32","data":[1,2]}]}`,
		`{"inputs":[{"name":"anything","shape":[2,1],"datatype":"FP32","data":[[1],[2]]}]}`,
		`{"inputs":[{"name":"only","shape":[2],"datatype":"FP32","data":[1,2]}]}`,
	} {
		_, b, err := DecodeOIP([]byte(body), one, 0)
		if err != nil || b.Rows != 2 || b.Cols != 1 || !sameValues(b.Values, []float32{1, 2}) {
			t.Errorf("%s: got %+v, %v; want 2×1 [1 2]", body, b, err)
		}
	}
}

func TestDecodeKServeV1(t *testing.T) {
	cases := []decodeCase{
		{name: "lists", body: `{"instances":[[1,2,3],[4,5.5,6]]}`, rows: 2, want: []float32{1, 2, 3, 4, 5.5, 6}},
		{name: "objects", body: `{"instances":[{"c":3,"a":1,"b":2,"extra":"ignored"},{"a":4,"c":null}]}`, rows: 2, want: []float32{1, 2, 3, 4, nan, nan}},
		{name: "missing values", body: `{"instances":[[null,NaN,1],[Infinity,true,false]]}`, rows: 2, want: []float32{nan, nan, 1, float32(math.Inf(1)), 1, 0}},
		{name: "other keys ignored", body: `{"signature_name":"x","instances":[[1,2,3]]}`, rows: 1, want: []float32{1, 2, 3}},
		{name: "bad JSON", body: `{"instances":[[1,2,3]}`, code: mloop.EBADREQUEST, msg: "not valid JSON"},
		{name: "no instances", body: `{"inputs":[[1,2,3]]}`, code: mloop.EINVALID, msg: `no "instances"`},
		{name: "not a list", body: `{"instances":{"a":1}}`, code: mloop.EINVALID, msg: "instances must be a list of rows"},
		{name: "empty", body: `{"instances":[]}`, code: mloop.EINVALID, msg: "instances has no rows"},
		{name: "short row", body: `{"instances":[[1,2,3],[1,2]]}`, code: mloop.EINVALID, msg: "instances row 1 has 2 values; the model takes 3 features: a,b,c"},
		{name: "long row", body: `{"instances":[[1,2,3,4]]}`, code: mloop.EINVALID, msg: "instances row 0 has 4 values"},
		{name: "scalar rows", body: `{"instances":[1,2,3]}`, code: mloop.EINVALID, msg: "instances row 0 is 1, not a row"},
		{name: "mixed rows", body: `{"instances":[[1,2,3],{"a":1}]}`, code: mloop.EINVALID, msg: "row 1 is an object, but row 0 is a list"},
		{name: "string", body: `{"instances":[[1,2,3],[1,2,3],[1,"abc",3]]}`, code: mloop.EINVALID, msg: `instances row 2 (feature 'b'): "abc" is not a number`},
		{name: "nested value", body: `{"instances":[[1,[2],3]]}`, code: mloop.EINVALID, msg: `(feature 'b'): a list is not a number`},
		{name: "categorical", body: `{"instances":[{"a":1,"b":2,"c":"red"}]}`, code: mloop.EINVALID, msg: `(feature 'c'): "red" is not a number`},
		{name: "feature absent everywhere", body: `{"instances":[{"a":1,"c":2},{"a":1}]}`, code: mloop.EINVALID, msg: "no value for feature 'b' in any row"},
		{name: "too many rows", maxRows: 2, body: `{"instances":[[1,2,3],[1,2,3],[1,2,3],[1,2,3]]}`, code: mloop.EINVALID, msg: "4 rows; the limit is 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := DecodeKServeV1([]byte(tc.body), testFeatures, tc.maxRows)
			checkDecode(t, tc, b, err)
		})
	}
}

func TestDecodeMLflow(t *testing.T) {
	cases := []decodeCase{
		{name: "split", body: `{"dataframe_split":{"columns":["c","a","b"],"data":[[3,1,2],[6,4,5]]}}`, rows: 2, want: []float32{1, 2, 3, 4, 5, 6}},
		{name: "split extra column and index", body: `{"dataframe_split":{"index":[0],"columns":["a","zz","b","c"],"data":[[1,"text",2,3]]}}`, rows: 1, want: []float32{1, 2, 3}},
		{name: "split data first", body: `{"dataframe_split":{"data":[[3,1,2]],"columns":["c","a","b"]}}`, rows: 1, want: []float32{1, 2, 3}},
		{name: "split without columns", body: `{"dataframe_split":{"data":[[1,2,3]]}}`, rows: 1, want: []float32{1, 2, 3}},
		{name: "records", body: `{"dataframe_records":[{"a":1,"b":2,"c":3},{"a":NaN,"b":null,"c":4}]}`, rows: 2, want: []float32{1, 2, 3, nan, nan, 4}},
		{name: "instances lists", body: `{"instances":[[1,2,3]]}`, rows: 1, want: []float32{1, 2, 3}},
		{name: "instances objects", body: `{"instances":[{"a":1,"b":2,"c":3}]}`, rows: 1, want: []float32{1, 2, 3}},
		{name: "inputs lists with params", body: `{"params":{"k":1},"inputs":[[1,2,3],[4,5,6]]}`, rows: 2, want: []float32{1, 2, 3, 4, 5, 6}},
		{name: "inputs columns", body: `{"inputs":{"b":[2,5],"a":[1,4],"c":[3,null],"zz":["x","y"]}}`, rows: 2, want: []float32{1, 2, 3, 4, 5, nan}},
		{name: "inputs scalar columns", body: `{"inputs":{"a":1,"b":2,"c":3}}`, rows: 1, want: []float32{1, 2, 3}},
		{name: "bad JSON", body: `{"inputs":{"a":1,}}`, code: mloop.EBADREQUEST, msg: "not valid JSON"},
		{name: "no format", body: `{"params":{}}`, code: mloop.EINVALID, msg: "none of"},
		{name: "two formats", body: `{"inputs":[[1,2,3]],"instances":[[1,2,3]]}`, code: mloop.EINVALID, msg: `both "inputs" and "instances"`},
		{name: "unknown key", body: `{"inputs":[[1,2,3]],"data":1}`, code: mloop.EINVALID, msg: "unknown key 'data'"},
		{name: "split missing column", body: `{"dataframe_split":{"columns":["a","b"],"data":[[1,2]]}}`, code: mloop.EINVALID, msg: "no column for feature 'c'"},
		{name: "split duplicate column", body: `{"dataframe_split":{"columns":["a","b","c","a"],"data":[[1,2,3,4]]}}`, code: mloop.EINVALID, msg: "column 'a' twice"},
		{name: "split short row", body: `{"dataframe_split":{"columns":["a","b","c"],"data":[[1,2]]}}`, code: mloop.EINVALID, msg: "dataframe_split data row 0 has 2 values, but there are 3 columns"},
		{name: "split no data", body: `{"dataframe_split":{"columns":["a","b","c"]}}`, code: mloop.EINVALID, msg: `no "data"`},
		{name: "split string", body: `{"dataframe_split":{"columns":["a","b","c"],"data":[[1,2,3],[1,"abc",3]]}}`, code: mloop.EINVALID, msg: `dataframe_split data row 1 (feature 'b'): "abc" is not a number`},
		{name: "records of lists", body: `{"dataframe_records":[[1,2,3]]}`, code: mloop.EINVALID, msg: "dataframe_records row 0 is a list; send each row as an object"},
		{name: "records absent feature", body: `{"dataframe_records":[{"a":1,"b":2}]}`, code: mloop.EINVALID, msg: "no value for feature 'c'"},
		{name: "columns missing", body: `{"inputs":{"a":[1],"b":[2]}}`, code: mloop.EINVALID, msg: "inputs has no column for feature 'c'"},
		{name: "columns differ", body: `{"inputs":{"a":[1,2],"b":[2],"c":[1,1]}}`, code: mloop.EINVALID, msg: "column 'b' has 1 values, but column 'a' has 2"},
		{name: "columns string", body: `{"inputs":{"a":[1,2],"b":[2,"x"],"c":[1,1]}}`, code: mloop.EINVALID, msg: `inputs column 'b' row 1: "x" is not a number`},
		{name: "columns too many rows", maxRows: 1, body: `{"inputs":{"a":[1,2],"b":[2,3],"c":[1,1]}}`, code: mloop.EINVALID, msg: "2 rows; the limit is 1"},
		{name: "instances dict", body: `{"instances":{"a":[1]}}`, code: mloop.EINVALID, msg: "instances must be a list of rows"},
		{name: "too many rows", maxRows: 1, body: `{"dataframe_records":[{"a":1,"b":2,"c":3},{"a":1,"b":2,"c":3}]}`, code: mloop.EINVALID, msg: "2 rows; the limit is 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := DecodeMLflow([]byte(tc.body), testFeatures, tc.maxRows)
			checkDecode(t, tc, b, err)
		})
	}
}

func TestNoFeatures(t *testing.T) {
	body := []byte(`{"instances":[[1]]}`)
	if _, err := DecodeKServeV1(body, nil, 0); mloop.ErrorCode(err) != mloop.EINVALID {
		t.Errorf("KServe V1: got %v, want EINVALID", err)
	}
	if _, err := DecodeMLflow(body, nil, 0); mloop.ErrorCode(err) != mloop.EINVALID {
		t.Errorf("MLflow: got %v, want EINVALID", err)
	}
	if _, _, err := DecodeOIP(body, nil, 0); mloop.ErrorCode(err) != mloop.EINVALID {
		t.Errorf("OIP: got %v, want EINVALID", err)
	}
}

func TestEncodeOIP(t *testing.T) {
	for _, tc := range []struct {
		name, version, id string
		outputs, rows     int
		preds             []float32
		want              string
	}{
		{"flights", "3", "req-1", 1, 2, []float32{0.25, float32(math.NaN())},
			`{"model_name":"flights","model_version":"3","id":"req-1","outputs":[{"name":"predict","shape":[2],"datatype":"FP32","data":[0.25,null]}]}`},
		{"m", "", "", 3, 1, []float32{0.1, 1e-7, float32(math.Inf(1))},
			`{"model_name":"m","outputs":[{"name":"predict","shape":[1,3],"datatype":"FP32","data":[0.1,1e-7,null]}]}`},
		{"a\"b<\n\xff", "", "\u2028", 1, 1, []float32{3e21},
			`{"model_name":"a\"b\u003c\n\ufffd","id":"\u2028","outputs":[{"name":"predict","shape":[1],"datatype":"FP32","data":[3e+21]}]}`},
	} {
		got := EncodeOIP(tc.name, tc.version, tc.id, tc.outputs, tc.preds, tc.rows)
		if string(got) != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
		if !json.Valid(got) {
			t.Errorf("%s is not valid JSON", got)
		}
	}
}

func TestEncodeOIPRoundTrip(t *testing.T) {
	preds := []float32{0.1, 1.0 / 3, -2.5e-10, 123456.79, 0}
	var resp struct {
		ID      string
		Outputs []struct {
			Shape []int
			Data  []float32
		}
	}
	if err := json.Unmarshal(EncodeOIP("m", "1", "x", 1, preds, len(preds)), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.ID != "x" || len(resp.Outputs) != 1 || !sameValues(resp.Outputs[0].Data, preds) || resp.Outputs[0].Shape[0] != len(preds) {
		t.Fatalf("got %+v, want id x and data %v", resp, preds)
	}
}

func TestEncodePredictions(t *testing.T) {
	if got, want := string(EncodeKServeV1([]float32{1, 0.5}, 2, 1)), `{"predictions":[1,0.5]}`; got != want {
		t.Errorf("KServe V1: got %s, want %s", got, want)
	}
	if got, want := string(EncodeMLflow([]float32{0.1, 0.9, float32(math.NaN()), 1}, 2, 2)), `{"predictions":[[0.1,0.9],[null,1]]}`; got != want {
		t.Errorf("MLflow: got %s, want %s", got, want)
	}
	defer func() {
		if recover() == nil {
			t.Error("a prediction count that does not match rows×outputs did not panic")
		}
	}()
	EncodeMLflow([]float32{1}, 2, 1)
}

// checkFuzz holds for every decoder on any body: an error of a 400 kind, or
// a consistent batch within the row limit; and the scanner accepts nothing
// that is not JSON apart from Python's NaN and Infinity literals.
func checkFuzz(t *testing.T, body []byte, b serving.Batch, err error, maxRows int) {
	if err != nil {
		if code := mloop.ErrorCode(err); code != mloop.EINVALID && code != mloop.EBADREQUEST {
			t.Fatalf("got error kind %q (%v), want invalid or bad_request", code, err)
		}
		return
	}
	if b.Cols != len(testFeatures) || b.Rows < 1 || b.Rows > maxRows || b.Rows*b.Cols != len(b.Values) {
		t.Fatalf("got an inconsistent batch %d×%d with %d values (limit %d rows)", b.Rows, b.Cols, len(b.Values), maxRows)
	}
	if !bytes.Contains(body, []byte("NaN")) && !bytes.Contains(body, []byte("Infinity")) && !json.Valid(body) {
		t.Fatalf("accepted a body that is not JSON: %q", body)
	}
}

func FuzzDecodeOIP(f *testing.F) {
	for _, s := range []string{
		`{"id":"1","inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,5,6]]}],"outputs":[{"name":"predict"}]}`,
		`{"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[NaN]},{"name":"b","shape":[1,1],"datatype":"BOOL","data":[true]},{"name":"c","shape":[1],"datatype":"INT8","data":[null]}]}`,
		`{"inputs":[{"name":"x","shape":[1,3],"datatype":"UINT64","data":[-Infinity,1e400,"\u00e9"]}],"parameters":{"a":[{}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, b, err := DecodeOIP(body, testFeatures, 50)
		checkFuzz(t, body, b, err, 50)
	})
}

func FuzzDecodeKServeV1(f *testing.F) {
	for _, s := range []string{
		`{"instances":[[1,2,3],[4,5,6]]}`,
		`{"instances":[{"a":1,"b":NaN,"c":null},{"a":Infinity}]}`,
		`{"x":{"y":[1]},"instances":[[true,false,"s"]]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := DecodeKServeV1(body, testFeatures, 50)
		checkFuzz(t, body, b, err, 50)
	})
}

func FuzzDecodeMLflow(f *testing.F) {
	for _, s := range []string{
		`{"dataframe_split":{"columns":["c","a","b"],"data":[[3,1,2]],"index":[0]}}`,
		`{"dataframe_records":[{"a":1,"b":2,"c":3}]}`,
		`{"instances":[[1,2,3]],"params":{"p":1}}`,
		`{"inputs":{"a":[1,2],"b":[NaN,null],"c":[0,1]}}`,
		`{"inputs":[{"a":1,"b":2,"c":3}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := DecodeMLflow(body, testFeatures, 50)
		checkFuzz(t, body, b, err, 50)
	})
}
