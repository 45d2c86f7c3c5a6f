package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/client"
	"github.com/mloop/mloop/internal/serving/deploy"
)

// weatherCase is a few rows of the XGBoost runtime's weather fixture with
// XGBoost's own predictions for binary_logistic.json.
type weatherCase struct {
	Features    []string     `json:"features"`
	Rows        [][]*float64 `json:"rows"`
	Predictions [][]float64  `json:"predictions"`
}

// loadWeatherCase reads the first n rows of binary_logistic's expectations.
func loadWeatherCase(t *testing.T, n int) weatherCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "internal", "serving", "xgboost", "testdata", "binary_logistic.expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c weatherCase
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	c.Rows, c.Predictions = c.Rows[:n], c.Predictions[:n]
	return c
}

// cell writes a feature value as JSON, a missing one as missing.
func cell(v *float64, missing string) string {
	if v == nil {
		return missing
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}

// inputFiles writes the rows in each input form mloop predict reads and
// returns form → file.
func (c weatherCase) inputFiles(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	var flat, rows, records []string
	csv := strings.Join(c.Features, ",") + "\n"
	for _, r := range c.Rows {
		var row, rec, line []string
		for j, v := range r {
			flat = append(flat, cell(v, "NaN")) // Python's literal
			row = append(row, cell(v, "null"))
			rec = append(rec, fmt.Sprintf("%q: %s", c.Features[j], cell(v, "null")))
			line = append(line, cell(v, ""))
		}
		rows = append(rows, "["+strings.Join(row, ", ")+"]")
		records = append(records, "{"+strings.Join(rec, ", ")+"}")
		csv += strings.Join(line, ",") + "\n"
	}
	files := map[string]string{
		"oip":    fmt.Sprintf(`{"id": "cli-1", "inputs": [{"name": "input", "shape": [%d, %d], "datatype": "FP64", "data": [%s]}]}`, len(c.Rows), len(c.Features), strings.Join(flat, ", ")),
		"v1":     `{"instances": [` + strings.Join(rows, ", ") + `]}`,
		"mlflow": `{"dataframe_records": [` + strings.Join(records, ", ") + `]}`,
		"csv":    csv,
	}
	out := map[string]string{}
	for form, content := range files {
		ext := ".json"
		if form == "csv" {
			ext = ".csv"
		}
		p := filepath.Join(dir, form+ext)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		out[form] = p
	}
	return out
}

// answeredBy matches the last line of mloop predict's output.
var answeredBy = regexp.MustCompile(`(?m)^answered by revision (\S+) \(model (\S+)\), request (\S+)$`)

// checkPredictions checks mloop predict's readable output against XGBoost's
// predictions and returns the revision and model version that answered.
func (c weatherCase) checkPredictions(t *testing.T, out string) (string, string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(c.Rows)+1 {
		t.Fatalf("got %d lines, want %d rows and who answered:\n%s", len(lines), len(c.Rows), out)
	}
	for i, want := range c.Predictions {
		idx, val, ok := strings.Cut(lines[i], "\t")
		got, err := strconv.ParseFloat(val, 64)
		if !ok || idx != strconv.Itoa(i) || err != nil || math.Abs(got-want[0]) > 1e-6 {
			t.Errorf("row %d: got %q, want %d\t%v (XGBoost's prediction)", i, lines[i], i, want[0])
		}
	}
	m := answeredBy.FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("last line %q does not say who answered", lines[len(lines)-1])
	}
	return m[1], m[2]
}

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// registerWeather registers binary_logistic.json as weather version 1 and
// missing.json (same features) as version 2.
func registerWeather(t *testing.T, m *Main) {
	t.Helper()
	for _, fixture := range []string{"binary_logistic.json", "missing.json"} {
		dir := t.TempDir()
		xgbFixture(t, fixture, dir, "model.json")
		if code, out, errs := execModel(t, m, "register", "weather", dir); code != exitOK {
			t.Fatalf("register %s: exit %d\n%s%s", fixture, code, out, errs)
		}
	}
}

func TestDeployCLI(t *testing.T) {
	m := MustOpenMain(t)
	registerWeather(t, m)
	wc := loadWeatherCase(t, 3)
	inputs := wc.inputFiles(t)

	// Create waits until the server's data plane serves the deployment.
	out, errs := mustCLI(t, m, exitOK, "deploy", "create", "weather", "--model", "weather@1", "--wait-timeout", "2m")
	if !strings.Contains(out, "created deployment weather (generation 1)") || !regexp.MustCompile(`primary\s+1\s+weather/1\s+weather@1\s+xgboost\s+100%`).MatchString(out) ||
		!strings.Contains(out, "mloop predict weather --input FILE") {
		t.Errorf("create: got\n%s", out)
	}
	if !strings.Contains(errs, "serves generation 1") {
		t.Errorf("create: progress on stderr %q does not say it is served", errs)
	}

	// The same rows in every form mloop predict reads get XGBoost's predictions.
	for _, form := range []string{"oip", "v1", "mlflow", "csv"} {
		out, _ := mustCLI(t, m, exitOK, "predict", "weather", "--input", inputs[form])
		if rev, mv := wc.checkPredictions(t, out); rev != "1" || mv != "weather/1" {
			t.Errorf("%s: answered by revision %s model %s, want 1 and weather/1", form, rev, mv)
		}
	}
	// Standard input, and the server's own answer with --json.
	data, _ := os.ReadFile(inputs["oip"])
	var stdout, stderr bytes.Buffer
	if code := runPredict(context.Background(), []string{"weather", "--input", "-", "--json", "--server", m.URL()}, &stdout, &stderr, bytes.NewReader(data)); code != exitOK {
		t.Fatalf("predict from stdin: exit %d: %s", code, stderr.String())
	}
	var oip struct {
		ID      string `json:"id"`
		Outputs []struct {
			Shape []int     `json:"shape"`
			Data  []float64 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &oip); err != nil || oip.ID != "cli-1" || len(oip.Outputs) != 1 || len(oip.Outputs[0].Data) != 3 {
		t.Errorf("predict --json: got %s (%v), want the OIP answer echoing id cli-1", stdout.String(), err)
	}

	// A canary at 50%: both revisions answer, and a pinned request goes to the canary.
	out, _ = mustCLI(t, m, exitOK, "deploy", "update", "weather", "--canary", "weather@2", "--canary-percent", "50")
	if !strings.Contains(out, "updated deployment weather (generation 2)") || !regexp.MustCompile(`canary\s+2\s+weather/2\s+weather@2\s+xgboost\s+50%`).MatchString(out) {
		t.Errorf("update: got\n%s", out)
	}
	out, _ = mustCLI(t, m, exitOK, "predict", "weather", "--input", inputs["v1"], "--revision", "canary")
	if m := answeredBy.FindStringSubmatch(out); m == nil || m[1] != "2" || m[2] != "weather/2" {
		t.Errorf("pinned to the canary: got\n%s", out)
	}
	seen := map[string]int{}
	for range 40 {
		out, _ := mustCLI(t, m, exitOK, "predict", "weather", "--input", inputs["csv"])
		if m := answeredBy.FindStringSubmatch(out); m != nil {
			seen[m[1]]++
		}
	}
	if seen["1"] == 0 || seen["2"] == 0 || seen["1"]+seen["2"] != 40 {
		t.Errorf("40 requests at 50%% canary: answered by %v, want both revisions 1 and 2", seen)
	}

	out, _ = mustCLI(t, m, exitOK, "deploy", "show", "weather")
	for _, want := range []string{"deployment: weather", "generation: 2", "canary weather@2 50%", "serving on this server: ready, generation 2", "latest events:", "updated", "created"} {
		if !strings.Contains(out, want) {
			t.Errorf("show: missing %q in\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^\s+2\s+canary\s+weather/2\s+ready\s+[1-9]`).MatchString(out) {
		t.Errorf("show: no serving line for the canary with its requests in\n%s", out)
	}
	out, _ = mustCLI(t, m, exitOK, "deploy", "show", "weather", "--json")
	details := decodeJSON[client.DeploymentDetails](t, out)
	if details.Deployment == nil || details.Deployment.Generation != 2 || details.Serving == nil || len(details.Serving.Revisions) != 2 || len(details.Events) != 2 {
		t.Errorf("show --json: got %s", out)
	}
	out, _ = mustCLI(t, m, exitOK, "deploy", "list")
	if !regexp.MustCompile(`(?m)^weather\s+weather/1\s+weather/2 50%\s+-\s+2\s`).MatchString(out) {
		t.Errorf("list: got\n%s", out)
	}
	out, _ = mustCLI(t, m, exitOK, "deploy", "list", "--json")
	if l := decodeJSON[map[string][]deploy.Deployment](t, out)["deployments"]; len(l) != 1 || l[0].Name != "weather" {
		t.Errorf("list --json: got %s", out)
	}

	// Promote: the canary's revision takes all traffic.
	out, _ = mustCLI(t, m, exitOK, "deploy", "promote", "weather")
	if !strings.Contains(out, "promoted the canary of weather (generation 3): revision 2 (weather/2) serves all traffic") {
		t.Errorf("promote: got\n%s", out)
	}
	_, errs = mustCLI(t, m, exitFailure, "deploy", "promote", "weather")
	if !strings.Contains(errs, "mloop deploy update weather --canary") {
		t.Errorf("promote without a canary: stderr %q does not say what to do", errs)
	}
	out, _ = mustCLI(t, m, exitOK, "predict", "weather", "--input", inputs["mlflow"])
	if m := answeredBy.FindStringSubmatch(out); m == nil || m[1] != "2" {
		t.Errorf("after promote: got\n%s", out)
	}

	// Rollback: back to weather/1, as JSON.
	out, _ = mustCLI(t, m, exitOK, "deploy", "rollback", "weather", "--reason", "worse on rainy days", "--json")
	d := decodeJSON[deploy.Deployment](t, out)
	if p := d.Slot(deploy.RolePrimary); p == nil || p.Version != 1 || d.Generation != 4 {
		t.Fatalf("rollback --json: got %s", out)
	}
	waitUntil(t, "the rollback to be served", time.Minute, func() bool {
		out, _ := mustCLI(t, m, exitOK, "predict", "weather", "--input", inputs["oip"])
		m := answeredBy.FindStringSubmatch(out)
		return m != nil && m[2] == "weather/1"
	})
	out, _ = mustCLI(t, m, exitOK, "predict", "weather", "--input", inputs["oip"])
	if _, mv := wc.checkPredictions(t, out); mv != "weather/1" {
		t.Errorf("after the rollback: answered by %s, want weather/1", mv)
	}
	out, _ = mustCLI(t, m, exitOK, "deploy", "events", "weather", "--limit", "3")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "rolled_back") || !strings.Contains(lines[1], "worse on rainy days") || !strings.Contains(lines[2], "promoted") {
		t.Errorf("events --limit 3: got\n%s", out)
	}
	out, _ = mustCLI(t, m, exitOK, "deploy", "events", "weather", "--json")
	if evs := decodeJSON[map[string][]deploy.Event](t, out)["events"]; len(evs) != 4 || evs[3].Type != deploy.EventCreated {
		t.Errorf("events --json: got %s", out)
	}

	// Update changes only what is given: the rollback policy and batching
	// are merged with the current ones.
	mustCLI(t, m, exitOK, "deploy", "update", "weather", "--rollback-min-requests", "50", "--batch-size", "32", "--batch-delay", "1ms", "--wait=false")
	out, _ = mustCLI(t, m, exitOK, "deploy", "update", "weather", "--rollback-window", "45s", "--json")
	d = decodeJSON[deploy.Deployment](t, out)
	if rb := d.Spec.Rollback; time.Duration(rb.Window) != 45*time.Second || rb.MinRequests != 50 || d.Spec.Batching.MaxBatchSize != 32 ||
		time.Duration(d.Spec.Batching.MaxDelay) != time.Millisecond || d.Spec.Model.String() != "weather@1" {
		t.Errorf("merged update: got spec %+v", d.Spec)
	}

	// Delete: the deployment is gone, from the API and from the data plane.
	out, _ = mustCLI(t, m, exitOK, "deploy", "delete", "weather")
	if out != "deleted deployment weather\n" {
		t.Errorf("delete: got %q", out)
	}
	_, errs = mustCLI(t, m, exitFailure, "deploy", "show", "weather")
	if !strings.Contains(errs, "mloop deploy list") {
		t.Errorf("show after delete: stderr %q", errs)
	}
	waitUntil(t, "the data plane to drop the deployment", time.Minute, func() bool {
		code, _, errs := execCLI(context.Background(), m, "predict", "weather", "--input", inputs["oip"])
		return code == exitFailure && strings.Contains(errs, "404")
	})
	out, _ = mustCLI(t, m, exitOK, "deploy", "list")
	if !strings.Contains(out, "no deployments yet") {
		t.Errorf("list after delete: got %q", out)
	}

	// Served requests were logged to the artifact store; Close writes them.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(m.Config.DataDir, "artifacts", "payloads", "weather", "*", "*", "*", "*", "*.ndjson.zst"))
	if len(segs) == 0 {
		t.Errorf("no payload log segments under %s", filepath.Join(m.Config.DataDir, "artifacts", "payloads", "weather"))
	}
}

func TestDeployCLIErrors(t *testing.T) {
	m := MustOpenMain(t)
	registerWeather(t, m)
	wc := loadWeatherCase(t, 2)
	inputs := wc.inputFiles(t)
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"rows": [[1, 2]]}`), 0o644)

	for _, args := range [][]string{
		{"deploy"},
		{"deploy", "nope"},
		{"deploy", "create"},
		{"deploy", "create", "weather"},
		{"deploy", "create", "weather", "--model", "weather"},
		{"deploy", "create", "weather", "--model", "weather@0"},
		{"deploy", "create", "weather", "--model", "weather@1", "--canary", "weather@2"},
		{"deploy", "create", "weather", "--model", "weather@1", "--canary-percent", "10"},
		{"deploy", "create", "weather", "--model", "weather@1", "--canary", "weather@2", "--canary-percent", "101"},
		{"deploy", "create", "weather", "--model", "weather@1", "--payload-sample", "2"},
		{"deploy", "create", "weather", "--model", "weather@1", "--batch-size", "-1"},
		{"deploy", "create", "a", "b", "--model", "weather@1"},
		{"deploy", "update", "weather"},
		{"deploy", "update", "weather", "--no-canary", "--canary", "weather@2"},
		{"deploy", "update", "weather", "--no-shadow", "--shadow", "weather@2"},
		{"deploy", "update", "weather", "--model", "nope"},
		{"deploy", "events", "weather", "--limit", "0"},
		{"deploy", "show"},
		{"predict"},
		{"predict", "weather"},
		{"predict", "weather", "--input", filepath.Join(t.TempDir(), "missing.json")},
		{"predict", "weather", "--input", bad},
		{"predict", "weather", "--input", inputs["oip"], "--format", "xml"},
	} {
		code, out, errs := execCLI(context.Background(), m, args...)
		if code != exitUsage {
			t.Errorf("mloop %s: got exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, exitUsage, out, errs)
		}
	}
	for _, args := range [][]string{
		{"serve", "--control-plane", ""},
		{"serve", "extra"},
		{"serve", "--log-level", "loud"},
		{"server", "--serving", "maybe"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != exitUsage {
			t.Errorf("mloop %s: got exit %d, want %d\nstderr: %s", strings.Join(args, " "), code, exitUsage, errb.String())
		}
	}
	// A replica whose control plane cannot be reached fails with a hint.
	var sout, serr bytes.Buffer
	if code := run(context.Background(), []string{"serve", "--control-plane", "http://127.0.0.1:1", "--addr", "127.0.0.1:0"}, &sout, &serr); code != exitFailure || !strings.Contains(serr.String(), "is the server running?") {
		t.Errorf("serve without a control plane: got exit %d, stderr %q", code, serr.String())
	}

	// Failures: exit 1 with what to do next.
	_, errs := mustCLI(t, m, exitFailure, "deploy", "create", "weather", "--model", "weather@9")
	if !strings.Contains(errs, "mloop model register") {
		t.Errorf("missing version: stderr %q", errs)
	}
	mustCLI(t, m, exitOK, "deploy", "create", "weather", "--model", "weather@1", "--wait=false")
	_, errs = mustCLI(t, m, exitFailure, "deploy", "create", "weather", "--model", "weather@1")
	if !strings.Contains(errs, "mloop deploy update weather") {
		t.Errorf("create twice: stderr %q", errs)
	}
	_, errs = mustCLI(t, m, exitFailure, "deploy", "rollback", "weather")
	if !strings.Contains(errs, "mloop deploy show weather") {
		t.Errorf("nothing to roll back to: stderr %q", errs)
	}
	for _, args := range [][]string{{"deploy", "show", "ghost"}, {"deploy", "promote", "ghost"}, {"deploy", "delete", "ghost"}, {"deploy", "update", "ghost", "--canary-percent", "5"}} {
		_, errs := mustCLI(t, m, exitFailure, args...)
		if !strings.Contains(errs, "mloop deploy list") {
			t.Errorf("mloop %s: stderr %q does not point at mloop deploy list", strings.Join(args, " "), errs)
		}
	}
	waitUntil(t, "the deployment to be served", time.Minute, func() bool {
		code, _, _ := execCLI(context.Background(), m, "predict", "weather", "--input", inputs["v1"])
		return code == exitOK
	})
	// A body that does not fit the model: the server's 400 names the input.
	short := filepath.Join(t.TempDir(), "short.json")
	os.WriteFile(short, []byte(`{"instances": [[1, 2, 3]]}`), 0o644)
	_, errs = mustCLI(t, m, exitFailure, "predict", "weather", "--input", short)
	if !strings.Contains(errs, "400") {
		t.Errorf("wrong shape: stderr %q does not carry the server's 400", errs)
	}

	// A model that cannot start: create reports the reason and exits 1;
	// the deployment exists and the data plane keeps retrying.
	broken := t.TempDir()
	writeFiles(t, broken, map[string]string{"serve.json": `{"command": ["/bin/sh", "-c", "echo no model here >&2; exit 3"]}`})
	if code, out, errs := execModel(t, m, "register", "broken", broken, "--flavor", "process"); code != exitOK {
		t.Fatalf("register the broken model: exit %d\n%s%s", code, out, errs)
	}
	_, errs = mustCLI(t, m, exitFailure, "deploy", "create", "broken", "--model", "broken@1", "--wait-timeout", "2m")
	if !strings.Contains(errs, "no model here") || !strings.Contains(errs, "mloop deploy show broken") {
		t.Errorf("create of a model that cannot start: stderr %q does not give the reason and what to do", errs)
	}
	out, _ := mustCLI(t, m, exitOK, "deploy", "show", "broken")
	if !regexp.MustCompile(`(?m)^\s+1\s+primary\s+broken/1\s+failed`).MatchString(out) || !strings.Contains(out, "no model here") {
		t.Errorf("show of the broken deployment: got\n%s", out)
	}

	// An unreachable server.
	var lout, lerr bytes.Buffer
	if code := run(context.Background(), []string{"deploy", "list", "--server", "http://127.0.0.1:1"}, &lout, &lerr); code != exitFailure || !strings.Contains(lerr.String(), "is the server running?") {
		t.Errorf("unreachable server: got exit %d, stderr %q", code, lerr.String())
	}
}

// TestServeReplica runs `mloop serve` beside the server: it serves the
// server's deployments at its own address and follows their changes.
func TestServeReplica(t *testing.T) {
	m := MustOpenMain(t)
	registerWeather(t, m)
	wc := loadWeatherCase(t, 3)
	inputs := wc.inputFiles(t)
	mustCLI(t, m, exitOK, "deploy", "create", "weather", "--model", "weather@1")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	code := make(chan int, 1)
	artifacts := filepath.Join(m.Config.DataDir, "artifacts")
	go func() {
		code <- run(ctx, []string{"serve", "--control-plane", m.URL(), "--addr", "127.0.0.1:0", "--artifacts", artifacts, "--log-level", "warn"}, &out, &errb)
	}()
	listening := regexp.MustCompile(`mloop serve listening on (http://\S+),`)
	var replica string
	waitUntil(t, "mloop serve to listen", time.Minute, func() bool {
		select {
		case c := <-code:
			t.Fatalf("mloop serve exited with %d: %s", c, errb.String())
		default:
		}
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			replica = m[1]
			return true
		}
		return false
	})

	predictAt := func(server, file string) (string, string) {
		var o, e bytes.Buffer
		if c := runPredict(context.Background(), []string{"weather", "--input", file, "--server", server}, &o, &e, nil); c != exitOK {
			t.Fatalf("predict at %s: exit %d: %s", server, c, e.String())
		}
		return wc.checkPredictions(t, o.String())
	}
	// The replica loaded the deployment before it listened.
	if rev, mv := predictAt(replica, inputs["oip"]); rev != "1" || mv != "weather/1" {
		t.Errorf("replica: answered by revision %s model %s, want 1 and weather/1", rev, mv)
	}
	for _, p := range []string{"/healthz", "/v2/health/ready", "/v2/models/weather/ready"} {
		if text, status := httpGet(t, replica+p); status != 200 {
			t.Errorf("replica GET %s: %d %s", p, status, text)
		}
	}

	// A change on the server reaches the replica.
	mustCLI(t, m, exitOK, "deploy", "update", "weather", "--model", "weather@2")
	waitUntil(t, "the replica to serve weather/2", time.Minute, func() bool {
		var o, e bytes.Buffer
		runPredict(context.Background(), []string{"weather", "--input", inputs["v1"], "--server", replica}, &o, &e, nil)
		m := answeredBy.FindStringSubmatch(o.String())
		return m != nil && m[2] == "weather/2"
	})

	metrics, status := httpGet(t, replica+"/metrics")
	for _, want := range []string{"go_goroutines", "process_cpu_seconds_total", `mloop_serving_requests_total{`, `deployment="weather"`, "mloop_payload_log_queue_depth"} {
		if status != 200 || !strings.Contains(metrics, want) {
			t.Errorf("replica /metrics: missing %s (status %d)", want, status)
		}
	}

	cancel()
	if c := <-code; c != exitOK {
		t.Fatalf("mloop serve exit: got %d (%s), want 0", c, errb.String())
	}
	// The replica wrote its payload log to the server's artifact store on exit.
	segs, _ := filepath.Glob(filepath.Join(artifacts, "payloads", "weather", "*", "*", "*", "*", "*.ndjson.zst"))
	if len(segs) == 0 {
		t.Errorf("mloop serve --artifacts wrote no payload log segment")
	}
}

// httpGet returns a GET's body and status.
func httpGet(t *testing.T, url string) (string, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

// TestServerControlPlaneOnly runs the server with --serving=false: it
// manages deployments but serves none, and says so.
func TestServerControlPlaneOnly(t *testing.T) {
	m := NewMain()
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DataDir = t.TempDir()
	m.Config.Serving = false
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	registerWeather(t, m)
	_, errs := mustCLI(t, m, exitOK, "deploy", "create", "weather", "--model", "weather@1")
	if !strings.Contains(errs, "does not serve models") || !strings.Contains(errs, "mloop serve --control-plane "+m.URL()) {
		t.Errorf("create on a control plane: stderr %q does not say it is not served here", errs)
	}
	text, status := httpGet(t, m.URL()+"/v2/models/weather/ready")
	if status != 404 || !strings.Contains(text, "does not serve models") {
		t.Errorf("GET /v2/models/weather/ready: got %d %s", status, text)
	}
	out, _ := mustCLI(t, m, exitOK, "deploy", "show", "weather")
	if !strings.Contains(out, "serving on this server: not loaded") {
		t.Errorf("show: got\n%s", out)
	}
	if text, status := httpGet(t, m.URL()+"/metrics"); status != 200 || !strings.Contains(text, "go_goroutines") {
		t.Errorf("GET /metrics: got %d", status)
	}
}
