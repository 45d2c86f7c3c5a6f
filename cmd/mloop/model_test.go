package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mloop/mloop/internal/serving/modelcheck"
)

// execModel runs `mloop model ARGS… --server URL` against m.
func execModel(t *testing.T, m *Main, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{"model"}, args...)
	args = append(args, "--server", m.URL())
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// xgbFixture copies a model of the XGBoost runtime's tests into dir as name.
func xgbFixture(t *testing.T, fixture, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "internal", "serving", "xgboost", "testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestModelRegister(t *testing.T) {
	m := MustOpenMain(t)

	dir := t.TempDir()
	xgbFixture(t, "binary_logistic.json", dir, "model.json")
	code, out, errs := execModel(t, m, "register", "flights-delay", dir, "--description", "first try")
	if code != exitOK || !strings.HasPrefix(out, "registered flights-delay version 1 (xgboost, binary:logistic, 20 trees, 7 features)") {
		t.Fatalf("got exit %d\nstdout: %s\nstderr: %s\nwant exit 0 and a summary of version 1", code, out, errs)
	}

	// A single UBJSON file, flavor given, as JSON.
	file := xgbFixture(t, "binary_logistic_ubj.ubj", t.TempDir(), "delay.ubj")
	code, out, errs = execModel(t, m, "register", "flights-delay", file, "--flavor", "xgboost", "--json")
	if code != exitOK {
		t.Fatalf("got exit %d: %s", code, errs)
	}
	v := decodeJSON[modelcheck.Registered](t, out)
	if v.Version != 2 || v.Info == nil || v.Info.File != "model.ubj" || v.Info.Objective != "binary:logistic" {
		t.Errorf("got %+v, want version 2 from model.ubj", v)
	}

	// A process model.
	proc := t.TempDir()
	writeFiles(t, proc, map[string]string{"serve.json": `{"command": ["python3", "serve.py"], "env": {"THREADS": "1"}}`, "serve.py": "pass\n"})
	code, out, errs = execModel(t, m, "register", "sk", proc)
	if code != exitOK || !strings.HasPrefix(out, "registered sk version 1 (process, command python3 serve.py)") {
		t.Fatalf("process model: got exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}

	// The versions are visible through the MLflow API with their lineage.
	got := mustCall(t, m, "GET", "/api/2.0/mlflow/model-versions/get?name=flights-delay&version=2", nil)
	mv, _ := got["model_version"].(map[string]any)
	if mv == nil || mv["run_id"] == "" || !strings.HasSuffix(mv["source"].(string), "/artifacts/model") {
		t.Errorf("got %v, want version 2 with its run and source", got)
	}
}

func TestModelRegisterRefused(t *testing.T) {
	m := MustOpenMain(t)
	dir := t.TempDir()
	p := xgbFixture(t, "binary_logistic.json", dir, "model.json")
	data, _ := os.ReadFile(p)
	if err := os.WriteFile(p, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := execModel(t, m, "register", "broken", dir)
	if code != exitFailure || out != "" || !strings.Contains(errs, "not a model mloop can serve") {
		t.Fatalf("truncated model: got exit %d\nstdout: %s\nstderr: %s\nwant exit 1 with the server's reason", code, out, errs)
	}
	unsupported := t.TempDir()
	writeFiles(t, unsupported, map[string]string{"model.json": strings.ReplaceAll(string(data), `"binary:logistic"`, `"survival:cox"`)})
	code, _, errs = execModel(t, m, "register", "broken", unsupported)
	if code != exitFailure || !strings.Contains(errs, "survival:cox") {
		t.Fatalf("unsupported objective: got exit %d, stderr %s; want exit 1 naming the objective", code, errs)
	}
	// Nothing was registered.
	status, _ := call(t, m, "GET", "/api/2.0/mlflow/registered-models/get?name=broken", nil)
	if status != 404 {
		t.Errorf("got status %d for the refused model, want 404", status)
	}

	for _, args := range [][]string{
		{"register", "only-name"},
		{"register", "a", dir, "extra"},
		{"register", "a", dir, "--flavor", "onnx"},
		{"nope"},
	} {
		if code, _, _ := execModel(t, m, args...); code != exitUsage {
			t.Errorf("mloop model %s: got exit %d, want %d", strings.Join(args, " "), code, exitUsage)
		}
	}
}
