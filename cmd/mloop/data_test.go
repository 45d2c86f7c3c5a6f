package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/client"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/realdata"
	"github.com/parquet-go/parquet-go"
)

// execData runs `mloop data ARGS… --server URL` against m and returns the
// exit code and both outputs.
func execData(t *testing.T, m *Main, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{"data"}, args...)
	args = append(args, "--server", m.URL())
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// mustData runs a data command that must succeed and returns its stdout.
func mustData(t *testing.T, m *Main, args ...string) string {
	t.Helper()
	code, out, errs := execData(t, m, args...)
	if code != exitOK {
		t.Fatalf("mloop data %s: got exit %d, want 0\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// decodeJSON decodes s into a fresh value of type T.
func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not the JSON expected: %v\n%s", err, s)
	}
	return v
}

// writeFiles writes files (relative path → content) below dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sensor is a row of the Parquet file the tests push.
type sensor struct {
	ID    int64   `parquet:"id"`
	Kind  string  `parquet:"kind"`
	Value float64 `parquet:"value"`
}

func writeSensorParquet(t *testing.T, path string, n int) {
	t.Helper()
	rows := make([]sensor, n)
	for i := range rows {
		rows[i] = sensor{ID: int64(i), Kind: []string{"a", "b", "c"}[i%3], Value: float64(i) / 10}
	}
	if err := parquet.WriteFile(path, rows); err != nil {
		t.Fatal(err)
	}
}

func TestDataPushListShowPull(t *testing.T) {
	m := MustOpenMain(t)
	src := filepath.Join(t.TempDir(), "points")
	writeFiles(t, src, map[string]string{
		"2024/jan.csv": "city,temp,ok\nOslo,-3.5,true\nRome,12,false\nOslo,-1,true\n",
		"2024/feb.csv": "city,temp,ok\nRome,14.5,true\nLima,22,true\n",
		".hidden.csv":  "not,part\n1,2\n",
	})

	out := mustData(t, m, "push", "points", src, "--tag", "source=test", "--message", "first")
	if want := "pushed points@1 (sha256:"; !strings.HasPrefix(out, want) || !strings.Contains(out, "5 rows") || !strings.Contains(out, "2 files") {
		t.Fatalf("push: got %q, want %q… with 5 rows and 2 files", out, want)
	}

	// Identical content: the same version, nothing uploaded.
	out = mustData(t, m, "push", "points", src)
	if want := "points@1 already exists with identical content (nothing uploaded)\n"; out != want {
		t.Fatalf("repush: got %q, want %q", out, want)
	}
	again := decodeJSON[struct {
		Created       bool            `json:"created"`
		UploadedFiles int             `json:"uploaded_files"`
		Version       dataset.Version `json:"version"`
	}](t, mustData(t, m, "push", "points", src, "--json"))
	if again.Created || again.UploadedFiles != 0 || again.Version.Version != 1 {
		t.Fatalf("repush --json: got created=%v uploaded=%d version %d, want the existing version 1 and no upload",
			again.Created, again.UploadedFiles, again.Version.Version)
	}

	// A Parquet file is a dataset of its own.
	pq := filepath.Join(t.TempDir(), "sensors.parquet")
	writeSensorParquet(t, pq, 300)
	out = mustData(t, m, "push", "sensors", pq, "--quiet")
	if !strings.HasPrefix(out, "pushed sensors@1 (") || !strings.Contains(out, "300 rows") || !strings.Contains(out, "1 file)") {
		t.Fatalf("push parquet: got %q, want sensors@1 with 300 rows in 1 file", out)
	}

	// list, list NAME.
	out = mustData(t, m, "list")
	for _, want := range []string{"NAME", "points", "sensors", "@1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("list: got %q, want it to contain %q", out, want)
		}
	}
	ds := decodeJSON[struct {
		Datasets []dataset.Summary `json:"datasets"`
	}](t, mustData(t, m, "list", "--json"))
	if len(ds.Datasets) != 2 {
		t.Fatalf("list --json: got %+v, want 2 datasets", ds)
	}
	vs := decodeJSON[struct {
		Versions []dataset.Version `json:"versions"`
	}](t, mustData(t, m, "list", "points", "--json"))
	if len(vs.Versions) != 1 || vs.Versions[0].Tags["source"] != "test" || vs.Versions[0].Tags["message"] != "first" {
		t.Fatalf("list points --json: got %+v, want one version tagged source=test, message=first", vs.Versions)
	}

	// show: metadata, profile, lineage.
	out = mustData(t, m, "show", "points@1")
	for _, want := range []string{"points@1", "2024/feb.csv", "2024/jan.csv", "PROFILE", "city", "temp", "Oslo", "RUNS"} {
		if !strings.Contains(out, want) {
			t.Fatalf("show: got\n%s\nwant it to contain %q", out, want)
		}
	}
	if strings.Contains(out, ".hidden") {
		t.Fatalf("show: got\n%s\nwant hidden files left out", out)
	}
	v := decodeJSON[dataset.Version](t, mustData(t, m, "show", "points", "--json"))
	if v.Profile == nil || v.Profile.Column("temp") == nil || v.Profile.Column("temp").Type != dataset.TypeFloat {
		t.Fatalf("show --json: got profile %+v, want a float column temp", v.Profile)
	}
	if v.Profile.Rows != 5 || v.Profile.Column("city").Count != 5 {
		t.Fatalf("show --json: got %d rows, want 5", v.Profile.Rows)
	}

	// Lineage: a run that logs the version as an input shows in show.
	exp := mustCall(t, m, "POST", "/api/2.0/mlflow/experiments/create", map[string]any{"name": "lineage"})
	run := mustCall(t, m, "POST", "/api/2.0/mlflow/runs/create", map[string]any{"experiment_id": exp["experiment_id"], "run_name": "train-points"})
	runID := run["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
	mustCall(t, m, "POST", "/api/2.0/mlflow/runs/log-inputs", map[string]any{"run_id": runID, "datasets": []any{map[string]any{
		"tags":    []any{map[string]any{"key": "mlflow.data.context", "value": "training"}},
		"dataset": map[string]any{"name": "points", "digest": strings.TrimPrefix(v.Digest, "sha256:")[:36], "source_type": "mloop", "source": "points@1"},
	}}})
	out = mustData(t, m, "show", "points@1")
	if !strings.Contains(out, runID) || !strings.Contains(out, "train-points") || !strings.Contains(out, "training") {
		t.Fatalf("show after log-inputs: got\n%s\nwant run %s (train-points, training) under RUNS", out, runID)
	}

	// pull: identical bytes at the pushed paths.
	dest := filepath.Join(t.TempDir(), "copy")
	out = mustData(t, m, "pull", "points@sha256:"+strings.TrimPrefix(v.Digest, "sha256:")[:8], dest)
	if !strings.Contains(out, "2 files") {
		t.Fatalf("pull: got %q, want 2 files downloaded", out)
	}
	for _, rel := range []string{"2024/jan.csv", "2024/feb.csv"} {
		want, _ := os.ReadFile(filepath.Join(src, filepath.FromSlash(rel)))
		got, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(rel)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("pulled %s: got %q %v, want %q", rel, got, err, want)
		}
	}
	out = mustData(t, m, "pull", "points@1", dest)
	if !strings.Contains(out, "0 files") || !strings.Contains(out, "2 files already there") {
		t.Fatalf("second pull: got %q, want nothing downloaded and 2 files already there", out)
	}
	if _, err := os.Stat(filepath.Join(dest, ".hidden.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pull: got a hidden file, want only the version's files")
	}
}

func TestDataPushErrors(t *testing.T) {
	m := MustOpenMain(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"good.csv":   "a,b\n1,2\n",
		"notes.txt":  "hello",
		"empty.csv":  "a,b\n",
		"ragged.csv": "a,b\n1,2\n3\n",
	})
	tests := []struct {
		name string
		args []string
		code int
		want []string // in stderr
	}{
		{"bad name", []string{"push", "../evil", filepath.Join(dir, "good.csv")}, exitFailure, []string{"dataset name", "../evil"}},
		{"unknown files", []string{"push", "d", dir}, exitFailure, []string{"notes.txt", "--skip-unknown"}},
		{"header only", []string{"push", "d", filepath.Join(dir, "empty.csv")}, exitFailure, []string{"empty.csv", "no data rows"}},
		{"ragged", []string{"push", "d", filepath.Join(dir, "ragged.csv")}, exitFailure, []string{"ragged.csv:3"}},
		{"missing path", []string{"push", "d", filepath.Join(dir, "nope.csv")}, exitFailure, []string{"nope.csv"}},
		{"missing args", []string{"push", "d"}, exitUsage, []string{"missing arguments"}},
		{"version as name", []string{"push", "d@2", filepath.Join(dir, "good.csv")}, exitUsage, []string{"@"}},
		{"bad type", []string{"push", "d", filepath.Join(dir, "good.csv"), "--type", "a=complex"}, exitUsage, []string{"complex"}},
		{"bad tag", []string{"push", "d", filepath.Join(dir, "good.csv"), "--tag", "novalue"}, exitUsage, []string{"KEY=VALUE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := execData(t, m, tt.args...)
			if code != tt.code {
				t.Fatalf("got exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Fatalf("stderr: got %q, want it to mention %q", errs, w)
				}
			}
		})
	}
	// Nothing was created by any of them.
	if out := mustData(t, m, "list"); !strings.HasPrefix(out, "no datasets yet") {
		t.Fatalf("list after failed pushes: got %q, want no datasets", out)
	}
	// --skip-unknown pushes the data files only (the header-only file is
	// fine next to one with rows).
	good := filepath.Join(t.TempDir(), "g")
	writeFiles(t, good, map[string]string{"a.csv": "a,b\n1,2\n", "README.md": "# data\n", "h.csv": "a,b\n"})
	if out := mustData(t, m, "push", "d", good, "--skip-unknown"); !strings.Contains(out, "2 files") {
		t.Fatalf("push --skip-unknown: got %q, want the 2 CSV files", out)
	}
}

func TestDataCommandsUsage(t *testing.T) {
	t.Setenv("MLOOP_CACHE", t.TempDir()) // never the user's cache
	m := MustOpenMain(t)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, exitUsage, "Usage: mloop data"},
		{[]string{"frobnicate"}, exitUsage, "unknown command"},
		{[]string{"show"}, exitUsage, "missing arguments"},
		{[]string{"show", "a", "b"}, exitUsage, "unexpected argument"},
		{[]string{"show", "nope@1"}, exitFailure, "mloop data list nope"},
		{[]string{"show", "nope@x"}, exitFailure, "Invalid version"},
		{[]string{"list", "nope"}, exitFailure, "mloop data list"},
		{[]string{"drift", "a@1", "b@1", "--methods", "magic"}, exitUsage, "unknown drift method"},
		{[]string{"schema", "nope@1", "--set", "x.yaml"}, exitUsage, "not to a version"},
		{[]string{"validate", "nope@1", "--schema", "/nonexistent/schema.yaml"}, exitFailure, "nope"},
	}
	for _, tt := range tests {
		code, out, errs := execData(t, m, tt.args...)
		if code != tt.code || !strings.Contains(out+errs, tt.want) {
			t.Errorf("mloop data %s: got exit %d and\n%s%s\nwant exit %d and %q", strings.Join(tt.args, " "), code, out, errs, tt.code, tt.want)
		}
	}

	// An unreachable server is explained.
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"data", "list", "--server", "http://127.0.0.1:1"}, &out, &errb)
	if code != exitFailure || !strings.Contains(errb.String(), "mloop server") {
		t.Fatalf("unreachable server: got exit %d and %q, want 1 and advice to start `mloop server`", code, errb.String())
	}
}

// TestDataPushInterrupted cancels a push in the middle of its upload: no
// version may be visible, and no partial blob stored under the file's hash.
func TestDataPushInterrupted(t *testing.T) {
	m := MustOpenMain(t)
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("id,name\n")
	for i := range 400_000 {
		fmt.Fprintf(&b, "%d,name-%d\n", i, i%97)
	}
	writeFiles(t, dir, map[string]string{"big.csv": b.String()})
	ctx := context.Background()
	scan, err := dataset.ScanPath(ctx, dir, dataset.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(m.URL(), nil)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err = c.Push(pctx, "big", scan, client.PushOptions{Progress: func(p client.TransferProgress) {
		if p.Bytes > 0 {
			cancel() // after the first bytes have left
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted push: got %v, want context.Canceled", err)
	}
	if _, err := c.ListVersions(ctx, "big"); !mloop.IsNotFound(err) {
		t.Fatalf("versions after an interrupted push: got %v, want dataset not found", err)
	}
	missing, err := c.MissingBlobs(ctx, []string{scan.Files[0].SHA256})
	if err != nil || len(missing) != 1 {
		t.Fatalf("blob after an interrupted upload: got missing=%v %v, want it still missing", missing, err)
	}
	// The next push completes.
	if out := mustData(t, m, "push", "big", dir); !strings.HasPrefix(out, "pushed big@1 ") {
		t.Fatalf("push after the interruption: got %q, want big@1", out)
	}
}

// citiesCSV returns a CSV of n rows over three cities.
func citiesCSV(n int, extraCity string) string {
	var b strings.Builder
	b.WriteString("city,temp,count\n")
	for i := range n {
		city := []string{"Oslo", "Rome", "Lima"}[i%3]
		if extraCity != "" && i%10 == 0 {
			city = extraCity
		}
		fmt.Fprintf(&b, "%s,%.1f,%d\n", city, float64(i%40)-5, i)
	}
	return b.String()
}

func TestDataSchemaAndValidate(t *testing.T) {
	t.Setenv("MLOOP_CACHE", t.TempDir()) // never the user's cache
	m := MustOpenMain(t)
	dir := t.TempDir()
	cache := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"v1/cities.csv":     citiesCSV(60, ""),
		"broken/cities.csv": citiesCSV(60, "Paris"),
		"bad-schema.yaml":   "columns:\n  - name: city\n    type: complex\n",
	})
	mustData(t, m, "push", "cities", filepath.Join(dir, "v1"), "--quiet")

	// No schema yet: the error says how to make one.
	code, _, errs := execData(t, m, "validate", "cities@1", "--cache", cache)
	if want := "mloop data schema cities@1 > schema.yaml && mloop data schema cities --set schema.yaml"; code != exitFailure || !strings.Contains(errs, want) {
		t.Fatalf("validate without a schema: got exit %d and %q, want 1 and the advice %q", code, errs, want)
	}

	// Infer, store, read back.
	inferred := mustData(t, m, "schema", "cities@1")
	for _, want := range []string{"name: city", "type: string", "domain:", "Oslo", "name: temp", "type: float"} {
		if !strings.Contains(inferred, want) {
			t.Fatalf("schema cities@1: got\n%s\nwant it to contain %q", inferred, want)
		}
	}
	schemaFile := filepath.Join(dir, "schema.yaml")
	if err := os.WriteFile(schemaFile, []byte(inferred), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustData(t, m, "schema", "cities", "--set", schemaFile); !strings.HasPrefix(out, "stored the schema of cities: 3 columns") {
		t.Fatalf("schema --set: got %q, want it stored with 3 columns", out)
	}
	if got := mustData(t, m, "schema", "cities"); got != inferred {
		t.Fatalf("stored schema: got\n%s\nwant what was set:\n%s", got, inferred)
	}
	stored := decodeJSON[map[string]any](t, mustData(t, m, "schema", "cities@1", "--json"))
	if stored["source"] != "stored" || stored["schema"] != inferred {
		t.Fatalf("schema --json: got %v, want the stored schema", stored)
	}
	code, _, errs = execData(t, m, "schema", "cities", "--set", filepath.Join(dir, "bad-schema.yaml"))
	if code != exitFailure || !strings.Contains(errs, "bad-schema.yaml") || !strings.Contains(errs, "complex") {
		t.Fatalf("schema --set of a bad file: got exit %d and %q, want 1 naming the file and the bad type", code, errs)
	}

	// The version the schema came from passes.
	if out := mustData(t, m, "validate", "cities@1", "--cache", cache); !strings.Contains(out, "PASSED") {
		t.Fatalf("validate cities@1: got\n%s\nwant PASSED", out)
	}
	// Local data with a new city fails with exit 3, naming the value.
	code, out, errs := execData(t, m, "validate", filepath.Join(dir, "broken"), "--dataset", "cities")
	if code != exitCheckFailed || !strings.Contains(out, "out_of_domain") || !strings.Contains(out, "Paris") {
		t.Fatalf("validate broken data: got exit %d and\n%s%s\nwant %d and an out_of_domain anomaly naming Paris", code, out, errs, exitCheckFailed)
	}
	code, out, _ = execData(t, m, "validate", filepath.Join(dir, "broken"), "--schema", schemaFile, "--json")
	rep := decodeJSON[dataset.Report](t, out)
	if code != exitCheckFailed || len(rep.Anomalies) != 1 || rep.Anomalies[0].Kind != dataset.AnomalyOutOfDomain ||
		rep.Anomalies[0].Column != "city" || len(rep.Anomalies[0].Values) != 1 || rep.Anomalies[0].Values[0].Value != "Paris" {
		t.Fatalf("validate --json: got exit %d and %+v, want 3 and one out_of_domain anomaly of city with the value Paris", code, rep.Anomalies)
	}
	// Local data without a dataset or schema is a usage error.
	if code, _, errs := execData(t, m, "validate", filepath.Join(dir, "broken")); code != exitUsage || !strings.Contains(errs, "--schema") {
		t.Fatalf("validate without schema nor dataset: got exit %d and %q, want 2 and a hint at --schema", code, errs)
	}
}

// driftJSON is the shape `mloop data drift --json` promises, read without
// the Go types so that the test checks the wire names.
type driftJSON struct {
	Mode         string  `json:"mode"`
	Reference    string  `json:"reference"`
	Current      string  `json:"current"`
	DriftShare   float64 `json:"drift_share"`
	DatasetDrift *bool   `json:"dataset_drift"`
	Drifted      int     `json:"drifted"`
	Share        float64 `json:"share"`
	Columns      []struct {
		Column  string           `json:"column"`
		Method  string           `json:"method"`
		Drift   *bool            `json:"drift"`
		Results []map[string]any `json:"results"`
	} `json:"columns"`
}

func TestDataDrift(t *testing.T) {
	t.Setenv("MLOOP_CACHE", t.TempDir()) // never the user's cache
	m := MustOpenMain(t)
	dir := t.TempDir()
	cache := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"ref/c.csv":     citiesCSV(90, ""),
		"same/c.csv":    citiesCSV(90, ""),
		"shifted/c.csv": strings.ReplaceAll(citiesCSV(90, "Paris"), ",3", ",9"),
	})
	mustData(t, m, "push", "cities", filepath.Join(dir, "ref"), "--quiet")

	// JSON shape: per column and method the statistic, threshold and
	// decision; binned methods report their bins and both count vectors.
	out := mustData(t, m, "drift", "cities@1", filepath.Join(dir, "shifted"), "--json", "--methods", "psi,ks", "--cache", cache)
	raw := decodeJSON[driftJSON](t, out)
	if raw.Mode != "exact" || raw.Reference != "cities@1" || raw.Current != filepath.Join(dir, "shifted") || raw.DriftShare != 0.5 || raw.DatasetDrift == nil {
		t.Fatalf("drift --json: got mode %q reference %q current %q drift_share %v dataset_drift %v, want exact, cities@1, the path, 0.5 and a verdict",
			raw.Mode, raw.Reference, raw.Current, raw.DriftShare, raw.DatasetDrift)
	}
	if len(raw.Columns) != 3 {
		t.Fatalf("drift --json: got %d columns, want 3 (city, temp, count)", len(raw.Columns))
	}
	for _, c := range raw.Columns {
		if c.Drift == nil || len(c.Results) == 0 {
			t.Fatalf("column %s: got drift %v and %d results, want a decision and results", c.Column, c.Drift, len(c.Results))
		}
		for _, r := range c.Results {
			for _, key := range []string{"method", "statistic", "threshold", "drift"} {
				if _, ok := r[key]; !ok {
					t.Fatalf("column %s result %v: want key %q", c.Column, r, key)
				}
			}
			if r["method"] == "psi" {
				_, edges := r["bin_edges"]
				_, cats := r["categories"]
				if (!edges && !cats) || r["ref_counts"] == nil || r["cur_counts"] == nil {
					t.Fatalf("column %s psi: got %v, want bins or categories and both count vectors", c.Column, r)
				}
			}
			if r["method"] == "ks" {
				if _, ok := r["p_value"]; !ok {
					t.Fatalf("column %s ks: got %v, want a p_value", c.Column, r)
				}
			}
		}
		if c.Column == "city" && !*c.Drift {
			t.Fatalf("city: got no drift, want drift (a tenth of the values became Paris)")
		}
	}

	// Identical data: no drift, exit 0 even with --fail-on-drift; drifted
	// data with --fail-on-drift: exit 3.
	out = mustData(t, m, "drift", "cities@1", filepath.Join(dir, "same"), "--fail-on-drift")
	if !strings.Contains(out, "no dataset drift") {
		t.Fatalf("drift against identical data: got\n%s\nwant no dataset drift", out)
	}
	code, out, errs := execData(t, m, "drift", "cities@1", filepath.Join(dir, "shifted"), "--fail-on-drift", "--threshold", "psi=0.0001", "--methods", "psi", "--cache", cache)
	if code != exitCheckFailed || !strings.Contains(out, "DATASET DRIFT") {
		t.Fatalf("drift --fail-on-drift: got exit %d and\n%s%s\nwant %d and DATASET DRIFT", code, out, errs, exitCheckFailed)
	}

	// From profiles: versions on both sides.
	mustData(t, m, "push", "cities", filepath.Join(dir, "shifted"), "--quiet")
	rep := decodeJSON[dataset.DriftReport](t, mustData(t, m, "drift", "cities@1", "cities@2", "--from-profiles", "--json"))
	if rep.Mode != "profile" || rep.Column("city") == nil || !rep.Column("city").Drift {
		t.Fatalf("drift --from-profiles: got %+v, want mode profile and city drifted", rep)
	}
}

// flightsStride returns how many flights the test skips for each it keeps:
// every 5th (600,000 of the 3,000,000 flights), or every 30th under the race
// detector. The flow is the same; the run stays short.
// MLOOP_TEST_FLIGHTS_STRIDE overrides it (1: every flight).
func flightsStride() int64 {
	if s, err := strconv.ParseInt(os.Getenv("MLOOP_TEST_FLIGHTS_STRIDE"), 10, 64); err == nil && s >= 1 {
		return s
	}
	if raceEnabled {
		return 30
	}
	return 5
}

// flightRow is a row of the monthly Parquet files.
type flightRow struct {
	Date        int64  `parquet:"date,timestamp(microsecond)"`
	Delay       int64  `parquet:"delay"`
	Distance    int64  `parquet:"distance"`
	Origin      string `parquet:"origin"`
	Destination string `parquet:"destination"`
}

// brokenFlightRow is January broken three ways: origin renamed, delay
// nullable with nulls, destination with an unknown airport.
type brokenFlightRow struct {
	Date        int64  `parquet:"date,timestamp(microsecond)"`
	Delay       *int64 `parquet:"delay,optional"`
	Distance    int64  `parquet:"distance"`
	OriginCode  string `parquet:"origin_code"`
	Destination string `parquet:"destination"`
}

// readFlightsByMonth reads the flights file and returns every
// flightsStride()-th flight by month (1–6; the few flights of July 1st count
// as June's).
func readFlightsByMonth(t *testing.T, path string) [6][]flightRow {
	t.Helper()
	ctx := context.Background()
	r, err := dataset.OpenFile(ctx, path, dataset.ReadOptions{Columns: []string{"date", "delay", "distance", "origin", "destination"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var months [6][]flightRow
	var n int64
	stride := flightsStride()
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		for i := range b.Rows {
			n++
			if n%stride != 0 {
				continue
			}
			null := false
			for _, c := range b.Cols {
				null = null || (c.Null != nil && c.Null[i])
			}
			if null {
				continue
			}
			f := flightRow{Date: b.Cols[0].Int[i], Delay: b.Cols[1].Int[i], Distance: b.Cols[2].Int[i],
				Origin: b.Cols[3].Text[i], Destination: b.Cols[4].Text[i]}
			m := min(int(time.UnixMicro(f.Date).UTC().Month()), 6)
			months[m-1] = append(months[m-1], f)
		}
	}
	return months
}

// TestDataFlightsAcceptance is the acceptance flow on the real
// flights data: six monthly versions with profiles; a broken copy of
// January validated against the schema inferred from version 1 reports
// exactly the three breakages; drift between January and June is reported
// consistently and flags the dates, which do not overlap at all.
func TestDataFlightsAcceptance(t *testing.T) {
	t.Setenv("MLOOP_CACHE", t.TempDir()) // never the user's cache
	months := readFlightsByMonth(t, realdata.Path(t, "flights-3m.parquet"))
	m := MustOpenMain(t)
	dir := t.TempDir()
	cache := t.TempDir()

	// Six versions, one per month.
	for i, rows := range months {
		if len(rows) == 0 {
			t.Fatalf("month %d: no flights", i+1)
		}
		p := filepath.Join(dir, fmt.Sprintf("flights-2001-%02d.parquet", i+1))
		if err := parquet.WriteFile(p, rows); err != nil {
			t.Fatal(err)
		}
		out := mustData(t, m, "push", "flights", p, "--tag", fmt.Sprintf("month=2001-%02d", i+1), "--quiet")
		if want := fmt.Sprintf("pushed flights@%d (", i+1); !strings.HasPrefix(out, want) || !strings.Contains(out, formatCount(int64(len(rows)))+" rows") {
			t.Fatalf("push month %d: got %q, want %s… with %d rows", i+1, out, want, len(rows))
		}
	}
	vs := decodeJSON[struct {
		Versions []dataset.Version `json:"versions"`
	}](t, mustData(t, m, "list", "flights", "--json"))
	if len(vs.Versions) != 6 {
		t.Fatalf("list flights: got %d versions, want 6", len(vs.Versions))
	}
	for _, v := range vs.Versions {
		full := decodeJSON[dataset.Version](t, mustData(t, m, "show", v.Ref(), "--json"))
		if want := int64(len(months[v.Version-1])); full.Rows != want || full.Profile == nil || full.Profile.Rows != want || len(full.Profile.Columns) != 5 {
			t.Fatalf("%s: got %d rows and profile %v, want %d rows and a profile of 5 columns", v.Ref(), full.Rows, full.Profile != nil, want)
		}
		if c := full.Profile.Column("origin"); c == nil || c.Type != dataset.TypeString || c.Distinct < 100 {
			t.Fatalf("%s: got origin profile %+v, want a string column of 100+ airports", v.Ref(), c)
		}
	}

	// The schema inferred from January, and January broken three ways.
	schemaFile := filepath.Join(dir, "schema.yaml")
	if err := os.WriteFile(schemaFile, []byte(mustData(t, m, "schema", "flights@1")), 0o644); err != nil {
		t.Fatal(err)
	}
	jan := months[0]
	broken := make([]brokenFlightRow, len(jan))
	var nulls, zzz int64
	for i, f := range jan {
		b := brokenFlightRow{Date: f.Date, Delay: &jan[i].Delay, Distance: f.Distance, OriginCode: f.Origin, Destination: f.Destination}
		if i%20 == 7 {
			b.Delay = nil
			nulls++
		}
		if i%100 == 3 {
			b.Destination = "ZZZ"
			zzz++
		}
		broken[i] = b
	}
	brokenFile := filepath.Join(dir, "broken-2001-01.parquet")
	if err := parquet.WriteFile(brokenFile, broken); err != nil {
		t.Fatal(err)
	}
	code, out, errs := execData(t, m, "validate", brokenFile, "--schema", schemaFile, "--json")
	if code != exitCheckFailed {
		t.Fatalf("validate the broken copy: got exit %d, want %d\n%s%s", code, exitCheckFailed, out, errs)
	}
	rep := decodeJSON[dataset.Report](t, out)
	got := map[string]dataset.Anomaly{}
	for _, a := range rep.Anomalies {
		got[string(a.Kind)+" "+a.Column] = a
	}
	want := []string{"missing_column origin", "unexpected_column origin_code", "null_fraction delay", "out_of_domain destination"}
	if len(got) != len(want) || len(rep.Anomalies) != len(want) {
		t.Fatalf("anomalies: got %v, want exactly %v", rep.Anomalies, want)
	}
	for _, k := range want {
		if _, ok := got[k]; !ok {
			t.Fatalf("anomalies: got %v, want %q among them", rep.Anomalies, k)
		}
	}
	if a := got["null_fraction delay"]; a.Count != nulls || a.Total != int64(len(jan)) {
		t.Fatalf("null_fraction: got %d of %d, want %d of %d", a.Count, a.Total, nulls, len(jan))
	}
	if a := got["out_of_domain destination"]; len(a.Values) != 1 || a.Values[0].Value != "ZZZ" || a.Values[0].Count != zzz {
		t.Fatalf("out_of_domain: got values %+v, want ZZZ %d times", a.Values, zzz)
	}
	_, text, _ := execData(t, m, "validate", brokenFile, "--schema", schemaFile)
	t.Logf("mloop data validate %s --schema schema.yaml:\n%s", filepath.Base(brokenFile), text)
	// January itself passes its own schema.
	if out := mustData(t, m, "validate", "flights@1", "--schema", schemaFile, "--cache", cache); !strings.Contains(out, "PASSED") {
		t.Fatalf("validate flights@1: got\n%s\nwant PASSED", out)
	}

	// Drift January → June, exact and from profiles.
	for _, mode := range [][]string{{"--cache", cache}, {"--from-profiles"}} {
		args := append([]string{"drift", "flights@1", "flights@6", "--json"}, mode...)
		dr := decodeJSON[driftJSON](t, mustData(t, m, args...))
		if len(dr.Columns) != 5 {
			t.Fatalf("drift %v: got %d columns, want 5", mode, len(dr.Columns))
		}
		drifted := 0
		for _, c := range dr.Columns {
			var decision map[string]any
			for _, r := range c.Results {
				if r["method"] == c.Method {
					decision = r
				}
			}
			if decision == nil || c.Drift == nil || decision["drift"] != *c.Drift {
				t.Fatalf("drift %v, column %s: got decision %v and drift %v, want the column's drift to be its method %s's", mode, c.Column, decision, c.Drift, c.Method)
			}
			if *c.Drift {
				drifted++
			}
			if c.Column == "date" && !*c.Drift {
				t.Fatalf("drift %v: got no drift of date, want drift (January and June do not overlap)", mode)
			}
			// What changed between the months: delay (mean 6.3 → 9.0
			// minutes, 99th percentile 130 → 166); distance did not.
			if mode[0] == "--cache" {
				if want := c.Column == "date" || c.Column == "delay"; (c.Column == "delay" || c.Column == "distance") && *c.Drift != want {
					t.Fatalf("drift %v, column %s: got drift %v, want %v", mode, c.Column, *c.Drift, want)
				}
			}
		}
		share := float64(drifted) / float64(len(dr.Columns))
		if dr.Drifted != drifted || dr.Share != share || *dr.DatasetDrift != (share >= dr.DriftShare) {
			t.Fatalf("drift %v: got drifted %d share %v dataset_drift %v, want %d, %v and %v", mode, dr.Drifted, dr.Share, *dr.DatasetDrift, drifted, share, share >= dr.DriftShare)
		}
		_, text, _ := execData(t, m, append([]string{"drift", "flights@1", "flights@6"}, mode...)...)
		t.Logf("mloop data drift flights@1 flights@6 %s:\n%s", strings.Join(mode, " "), text)
	}
}

// TestDataGC checks that `mloop data gc` deletes an upload no version
// references and keeps the files of versions.
func TestDataGC(t *testing.T) {
	m := MustOpenMain(t)
	dir := t.TempDir()
	kept := filepath.Join(dir, "kept.csv")
	if err := os.WriteFile(kept, []byte("a,b\n1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustData(t, m, "push", "gcset", kept, "--quiet")
	// An interrupted push: a blob uploaded, never committed.
	orphan := []byte("a,b\n3,4\n")
	sum := sha256.Sum256(orphan)
	if _, err := client.New(m.URL(), nil).PutBlob(context.Background(), hex.EncodeToString(sum[:]), bytes.NewReader(orphan), int64(len(orphan))); err != nil {
		t.Fatal(err)
	}
	// Within the grace period nothing goes.
	if out := mustData(t, m, "gc"); !strings.Contains(out, "deleted 0 blobs") || !strings.Contains(out, "1 younger") {
		t.Fatalf("gc: got %q, want nothing deleted and the upload kept as recent", out)
	}
	res := decodeJSON[struct {
		Scanned    int      `json:"scanned"`
		Referenced int      `json:"referenced"`
		Deleted    []string `json:"deleted"`
	}](t, mustData(t, m, "gc", "--older-than", "0s", "--json"))
	if res.Scanned != 2 || res.Referenced != 1 || len(res.Deleted) != 1 || res.Deleted[0] != hex.EncodeToString(sum[:]) {
		t.Fatalf("gc --older-than 0s: got %+v, want the orphan deleted and the version's file kept", res)
	}
	if out := mustData(t, m, "pull", "gcset@1", filepath.Join(dir, "out"), "--quiet"); !strings.Contains(out, "1 file") {
		t.Fatalf("pull after gc: got %q", out)
	}
	if code, _, _ := execData(t, m, "gc", "--older-than", "-1h"); code != exitUsage {
		t.Fatalf("gc --older-than -1h: got exit %d, want %d", code, exitUsage)
	}
}
