package httpapi

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/serving/modelcheck"
)

// modelTar returns a tar archive of files (name → content), in name order
// as given by names.
func modelTar(tb testing.TB, files ...[2]string) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f[0], Mode: 0o644, Size: int64(len(f[1]))}); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write([]byte(f[1])); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// xgbFixture returns a model file of the XGBoost runtime's tests.
func xgbFixture(tb testing.TB, name string) string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("..", "serving", "xgboost", "testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return string(data)
}

// postModel posts archive as a new version of name and returns the status and body.
func postModel(tb testing.TB, base, name, query string, archive []byte) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/models/"+name+"/versions?"+query, bytes.NewReader(archive))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func TestRegisterModelVersion(t *testing.T) {
	srv, s := newTestServer(t)
	ctx := context.Background()
	model := xgbFixture(t, "binary_logistic.json")

	status, body := postModel(t, srv.URL, "flights", "description=first", modelTar(t, [2]string{"model.json", model}, [2]string{"notes/README.md", "hello"}))
	if status != http.StatusCreated {
		t.Fatalf("got %d %s, want 201", status, body)
	}
	var got modelcheck.Registered
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "flights" || got.Version != 1 || got.Flavor != "xgboost" || got.Info == nil ||
		got.Info.Objective != "binary:logistic" || got.Info.NumTrees == 0 || got.RunID == "" ||
		!strings.HasSuffix(got.Source, "/"+got.RunID+"/artifacts/model") {
		t.Fatalf("got %s, want version 1 of flights, xgboost binary:logistic, sourced from its run's artifacts/model", body)
	}

	// The version, its tags and lineage are in the registry.
	v, err := s.Registry.GetModelVersion(ctx, "flights", "1")
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, tg := range v.Tags {
		tags[tg.Key] = tg.Value
	}
	var info modelcheck.ModelInfo
	if tags[modelcheck.FlavorTag] != "xgboost" || json.Unmarshal([]byte(tags[modelcheck.ModelInfoTag]), &info) != nil || info.Objective != "binary:logistic" {
		t.Errorf("got tags %v, want mloop.flavor=xgboost and mloop.model_info with the objective", tags)
	}
	if v.RunID != got.RunID || v.Description != "first" || v.Source != got.Source {
		t.Errorf("got version %+v, want run %s, description first, source %s", v, got.RunID, got.Source)
	}
	// The files are stored under the run, byte for byte.
	run, err := s.Tracking.GetRun(ctx, got.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Info.Status != "FINISHED" {
		t.Errorf("got run status %s, want FINISHED", run.Info.Status)
	}
	for rel, want := range map[string]string{"model.json": model, "notes/README.md": "hello"} {
		key, err := s.Artifacts.KeyOf(got.Source + "/" + rel)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := s.Artifacts.Get(ctx, key)
		if err != nil {
			t.Fatalf("artifact %s: %v", rel, err)
		}
		data, _ := io.ReadAll(obj)
		obj.Close()
		if string(data) != want {
			t.Errorf("artifact %s: got %d bytes, want the %d bytes sent", rel, len(data), len(want))
		}
	}

	// A second registration is version 2; a process model is accepted.
	status, body = postModel(t, srv.URL, "flights", "flavor=process", modelTar(t,
		[2]string{"serve.json", `{"command": ["python3", "serve.py"]}`}, [2]string{"serve.py", "pass\n"}))
	if status != http.StatusCreated || !strings.Contains(string(body), `"version":2`) || !strings.Contains(string(body), `"flavor":"process"`) {
		t.Fatalf("process model: got %d %s, want 201 version 2", status, body)
	}
}

func TestRegisterModelVersionRejects(t *testing.T) {
	srv, s := newTestServer(t)
	ctx := context.Background()
	good := xgbFixture(t, "binary_logistic.json")
	unsupported := strings.ReplaceAll(good, `"binary:logistic"`, `"rank:ndcg"`)
	for _, tc := range []struct {
		name, model, query string
		archive            []byte
		status             int
		want               string
	}{
		{"truncated json", "m", "", modelTar(t, [2]string{"model.json", good[:len(good)/3]}), 400, "not a model mloop can serve"},
		{"unsupported objective", "m", "", modelTar(t, [2]string{"model.json", unsupported}), 400, "rank:ndcg"},
		{"process without command", "m", "", modelTar(t, [2]string{"serve.json", `{"env": {}}`}), 400, "command is missing"},
		{"unknown flavor", "m", "flavor=onnx", modelTar(t, [2]string{"model.json", good}), 400, "unknown model flavor"},
		{"path traversal", "m", "", modelTar(t, [2]string{"../../model.json", good}), 400, "not a clean relative path"},
		{"absolute path", "m", "", modelTar(t, [2]string{"/tmp/model.json", good}), 400, "is absolute"},
		{"not a tar", "m", "", []byte(strings.Repeat("not a tar archive ", 64)), 400, "not a valid tar archive"},
		{"bad model name", "a%00b", "", modelTar(t, [2]string{"model.json", good}), 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := postModel(t, srv.URL, tc.model, tc.query, tc.archive)
			if status != tc.status || !strings.Contains(string(body), tc.want) || !strings.Contains(string(body), "INVALID_PARAMETER_VALUE") {
				t.Fatalf("got %d %s, want %d INVALID_PARAMETER_VALUE saying %q", status, body, tc.status, tc.want)
			}
		})
	}
	// Nothing was stored: no model, no run, no version.
	if _, err := s.Registry.GetRegisteredModel(ctx, "m"); err == nil {
		t.Error("a registered model m exists after refused registrations")
	}
	vs, _, err := s.Registry.SearchModelVersions(ctx, registry.SearchRequest{})
	if err != nil || len(vs) != 0 {
		t.Errorf("got %d versions (%v), want none", len(vs), err)
	}
	if _, err := s.Tracking.GetExperimentByName(ctx, modelcheck.ModelsExperiment); err == nil {
		t.Errorf("experiment %s exists after refused registrations: runs were created", modelcheck.ModelsExperiment)
	}

	// A wrong content type is refused before reading.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/models/m/versions", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("JSON body: got %d, want 400", resp.StatusCode)
	}
}
