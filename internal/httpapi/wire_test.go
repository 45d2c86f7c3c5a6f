package httpapi

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mloop/mloop"
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
