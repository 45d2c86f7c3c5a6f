package client

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mloop/mloop"
)

func TestDetectProtocol(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}`, ProtocolOIP},
		{`{"id": "r1", "inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [NaN, 2]}, {"name": "b", "shape": [2], "datatype": "FP64", "data": [1, 2]}]}`, ProtocolOIP},
		{`{"instances": [[1, 2, 3]]}`, ProtocolKServeV1},
		{`{"instances": [{"a": 1, "b": Infinity}]}`, ProtocolKServeV1},
		{`{"dataframe_split": {"columns": ["a"], "data": [[1]]}}`, ProtocolMLflow},
		{`{"dataframe_records": [{"a": -Infinity}]}`, ProtocolMLflow},
		{`{"inputs": [[1, 2, 3]]}`, ProtocolMLflow},
		{`{"inputs": {"a": [1, 2]}}`, ProtocolMLflow},
		{`{"inputs": [{"a": 1}]}`, ProtocolMLflow}, // records, no tensor shape
		{` {"instances": [[1]], "inputs": null}`, ProtocolKServeV1},
	} {
		got, err := DetectProtocol([]byte(tc.body))
		if err != nil || got != tc.want {
			t.Errorf("DetectProtocol(%s): got %q %v, want %s", tc.body, got, err, tc.want)
		}
	}
	for body, msg := range map[string]string{
		`{"rows": [[1]]}`:  `"rows"`,
		`[1, 2]`:           "not an object",
		`{"inputs": [1`:    "not valid JSON",
		`a,b\n1,2`:         "not valid JSON",
		`{"instances": nu`: "not valid JSON",
	} {
		_, err := DetectProtocol([]byte(body))
		if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), msg) {
			t.Errorf("DetectProtocol(%s): got %v, want EINVALID mentioning %s", body, err, msg)
		}
	}
}

func TestPythonJSON(t *testing.T) {
	for in, want := range map[string]string{
		`[1, NaN, Infinity, -Infinity]`:   `[1, null, null, null]`,
		`{"NaN": "NaN", "x": NaN}`:        `{"NaN": "NaN", "x": null}`,
		`["a\"NaN", NaN]`:                 `["a\"NaN", null]`,
		`["\\", NaN]`:                     `["\\", null]`,
		`{"a": 1.5e3}`:                    `{"a": 1.5e3}`,
		`[-1, -Infinity,-Infinity]`:       `[-1, null,null]`,
		`{"inputs":[{"data":[NaN,NaN]}]}`: `{"inputs":[{"data":[null,null]}]}`,
	} {
		if got := string(PythonJSON([]byte(in))); got != want {
			t.Errorf("PythonJSON(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestCSVToMLflow(t *testing.T) {
	got, err := CSVToMLflow(strings.NewReader("\ufeffa, b ,c\n1.5,,x\n-2,NaN,3e2\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"dataframe_split":{"columns":["a","b","c"],"data":[[1.5,null,"x"],[-2,null,300]]}}`
	if string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for in, msg := range map[string]string{
		"":                "empty",
		"a,b\n":           "no rows",
		"a,,c\n1,2,3\n":   "no name",
		"a,a\n1,2\n":      "twice",
		"a,b\n1,2,3\n":    "cannot be read",
		"a,b\n\"1,2\n":    "cannot be read",
		"a,b\n1\n":        "cannot be read",
		"a,b\n1,\"x\"y\n": "cannot be read",
	} {
		_, err := CSVToMLflow(strings.NewReader(in))
		if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), msg) {
			t.Errorf("CSVToMLflow(%q): got %v, want EINVALID mentioning %q", in, err, msg)
		}
	}
}

func TestPredictionRows(t *testing.T) {
	for _, tc := range []struct {
		protocol, body string
		want           []string
	}{
		{ProtocolOIP, `{"model_name": "m", "outputs": [{"name": "predict", "shape": [2], "datatype": "FP32", "data": [0.25, null]}]}`, []string{"0.25", "null"}},
		{ProtocolOIP, `{"outputs": [{"name": "p", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]}]}`, []string{"[1,2,3]", "[4,5,6]"}},
		{ProtocolOIP, `{"outputs": [{"name": "p", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}]}`, []string{"[1,2]", "[3,4]"}},
		{ProtocolOIP, `{"outputs": [{"name": "label", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}, {"name": "p", "shape": [2, 1], "datatype": "FP32", "data": [0.5, NaN]}]}`, []string{`label="a" p=[0.5]`, `label="b" p=[null]`}},
		{ProtocolKServeV1, `{"predictions": [0.1, [0.2, 0.8], null]}`, []string{"0.1", "[0.2,0.8]", "null"}},
		{ProtocolMLflow, `{"predictions": [ 1 , 2 ]}`, []string{"1", "2"}},
	} {
		got, err := PredictionRows(tc.protocol, []byte(tc.body))
		if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("PredictionRows(%s, %s): got %q %v, want %q", tc.protocol, tc.body, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ protocol, body, msg string }{
		{ProtocolOIP, `{"outputs": []}`, "no outputs"},
		{ProtocolOIP, `{"outputs": [{"name": "p", "shape": [3], "data": [1, 2]}]}`, "3"},
		{ProtocolOIP, `{"outputs": [{"name": "p", "data": [1, 2]}]}`, "shape"},
		{ProtocolOIP, `{"outputs": [{"name": "p", "shape": [1], "data": [1]}, {"name": "q", "shape": [2], "data": [1, 2]}]}`, "disagree"},
		{ProtocolOIP, `{"outputs": [{"name": "p", "shape": [1, -1], "data": [1]}]}`, "bad shape"},
		{ProtocolOIP, `{"outputs": [{"name": "p", "shape": [4611686018427387904, 4], "data": []}]}`, "0 values"},
		{ProtocolKServeV1, `{"prediction": [1]}`, "predictions"},
		{ProtocolMLflow, `not json`, "not a prediction response"},
		{"grpc", `{}`, "unknown"},
	} {
		_, err := PredictionRows(tc.protocol, []byte(tc.body))
		if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), tc.msg) {
			t.Errorf("PredictionRows(%s, %s): got %v, want EINVALID mentioning %q", tc.protocol, tc.body, err, tc.msg)
		}
	}
}

func TestIsUnreachable(t *testing.T) {
	c := New("http://127.0.0.1:1", nil)
	ctx := context.Background()
	if _, err := c.ListDeployments(ctx); !IsUnreachable(err) {
		t.Errorf("ListDeployments: got %v, want an unreachable error", err)
	}
	if _, err := c.Predict(ctx, PredictRequest{Deployment: "a", Protocol: ProtocolOIP, Body: []byte("{}")}); !IsUnreachable(err) {
		t.Errorf("Predict: got %v, want an unreachable error", err)
	}
	if _, err := c.ModelReady(ctx, "a"); !IsUnreachable(err) {
		t.Errorf("ModelReady: got %v, want an unreachable error", err)
	}
	if IsUnreachable(mloop.Errorf(mloop.EUNAVAILABLE, "503 Service Unavailable: loading")) {
		t.Errorf("a 503 answer counts as unreachable")
	}
}

// FuzzPythonJSON checks that valid JSON passes unchanged, that the result
// never holds the Python literals outside strings (it is idempotent), and
// that it never panics.
func FuzzPythonJSON(f *testing.F) {
	for _, s := range []string{`[NaN]`, `{"a": "NaN\"", "b": -Infinity}`, `"\\"NaN`, `Infinity`, `-`, `"`, `[1e5, null]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out := PythonJSON(b)
		if json.Valid(b) && !bytes.Equal(out, b) {
			t.Fatalf("valid JSON %q changed to %q", b, out)
		}
		if again := PythonJSON(out); !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q → %q → %q", b, out, again)
		}
	})
}

// FuzzDetectProtocol checks that any body gets a protocol or an EINVALID
// error, never a panic.
func FuzzDetectProtocol(f *testing.F) {
	for _, s := range []string{`{"inputs": [{"name": "a", "shape": [1], "data": [1]}]}`, `{"instances": []}`, `{"dataframe_split": {}}`, `{"inputs": 3}`, `[]`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DetectProtocol(b)
		if err != nil && mloop.ErrorCode(err) != mloop.EINVALID {
			t.Fatalf("got %v, want EINVALID", err)
		}
		if err == nil && p != ProtocolOIP && p != ProtocolKServeV1 && p != ProtocolMLflow {
			t.Fatalf("got protocol %q", p)
		}
	})
}

// FuzzCSVToMLflow checks that any CSV gives valid JSON or an EINVALID
// error.
func FuzzCSVToMLflow(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", "a\n\n", "\"a\nb\",c\n1,2\n", "a,b\nNaN,inf\n", "x\n1e400\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := CSVToMLflow(strings.NewReader(s))
		if err != nil {
			if mloop.ErrorCode(err) != mloop.EINVALID {
				t.Fatalf("got %v, want EINVALID", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %s from %q", out, s)
		}
		if p, err := DetectProtocol(out); err != nil || p != ProtocolMLflow {
			t.Fatalf("the request %s is detected as %q %v, want mlflow", out, p, err)
		}
	})
}

// FuzzPredictionRows checks that any answer gives rows or an EINVALID
// error, never a panic or an allocation out of proportion.
func FuzzPredictionRows(f *testing.F) {
	for _, s := range []string{`{"outputs": [{"name": "p", "shape": [2, 2], "data": [1, 2, 3, 4]}]}`, `{"predictions": [1]}`,
		`{"outputs": [{"name": "p", "shape": [9223372036854775807, 2], "data": []}]}`, `{"outputs": [{"name": "p", "shape": [0, 3037000500, 3037000500], "data": []}]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range []string{ProtocolOIP, ProtocolKServeV1} {
			if _, err := PredictionRows(p, []byte(s)); err != nil && mloop.ErrorCode(err) != mloop.EINVALID {
				t.Fatalf("%s: got %v, want EINVALID", p, err)
			}
		}
	})
}
