package httpapi

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/tracking"
)

// wireProbe has one field of every wire type decode handles.
type wireProbe struct {
	Name   Str      `json:"name"`
	Step   Int64    `json:"step"`
	Value  Float64  `json:"value"`
	Flag   Bool     `json:"flag"`
	IDs    []string `json:"ids"`
	Nested []struct {
		Key Str `json:"key"`
	} `json:"nested"`
}

func TestDecodeBody(t *testing.T) {
	tests := []struct {
		body     string
		wantErr  string // error kind, "" for success
		wantStep int64
		wantVal  float64
		wantName string
	}{
		{`{"name":"a","step":3,"value":1.5}`, "", 3, 1.5, "a"},
		{`{"step":"42","value":"NaN"}`, "", 42, math.NaN(), ""},
		{`{"value":"Infinity"}`, "", 0, math.Inf(1), ""},
		{`{"value":"-Infinity"}`, "", 0, math.Inf(-1), ""},
		{`{"step":1e3}`, "", 1000, 0, ""},
		{`"{\"name\":\"double\"}"`, "", 0, 0, "double"}, // double-encoded, as old clients send
		{``, "", 0, 0, ""},
		{`{"name":123}`, mloop.EINVALID, 0, 0, ""},
		{`{"step":"x"}`, mloop.EINVALID, 0, 0, ""},
		{`{"step":1.5}`, mloop.EINVALID, 0, 0, ""},
		{`{"value":"abc"}`, mloop.EINVALID, 0, 0, ""},
		{`{"flag":"maybe"}`, mloop.EINVALID, 0, 0, ""},
		{`{"ids":"notalist"}`, mloop.EINVALID, 0, 0, ""},
		{`{"name":`, mloop.EBADREQUEST, 0, 0, ""},
		{`[1,2]`, mloop.EINVALID, 0, 0, ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(tt.body))
		var p wireProbe
		err := decode(r, 1<<20, &p)
		if got := mloop.ErrorCode(err); got != tt.wantErr {
			t.Errorf("decode(%s): got error %v (%q), want kind %q", tt.body, err, got, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if p.Step.V != tt.wantStep || p.Name.V != tt.wantName {
			t.Errorf("decode(%s): got step %d name %q, want %d %q", tt.body, p.Step.V, p.Name.V, tt.wantStep, tt.wantName)
		}
		if !(p.Value.V == tt.wantVal || math.IsNaN(p.Value.V) && math.IsNaN(tt.wantVal)) {
			t.Errorf("decode(%s): got value %v, want %v", tt.body, p.Value.V, tt.wantVal)
		}
	}
}

func TestDecodeBodyLimit(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(`{"name":"`+strings.Repeat("a", 100)+`"}`))
	var p wireProbe
	if err := decode(r, 50, &p); mloop.ErrorCode(err) != mloop.ETOOLARGE {
		t.Fatalf("oversized body: got %v, want kind %q", err, mloop.ETOOLARGE)
	}
}

func TestDecodeQuery(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/x?name=a&step=7&ids=1&ids=2&value=NaN&flag=true", nil)
	var p wireProbe
	if err := decode(r, 1<<20, &p); err != nil {
		t.Fatalf("decode query: %v", err)
	}
	if p.Name.V != "a" || p.Step.V != 7 || len(p.IDs) != 2 || !math.IsNaN(p.Value.V) || !p.Flag.V {
		t.Fatalf("decode query: got %+v, want name a, step 7, two ids, NaN, flag", p)
	}
	// A single value of a repeated field is still a list.
	r = httptest.NewRequest(http.MethodGet, "/x?ids=only", nil)
	p = wireProbe{}
	if err := decode(r, 1<<20, &p); err != nil || len(p.IDs) != 1 || p.IDs[0] != "only" {
		t.Fatalf("decode single repeated: got %v %v, want [only]", p.IDs, err)
	}
}

func TestJSONFloat(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		want string
	}{{1.5, "1.5"}, {math.NaN(), `"NaN"`}, {math.Inf(1), `"Infinity"`}, {math.Inf(-1), `"-Infinity"`}, {1e21, "1e+21"}} {
		b, err := jsonFloat(tt.v).MarshalJSON()
		if err != nil || string(b) != tt.want {
			t.Errorf("jsonFloat(%v): got %s %v, want %s", tt.v, b, err, tt.want)
		}
	}
}

// FuzzDecode feeds arbitrary bodies and query strings to decode: it must never
// panic, and every failure is a client error (invalid, bad request, too large).
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"name":"a","step":3}`, `{"value":"NaN"}`, `"{}"`, `{"ids":["a"]}`, `{`, `null`, `{"nested":[{"key":1}]}`} {
		f.Add(s, "name=a&ids=1")
	}
	f.Fuzz(func(t *testing.T, body, query string) {
		for _, method := range []string{http.MethodPost, http.MethodGet} {
			r := httptest.NewRequest(method, "/x", strings.NewReader(body))
			r.URL.RawQuery = query
			var p wireProbe
			err := decode(r, 1<<16, &p)
			switch mloop.ErrorCode(err) {
			case "", mloop.EINVALID, mloop.EBADREQUEST, mloop.ETOOLARGE:
			default:
				t.Fatalf("decode(%q, %q): got %v, want a client error", body, query, err)
			}
		}
	})
}

func TestPythonStr(t *testing.T) {
	tests := []struct {
		json     string
		text     string
		pyType   string
		describe string
	}{
		{`"foo"`, "foo", "str", "a string is itself"},
		{`"it's"`, "it's", "str", "a string is itself, quotes and all"},
		{`31`, "31", "int", "an integer"},
		{`-0`, "0", "int", "minus zero is the integer 0"},
		{`123456789012345678901234567890`, "123456789012345678901234567890", "int", "Python integers have no limit"},
		{`9.0`, "9.0", "float", "a float keeps its decimal"},
		{`2.5`, "2.5", "float", "a float"},
		{`1e3`, "1000.0", "float", "an exponent makes a float"},
		{`1e16`, "1e+16", "float", "from 1e16 floats use exponents"},
		{`123456789012345.6`, "123456789012345.6", "float", "below 1e16 they do not"},
		{`0.0001`, "0.0001", "float", "down to 1e-4 floats are positional"},
		{`0.00001`, "1e-05", "float", "below 1e-4 they use exponents, of two digits at least"},
		{`-1.5e-7`, "-1.5e-07", "float", "a negative small float"},
		{`1e400`, "inf", "float", "overflow is inf"},
		{`true`, "True", "bool", "true"},
		{`false`, "False", "bool", "false"},
		{`null`, "None", "NoneType", "null"},
		{`[{"key": "mae", "value": 2.5}]`, "[{'key': 'mae', 'value': 2.5}]", "list", "MLflow's log-batch message"},
		{`{"b": [1, "x"], "a": null}`, "{'b': [1, 'x'], 'a': None}", "dict", "keys keep their order"},
		{`["it's", "say \"hi\"", "both ' and \""]`, `["it's", 'say "hi"', 'both \' and "']`, "list", "Python picks the quotes"},
		{`["a\nb\\c\t\u0001é"]`, `['a\nb\\c\t\x01é']`, "list", "escapes in a repr"},
		{`[]`, "[]", "list", "an empty list"},
		{`{}`, "{}", "dict", "an empty dict"},
		{`not json`, "not json", "str", "what is not JSON is shown as it is"},
	}
	for _, tt := range tests {
		text, typ := pythonStr(json.RawMessage(tt.json))
		if text != tt.text || typ != tt.pyType {
			t.Errorf("%s: pythonStr(%s): got %q (%s), want %q (%s)", tt.describe, tt.json, text, typ, tt.text, tt.pyType)
		}
	}
	long := `["` + strings.Repeat("x", 2*maxShownValue) + `"]`
	if text, typ := pythonStr(json.RawMessage(long)); len(text) > maxShownValue+len("…") || !strings.HasSuffix(text, "…") || typ != "list" {
		t.Errorf("a long list: got %d bytes ending %q (%s), want at most %d bytes ending with … (list)", len(text), text[len(text)-5:], typ, maxShownValue)
	}
}

// requiredProbe has MLflow-style required fields, run_id first.
type requiredProbe struct {
	RunID string   `json:"run_id" mlflow:"required"`
	Key   string   `json:"key" mlflow:"required"`
	Value Float64  `json:"value" mlflow:"required"`
	Items []string `json:"items"`
}

func TestDecodeRequired(t *testing.T) {
	tests := []struct {
		body    string
		wantMsg string // "" for success
		wantRun string
	}{
		{`{"run_id": "r", "key": "k", "value": 1}`, "", "r"},
		{`{"run_uuid": "u", "key": "k", "value": 1}`, "", "u"},
		{`{"run_id": null, "run_uuid": "u", "key": "k", "value": 1}`, "", "u"},
		{`{"run_id": "r", "run_uuid": "u", "key": "k", "value": 1}`, "", "r"},
		{``, "Missing value for required parameter 'run_id'. See the API docs for more information about request parameters.", ""},
		{`{"key": 5}`, "Missing value for required parameter 'run_id'", ""},
		{`{"run_id": "", "key": "k", "value": 1}`, "Missing value for required parameter 'run_id'", ""},
		{`{"run_id": "r", "key": null, "value": 1}`, "Missing value for required parameter 'key'", ""},
		{`{"run_id": "r", "key": 5, "value": 1}`, "Invalid value 5 for parameter 'key' supplied. Hint: Value was of type 'int'. See the API docs for more information about request parameters.", ""},
		{`{"run_id": "r", "key": "k"}`, "Missing value for required parameter 'value'", ""},
		{`{"run_id": "r", "key": "k", "value": 1, "items": "a"}`, "Invalid value a for parameter 'items' supplied. Hint: Value was of type 'str'.", ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(tt.body))
		var p requiredProbe
		err := decode(r, 1<<20, &p)
		if tt.wantMsg == "" {
			if err != nil || p.RunID != tt.wantRun {
				t.Errorf("decode(%s): got run_id %q, error %v; want run_id %q", tt.body, p.RunID, err, tt.wantRun)
			}
			continue
		}
		if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), tt.wantMsg) {
			t.Errorf("decode(%s): got %v, want EINVALID %q", tt.body, err, tt.wantMsg)
		}
	}
	// A query string is checked the same way.
	r := httptest.NewRequest(http.MethodGet, "/x?run_uuid=u&key=k&value=NaN", nil)
	var p requiredProbe
	if err := decode(r, 1<<20, &p); err != nil || p.RunID != "u" || !math.IsNaN(p.Value.V) {
		t.Errorf("decode query: got %+v, %v; want run_id u, value NaN", p, err)
	}
	r = httptest.NewRequest(http.MethodGet, "/x", nil)
	if err := decode(r, 1<<20, &p); !strings.Contains(mloop.ErrorMessage(err), "'run_id'") {
		t.Errorf("decode empty query: got %v, want run_id missing", err)
	}
}

func TestListJSON(t *testing.T) {
	var req struct {
		Tags listJSON[struct {
			Key string `json:"key"`
		}] `json:"tags"`
	}
	body := `{"tags": [{"key": "a"}, {"value": 1}]}`
	if err := decode(httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(body)), 1<<20, &req); err != nil {
		t.Fatal(err)
	}
	if len(req.Tags.Items) != 2 || req.Tags.Items[0].Key != "a" || string(req.Tags.Raw) != `[{"key": "a"}, {"value": 1}]` {
		t.Errorf("listJSON: got %+v raw %s, want two items and the JSON as sent", req.Tags.Items, req.Tags.Raw)
	}
	err := decode(httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(`{"tags": {"key": "a"}}`)), 1<<20, &req)
	if want := "Invalid value {'key': 'a'} for parameter 'tags' supplied. Hint: Value was of type 'dict'."; !strings.Contains(mloop.ErrorMessage(err), want) {
		t.Errorf("listJSON of an object: got %v, want %q", err, want)
	}
}

// FuzzPythonStr feeds arbitrary values to pythonStr: it must never panic,
// must name one of Python's JSON types, and must keep to maxShownValue.
func FuzzPythonStr(f *testing.F) {
	for _, s := range []string{`"a"`, `1.5e-7`, `[{"k": [null, true]}]`, `{"a": 1`, `[1,`, `"\ud800"`, `1e999`} {
		f.Add(s)
	}
	types := map[string]bool{"str": true, "int": true, "float": true, "bool": true, "NoneType": true, "list": true, "dict": true}
	f.Fuzz(func(t *testing.T, value string) {
		text, typ := pythonStr(json.RawMessage(value))
		if !types[typ] {
			t.Fatalf("pythonStr(%q): got type %q", value, typ)
		}
		if len(text) > maxShownValue+len("…") {
			t.Fatalf("pythonStr(%q): got %d bytes, want at most %d", value, len(text), maxShownValue+len("…"))
		}
	})
}

// TestWriteMetricList checks the hand-written history encoder against
// encoding/json on the same points.
func TestWriteMetricList(t *testing.T) {
	ms := []tracking.Metric{
		{Key: "loss", Value: 0.5, Timestamp: 1700000000000, Step: 0, RunID: "r1"},
		{Key: "loss", Value: math.NaN(), Timestamp: -1, Step: 1, RunID: "r1"},
		{Key: "loss", Value: math.Inf(1), Timestamp: 2, Step: 1 << 40, RunID: "r2"},
		{Key: "w\"eird\\ <key>\u2028", Value: math.Inf(-1), Timestamp: 3, Step: -5, RunID: "r2"},
		{Key: "acc", Value: 1e-7, Timestamp: 4, Step: 2, RunID: ""},
		{Key: "acc", Value: 123456789.125, Timestamp: 5, Step: 3, RunID: "r3"},
	}
	for _, tt := range []struct {
		ms        []tracking.Metric
		withRunID bool
		next      string
	}{{ms, false, "tok"}, {ms, true, ""}, {nil, false, ""}, {nil, false, "t"}, {ms[:1], true, "x"}} {
		rec := httptest.NewRecorder()
		if err := writeMetricList(rec, tt.ms, tt.withRunID, tt.next); err != nil {
			t.Fatal(err)
		}
		want := httptest.NewRecorder()
		writeJSON(want, http.StatusOK, struct {
			Metrics       []metricOutJSON `json:"metrics,omitempty"`
			NextPageToken string          `json:"next_page_token,omitempty"`
		}{metricsToJSON(tt.ms, tt.withRunID), tt.next})
		if rec.Body.String() != want.Body.String() {
			t.Errorf("writeMetricList:\ngot  %s\nwant %s", rec.Body.String(), want.Body.String())
		}
	}
}
