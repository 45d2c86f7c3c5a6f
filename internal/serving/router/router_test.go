package router

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/payloadlog"
)

// weatherCP returns a control plane serving deployment "weather": the
// binary_logistic fixture as model weather version 1, revision 1.
func weatherCP(t *testing.T) *fakeCP {
	t.Helper()
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.put(newDep("weather", slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 100)))
	return cp
}

// TestProtocols answers the same rows over the three protocols and checks
// them against XGBoost's own predictions, with the revision headers.
func TestProtocols(t *testing.T) {
	cp := weatherCP(t)
	_, srv := newRouter(t, cp, Config{}, false)
	fx := loadFixture(t, "binary_logistic")
	rows := []int{0, 1, 2, 3}
	want := fx.expected(rows...)

	check := func(what string, r response, got []float64) {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("%s: got %d %s", what, r.status, r.body)
		}
		if !near(got, want) {
			t.Errorf("%s: got %v, want %v", what, got, want)
		}
		if r.header.Get(deploy.RevisionHeader) != "1" || r.header.Get(deploy.ModelVersionHeader) != "weather/1" {
			t.Errorf("%s: got revision headers %q %q, want 1 and weather/1", what,
				r.header.Get(deploy.RevisionHeader), r.header.Get(deploy.ModelVersionHeader))
		}
		if r.header.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", what)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", what, ct)
		}
	}

	// OIP, one 2-D input; the id is echoed in the body and the header.
	r := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody("req-7", rows...))
	check("OIP", r, oipOutputs(t, r.body))
	var oip struct {
		ModelName    string `json:"model_name"`
		ModelVersion string `json:"model_version"`
		ID           string `json:"id"`
	}
	json.Unmarshal([]byte(r.body), &oip)
	if oip.ModelName != "weather" || oip.ModelVersion != "1" || oip.ID != "req-7" || r.header.Get("X-Request-Id") != "req-7" {
		t.Errorf("OIP: got %+v, X-Request-Id %q", oip, r.header.Get("X-Request-Id"))
	}

	// OIP, one input per feature (in a shuffled order), with null and NaN.
	var inputs []string
	for j := len(fx.Features) - 1; j >= 0; j-- {
		var col []string
		for _, i := range rows {
			v := fx.Rows[i][j]
			switch {
			case v == nil && i%2 == 0:
				col = append(col, "null")
			case v == nil:
				col = append(col, "NaN")
			default:
				col = append(col, strconv.FormatFloat(*v, 'g', -1, 64))
			}
		}
		inputs = append(inputs, fmt.Sprintf(`{"name":%q,"shape":[%d],"datatype":"FP64","data":[%s]}`, fx.Features[j], len(rows), strings.Join(col, ",")))
	}
	r = do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", `{"inputs":[`+strings.Join(inputs, ",")+`]}`, "X-Request-Id", "from-header")
	check("OIP per feature", r, oipOutputs(t, r.body))
	if got := r.header.Get("X-Request-Id"); got != "from-header" {
		t.Errorf("X-Request-Id: got %q, want the request's", got)
	}

	// KServe V1 and MLflow take rows.
	var instances []string
	for _, i := range rows {
		var vals []string
		for _, v := range fx.Rows[i] {
			if v == nil {
				vals = append(vals, "null")
			} else {
				vals = append(vals, strconv.FormatFloat(*v, 'g', -1, 64))
			}
		}
		instances = append(instances, "["+strings.Join(vals, ",")+"]")
	}
	predictions := func(body string) []float64 {
		var v struct {
			Predictions []float64 `json:"predictions"`
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return v.Predictions
	}
	r = do(t, nil, "POST", srv.URL+"/v1/models/weather:predict", `{"instances":[`+strings.Join(instances, ",")+`]}`)
	check("KServe V1", r, predictions(r.body))
	cols, _ := json.Marshal(fx.Features)
	r = do(t, nil, "POST", srv.URL+"/serving-endpoints/weather/invocations",
		`{"dataframe_split":{"columns":`+string(cols)+`,"data":[`+strings.Join(instances, ",")+`]}}`)
	check("MLflow", r, predictions(r.body))
}

// TestMetadataRoutes covers server and model metadata, health and ready.
func TestMetadataRoutes(t *testing.T) {
	cp := weatherCP(t)
	_, srv := newRouter(t, cp, Config{Version: "1.2.3"}, false)
	for _, c := range []struct {
		path   string
		status int
		want   []string
	}{
		{"/v2", 200, []string{`"name":"mloop"`, `"version":"1.2.3"`, `"extensions":[]`}},
		{"/v2/health/live", 200, []string{`"live":true`}},
		{"/v2/health/ready", 200, []string{`"ready":true`}},
		{"/v2/models/weather", 200, []string{`"name":"weather"`, `"versions":["1"]`, `"platform":"xgboost"`,
			`{"name":"precipitation","datatype":"FP32","shape":[-1]}`, `"outputs":[{"name":"predict","datatype":"FP32","shape":[-1]}]`,
			`"objective":"binary:logistic"`}},
		{"/v2/models/weather/versions/1", 200, []string{`"name":"weather"`, `"model_version":"weather/1"`}},
		{"/v2/models/weather/versions/2", 404, []string{`serves no model version \"2\"`, `1 (primary, weather/1)`}},
		{"/v2/models/weather/ready", 200, []string{`"ready":true`}},
		{"/v2/models/weather/versions/1/ready", 200, []string{`"ready":true`}},
		{"/v1/models/weather", 200, []string{`"name":"weather"`, `"ready":true`}},
		{"/v2/models/nope", 404, []string{`no deployment \"nope\"; list them with mloop deploy list`}},
		{"/v2/models/nope/ready", 404, []string{`no deployment`}},
	} {
		r := do(t, nil, "GET", srv.URL+c.path, "")
		if r.status != c.status {
			t.Errorf("GET %s: got %d %s, want %d", c.path, r.status, r.body, c.status)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(r.body, w) {
				t.Errorf("GET %s: got %s, want it to contain %s", c.path, r.body, w)
			}
		}
	}
	if r := do(t, nil, "GET", srv.URL+"/v2/models/weather/infer", ""); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET infer: got %d, want 405", r.status)
	}
}

// TestBadRequests checks the 4xx answers and their messages.
func TestBadRequests(t *testing.T) {
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	d := newDep("weather", slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 100))
	d.Spec.MaxBatchRows = 2
	cp.put(d)
	_, srv := newRouter(t, cp, Config{MaxBodyBytes: 4096}, false)
	fx := loadFixture(t, "binary_logistic")
	oip := srv.URL + "/v2/models/weather/infer"
	for _, c := range []struct {
		name, url, body string
		status          int
		want            string
	}{
		{"malformed", oip, `{"inputs":[`, 400, `"error":`},
		{"wrong shape", oip, `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`, 400, `input 'x' has shape [1,3]`},
		{"missing feature", oip, `{"inputs":[{"name":"precipitation","shape":[1],"datatype":"FP32","data":[1]}]}`, 400, `no input for feature 'temp_max'`},
		{"not a number", oip, `{"inputs":[{"name":"x","shape":[1,7],"datatype":"FP32","data":[1,2,"a",4,5,6,7]}]}`, 400, `is not a number`},
		{"too many rows", oip, fx.oipBody("", 0, 1, 2), 400, `the limit is 2`},
		{"unknown output", oip, `{"inputs":[{"name":"x","shape":[1,7],"datatype":"FP32","data":[1,2,3,4,5,6,7]}],"outputs":[{"name":"proba"}]}`, 400, `output \"proba\" does not exist`},
		{"too large", oip, `{"inputs":[{"name":"x","shape":[1,7],"datatype":"FP32","data":[` + strings.Repeat("1,", 3000) + `1]}]}`, 413, `larger than 4096 bytes`},
		{"unknown deployment", srv.URL + "/v2/models/nope/infer", `{}`, 404, `no deployment \"nope\"; list them with mloop deploy list`},
		{"unknown version", srv.URL + "/v2/models/weather/versions/9/infer", fx.oipBody("", 0), 404, `serves no model version \"9\"`},
		{"V1 no instances", srv.URL + "/v1/models/weather:predict", `{"rows":[]}`, 400, `no \"instances\"`},
		{"V1 unknown verb", srv.URL + "/v1/models/weather:explain", `{}`, 404, `unknown KServe V1 verb`},
		{"MLflow", srv.URL + "/serving-endpoints/weather/invocations", `{"dataframe_records":[{"precipitation":1}]}`, 400, `"error_code":"BAD_REQUEST"`},
	} {
		r := do(t, nil, "POST", c.url, c.body)
		if r.status != c.status || !strings.Contains(r.body, c.want) {
			t.Errorf("%s: got %d %s, want %d with %s", c.name, r.status, r.body, c.status, c.want)
		}
	}
	// A pinned revision that does not exist.
	r := do(t, nil, "POST", oip, fx.oipBody("", 0), deploy.RevisionHeader, "7")
	if r.status != 404 || !strings.Contains(r.body, `has no revision \"7\"; it serves revisions 1 (primary, weather/1)`) {
		t.Errorf("pin 7: got %d %s", r.status, r.body)
	}
	r = do(t, nil, "POST", oip, fx.oipBody("", 0), deploy.RevisionHeader, "canary")
	if r.status != 404 || !strings.Contains(r.body, `has no revision \"canary\"`) {
		t.Errorf("pin canary: got %d %s", r.status, r.body)
	}
}

// TestRequestIDLimit checks that a client's id, from the OIP body or the
// header, native or proxied, is cut to 128 bytes on a character boundary
// in the answer's header and in the payload log, while the OIP answer
// echoes the body's id whole.
func TestRequestIDLimit(t *testing.T) {
	sink := &memSink{}
	logger := payloadlog.New(sink, payloadlog.Config{Logger: quiet()})
	logger.Start(context.Background())
	cp := weatherCP(t)
	cp.model("adder", 1, procFiles("serve", nil))
	cp.put(newDep("sum", slot(deploy.RolePrimary, 1, "adder", 1, "process", 100)))
	_, srv := newRouter(t, cp, Config{Payloads: logger}, false)
	fx := loadFixture(t, "binary_logistic")
	long := strings.Repeat("é", 5000) // 2 bytes each
	want := strings.Repeat("é", maxRequestID/2)
	r := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody(long, 0))
	if r.status != 200 || r.header.Get("X-Request-Id") != want {
		t.Errorf("native OIP: got %d, X-Request-Id of %d bytes, want %d", r.status, len(r.header.Get("X-Request-Id")), len(want))
	}
	var echo struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(r.body), &echo); err != nil || echo.ID != long {
		t.Errorf("native OIP: the answer's id has %d bytes (%v), want the request's %d", len(echo.ID), err, len(long))
	}
	r = do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody("", 0), "X-Request-Id", "a"+long)
	if got := r.header.Get("X-Request-Id"); r.status != 200 || got != "a"+want[:len(want)-2] {
		t.Errorf("header id: got %d, X-Request-Id %q", r.status, got)
	}
	r = do(t, nil, "POST", srv.URL+"/v2/models/sum/infer",
		`{"id":"`+long+`","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`)
	if r.status != 200 || r.header.Get("X-Request-Id") != want {
		t.Errorf("proxied OIP: got %d %s, X-Request-Id of %d bytes", r.status, r.body, len(r.header.Get("X-Request-Id")))
	}
	if err := logger.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, recs := range sink.records(t) {
		for _, rec := range recs {
			n++
			if len(rec.RequestID) > maxRequestID || !utf8.ValidString(rec.RequestID) {
				t.Errorf("a record's request id has %d bytes (valid UTF-8: %v)", len(rec.RequestID), utf8.ValidString(rec.RequestID))
			}
		}
	}
	if n != 3 {
		t.Errorf("got %d records, want 3", n)
	}
}

// TestProxiedHugeShape sends a process model a small body whose shape
// claims millions of columns, with the payload log off and on: the
// router's memory stays in proportion to the body.
func TestProxiedHugeShape(t *testing.T) {
	for _, logged := range []bool{false, true} {
		cfg := Config{MaxBodyBytes: 64 << 20}
		if logged {
			logger := payloadlog.New(discardSink{}, payloadlog.Config{Logger: quiet()})
			logger.Start(context.Background())
			defer logger.Close(context.Background())
			cfg.Payloads = logger
		}
		cp := newFakeCP()
		cp.model("adder", 1, procFiles("serve", nil))
		cp.put(newDep("sum", slot(deploy.RolePrimary, 1, "adder", 1, "process", 100)))
		r, _ := newRouter(t, cp, cfg, false)
		body := `{"id":"huge","parameters":{"pad":"` + strings.Repeat("x", 8<<20) + `"},"inputs":[{"name":"x","shape":[1,4194304],"datatype":"FP32","data":[1]}]}`
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		rec := httptest.NewRecorder()
		r.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/v2/models/sum/infer", strings.NewReader(body)))
		runtime.ReadMemStats(&after)
		if rec.Code != 400 {
			t.Errorf("logged %v: got %d %s, want the process's 400", logged, rec.Code, rec.Body)
		}
		// The body is read once and sent once (8 MiB each, plus the
		// buffers' growth); decoding 4194304 named columns took 216 MB.
		if got := after.TotalAlloc - before.TotalAlloc; got > 100<<20 {
			t.Errorf("logged %v: the request allocated %d MB", logged, got>>20)
		}
	}
}
