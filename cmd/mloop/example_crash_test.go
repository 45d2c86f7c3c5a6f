//go:build unix

package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/realdata"
)

// TestExampleFlightsSurvivesKill runs the flights example on a real server
// process, kills it with SIGKILL while the model trains, restarts it on the
// same data folder, and checks that the run finishes: the finished step is
// kept, the training attempt the crash interrupted counts as failed and is
// retried, and exactly one model version is registered.
func TestExampleFlightsSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills a real server")
	}
	python := flightsPython(t)
	data := realdata.Path(t, "flights-3m.parquet")
	dir := t.TempDir()
	bin := filepath.Join(dir, "mloop")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	months := filepath.Join(dir, "months")
	splitFlights(t, data, months, flightsStride())
	project := copyFlightsExample(t, filepath.Join(dir, "project"))
	lake := filepath.Join(dir, "lake")
	if err := os.MkdirAll(lake, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, month := range []string{"2001-01", "2001-02"} {
		exampleCopyFile(t, filepath.Join(months, month+".csv"), filepath.Join(lake, month+".csv"))
	}
	store := filepath.Join(dir, "data")
	s := startCrashServer(t, bin, store)
	if out, err := exec.Command(bin, "data", "push", "flights", lake, "--server", s.url, "--quiet").CombinedOutput(); err != nil {
		t.Fatalf("mloop data push: %v\n%s", err, out)
	}
	// More trees than the example's default make training last long enough
	// to be killed in the middle, and its retry short enough.
	var run pipeline.Run
	s.call(t, "POST", "/api/v1/pipeline-runs", map[string]any{
		"spec_file": filepath.Join(project, "mloop.yaml"), "project_dir": project,
		"params": map[string]string{"python": python, "n_estimators": "600"},
	}, &run)
	get := func(s *crashServer) *pipeline.Run {
		var r pipeline.Run
		s.call(t, "GET", "/api/v1/pipeline-runs/"+run.ID, nil, &r)
		return &r
	}
	crashWait(t, s, "training to start", func() (bool, string) {
		r := get(s)
		st := r.Step("train")
		return st.Status == pipeline.StepRunning && st.Attempt == 1, flightsRunSummary(r)
	})
	s.kill9(t)

	s = startCrashServer(t, bin, store)
	defer s.stop(t)
	var done *pipeline.Run
	crashWait(t, s, "the run to end after the restart", func() (bool, string) {
		done = get(s)
		return done.Status.Done(), flightsRunSummary(done)
	})
	t.Logf("after the restart:\n%s", flightsRunSummary(done))
	if done.Status != pipeline.RunSucceeded {
		t.Fatalf("run after the crash: got %s (%s), want succeeded", done.Status, done.Error)
	}
	if st := done.Step("validate"); st.Attempt != 1 {
		t.Errorf("validate ran %d times, want once (it had finished before the crash)", st.Attempt)
	}
	if st := done.Step("train"); st.Attempt != 2 {
		t.Errorf("train: attempt %d, want 2 (the one the crash interrupted, then its retry)", st.Attempt)
	}
	resp, err := httpGetText(s.url + "/api/v1/pipeline-runs/" + run.ID + "/logs?step=train")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(resp, "the server stopped while attempt 1 was running") {
		t.Errorf("train's log does not tell the crash:\n%s", resp)
	}
	var versions struct {
		ModelVersions []struct {
			Version string `json:"version"`
		} `json:"model_versions"`
	}
	s.call(t, "GET", "/api/2.0/mlflow/model-versions/search?filter="+url.QueryEscape("name='flights-delay'"), nil, &versions)
	if len(versions.ModelVersions) != 1 {
		t.Fatalf("got %d versions of flights-delay, want 1", len(versions.ModelVersions))
	}
}

// httpGetText returns the body of a GET, failing on a non-2xx status.
func httpGetText(u string) (string, error) {
	resp, err := http.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("GET %s: status %d: %s", u, resp.StatusCode, b)
	}
	return string(b), nil
}
