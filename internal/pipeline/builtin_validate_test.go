package pipeline_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/pipeline"
)

const flightsSchema = `columns:
  - {name: origin, type: string, nullable: false, domain: [LAX, SFO]}
  - {name: delay, type: integer, nullable: false, min: 0, max: 600}
expectations:
  - {kind: regex, column: origin, pattern: "^[A-Z]{3}$"}
`

// mustPushCSV pushes content as a one-file version of dataset name, as
// `mloop data push` does (the service profiles it), and returns the version
// with the local folder holding its file, as the runner materializes it.
func (e *builtinEnv) mustPushCSV(tb testing.TB, name, content string) (*dataset.Version, string) {
	tb.Helper()
	ctx := context.Background()
	sum := sha256.Sum256([]byte(content))
	digest := hex.EncodeToString(sum[:])
	if _, _, err := e.datasets.Blobs.Put(ctx, digest, strings.NewReader(content)); err != nil {
		tb.Fatalf("put blob: %v", err)
	}
	v, _, err := e.datasets.CreateVersion(ctx, name, dataset.CreateRequest{Files: []dataset.File{{
		Path: "data/flights.csv", SHA256: digest, Size: int64(len(content)), Format: dataset.FormatCSV,
		Rows: int64(strings.Count(content, "\n") - 1)}}})
	if err != nil {
		tb.Fatalf("create version: %v", err)
	}
	dir := tb.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "flights.csv"), []byte(content), 0o444); err != nil {
		tb.Fatal(err)
	}
	return v, dir
}

// validateRun runs a validate step configured by with on version v whose
// files are in dir.
func (e *builtinEnv) validateRun(tb testing.TB, with string, v *dataset.Version, dir, projectDir string) (*pipeline.BuiltinContext, *dataset.Report, error) {
	tb.Helper()
	st := mustStep(tb, `name: p
steps:
  validate:
    uses: validate
    inputs: {data: "data://`+v.Dataset+`@latest"}
    outputs: {report: {path: report.json}}
    with: `+with+"\n", "validate")
	b := e.svc.Builtins["validate"]
	if err := b.Check(st); err != nil {
		tb.Fatalf("Check: %v", err)
	}
	// The runner pins the version without its profile.
	pinned := *v
	pinned.Profile = nil
	out := filepath.Join(tb.TempDir(), "report.json")
	bc := &pipeline.BuiltinContext{
		Service: e.svc, Run: &pipeline.Run{ID: "pr-00000000000b", ProjectDir: projectDir}, Step: st,
		StepRun: &pipeline.StepRun{Name: "validate"},
		Inputs: map[string]pipeline.ResolvedInput{"data": {Name: "data", Kind: pipeline.InputData, Path: dir,
			Hash: v.Digest, Dataset: &pinned}},
		Outputs: map[string]string{"report": out},
		Log:     &bytes.Buffer{},
	}
	err := b.Run(context.Background(), bc)
	data, rerr := os.ReadFile(out)
	if rerr != nil {
		return bc, nil, err
	}
	var rep dataset.Report
	if jerr := json.Unmarshal(data, &rep); jerr != nil {
		tb.Fatalf("report JSON: %v", jerr)
	}
	return bc, &rep, err
}

func TestValidateStoredSchema(t *testing.T) {
	e := mustBuiltinEnv(t)
	ctx := context.Background()
	good, goodDir := e.mustPushCSV(t, "flights", "origin,delay\nSFO,10\nLAX,20\nSFO,0\n")

	// No schema yet: a clear error saying what to do.
	_, _, err := e.validateRun(t, "{}", good, goodDir, t.TempDir())
	if err == nil || mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), "mloop data schema flights --set FILE") {
		t.Fatalf("without a schema: %v", err)
	}

	if err := e.datasets.SetSchema(ctx, "flights", []byte(flightsSchema)); err != nil {
		t.Fatalf("set schema: %v", err)
	}
	bc, rep, err := e.validateRun(t, "{}", good, goodDir, t.TempDir())
	if err != nil {
		t.Fatalf("good data: %v\n%s", err, bc.Log)
	}
	if rep.Errors != 0 || rep.Rows != 3 {
		t.Errorf("report = %+v, want no errors and 3 rows", rep)
	}
	if bc.Metrics["validate.errors"] != 0 || bc.Metrics["validate.rows"] != 3 {
		t.Errorf("metrics = %v", bc.Metrics)
	}

	bad, badDir := e.mustPushCSV(t, "flights", "origin,delay\nSFO,10\nJFK,-5\nsfo,3\n")
	bc, rep, err = e.validateRun(t, "{}", bad, badDir, t.TempDir())
	if err == nil {
		t.Fatalf("bad data passed:\n%s", bc.Log)
	}
	for _, s := range []string{"flights@2 does not fit its schema", "3 errors", "origin"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	kinds := map[dataset.AnomalyKind]bool{}
	for _, a := range rep.Anomalies {
		kinds[a.Kind] = true
	}
	if !kinds[dataset.AnomalyOutOfDomain] || !kinds[dataset.AnomalyOutOfRange] || rep.Errors != 3 {
		t.Errorf("anomalies = %+v (errors %d), want out of domain and out of range, and the failed regex", rep.Anomalies, rep.Errors)
	}
	if want := filepath.Join(badDir, "data", "flights.csv"); len(rep.Scanned) != 1 || rep.Scanned[0] != want {
		t.Errorf("scanned %v, want the materialized file %s", rep.Scanned, want)
	}
	if bc.Metrics["validate.errors"] != 3 {
		t.Errorf("metrics = %v", bc.Metrics)
	}
	if log := bc.Log.(*bytes.Buffer).String(); !strings.Contains(log, "JFK") {
		t.Errorf("log does not show the anomalies:\n%s", log)
	}
}

func TestValidateSchemaFileAndFailOn(t *testing.T) {
	e := mustBuiltinEnv(t)
	v, dir := e.mustPushCSV(t, "trips", "origin,delay\nSFO,10\nJFK,20\n")
	project := t.TempDir()
	warnOnly := strings.Replace(flightsSchema, "domain: [LAX, SFO]}", "domain: [LAX, SFO], severity: warning}", 1)
	if err := os.WriteFile(filepath.Join(project, "schema.yaml"), []byte(warnOnly), 0o644); err != nil {
		t.Fatal(err)
	}
	bc, rep, err := e.validateRun(t, "{schema: schema.yaml}", v, dir, project)
	if err != nil || rep.Warnings != 1 || rep.Errors != 0 {
		t.Fatalf("fail_on error with a warning: err %v, report %+v\n%s", err, rep, bc.Log)
	}
	if bc.Metrics["validate.warnings"] != 1 {
		t.Errorf("metrics = %v", bc.Metrics)
	}
	_, _, err = e.validateRun(t, "{schema: schema.yaml, fail_on: warning}", v, dir, project)
	if err == nil || !strings.Contains(err.Error(), "1 warning") || !strings.Contains(err.Error(), "JFK") {
		t.Fatalf("fail_on warning: %v", err)
	}
	_, _, err = e.validateRun(t, "{schema: missing.yaml}", v, dir, project)
	if err == nil || !strings.Contains(err.Error(), "read schema") {
		t.Fatalf("missing schema file: %v", err)
	}
}

func TestValidateCacheKeyFollowsStoredSchema(t *testing.T) {
	e := mustBuiltinEnv(t)
	ctx := context.Background()
	e.mustPushCSV(t, "flights", "origin,delay\nSFO,10\n")
	st := mustStep(t, `name: p
steps:
  validate:
    uses: validate
    inputs: {data: data://flights@latest}
`, "validate")
	ck := e.svc.Builtins["validate"].(pipeline.CacheKeyer)
	key := func() string {
		m, err := ck.CacheKeyExtra(ctx, e.svc, nil, st, nil)
		if err != nil {
			t.Fatalf("CacheKeyExtra: %v", err)
		}
		return m["schema"]
	}
	if k := key(); k != "none" {
		t.Errorf("no schema: %q", k)
	}
	if err := e.datasets.SetSchema(ctx, "flights", []byte(flightsSchema)); err != nil {
		t.Fatal(err)
	}
	k1 := key()
	if err := e.datasets.SetSchema(ctx, "flights", []byte(strings.Replace(flightsSchema, "600", "900", 1))); err != nil {
		t.Fatal(err)
	}
	if k2 := key(); !strings.HasPrefix(k1, "sha256:") || k1 == k2 {
		t.Errorf("keys %q then %q: want a new key for a new schema", k1, k2)
	}
}

func TestValidateCacheKeyFollowsSchemaFile(t *testing.T) {
	e := mustBuiltinEnv(t)
	ctx := context.Background()
	e.mustPushCSV(t, "flights", "origin,delay\nSFO,10\n")
	st := mustStep(t, `name: p
steps:
  validate:
    uses: validate
    inputs: {data: data://flights@latest}
    with: {schema: schema.yaml}
`, "validate")
	dir := t.TempDir()
	run := &pipeline.Run{ProjectDir: dir}
	ck := e.svc.Builtins["validate"].(pipeline.CacheKeyer)
	key := func() string {
		m, err := ck.CacheKeyExtra(ctx, e.svc, run, st, nil)
		if err != nil {
			t.Fatalf("CacheKeyExtra: %v", err)
		}
		return m["schema"]
	}
	if _, err := ck.CacheKeyExtra(ctx, e.svc, run, st, nil); mloop.ErrorCode(err) != mloop.EINVALID {
		t.Fatalf("missing with.schema file: got %v, want EINVALID", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "schema.yaml"), []byte(flightsSchema), 0o644); err != nil {
		t.Fatal(err)
	}
	k1 := key()
	if err := os.WriteFile(filepath.Join(dir, "schema.yaml"), []byte(strings.Replace(flightsSchema, "600", "900", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if k2 := key(); !strings.HasPrefix(k1, "sha256:") || k1 == k2 {
		t.Errorf("keys %q then %q: want a new key after editing the schema file", k1, k2)
	}
}
