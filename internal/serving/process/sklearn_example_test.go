package process_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/realdata"
	"github.com/mloop/mloop/internal/serving/process"
)

// pythonWithSklearn returns /usr/bin/python3 when it can import
// scikit-learn and numpy. Otherwise the test is skipped, or fails when
// MLOOP_TEST_PYTHON is set (scripts/test.sh installs them and sets it).
func pythonWithSklearn(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import sklearn, numpy, joblib").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("%s cannot import sklearn, numpy and joblib (install Debian's python3-sklearn, or run scripts/test.sh): %v\n%s", py, err, out)
		if os.Getenv("MLOOP_TEST_PYTHON") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return py
}

type inferResponse struct {
	ID      string `json:"id"`
	Outputs []struct {
		Name     string `json:"name"`
		Datatype string `json:"datatype"`
		Shape    []int  `json:"shape"`
		Data     []any  `json:"data"`
	} `json:"outputs"`
}

func TestSklearnExampleServer(t *testing.T) {
	py := pythonWithSklearn(t)
	data := realdata.Path(t, "seattle-weather.csv")
	_, file, _, _ := runtime.Caller(0)
	server := filepath.Join(filepath.Dir(file), "..", "..", "..", "examples", "sklearn-server", "server.py")

	// Train and save the model once, then serve the saved file.
	model := filepath.Join(t.TempDir(), "weather.joblib")
	save := exec.Command(py, server, "--save", model)
	save.Env = []string{"DATA_PATH=" + data, "PATH=/usr/bin:/bin"}
	if out, err := save.CombinedOutput(); err != nil {
		t.Fatalf("%s --save: %v\n%s", server, err, out)
	}

	var out syncBuffer
	rt := mustStart(t, "weather", process.Config{
		Command:      []string{py, server},
		Env:          map[string]string{"MODEL_PATH": model, "MODEL_VERSION": "3"},
		ReadyTimeout: 3 * time.Minute, // importing scikit-learn is slow on a busy machine
		Stdout:       &out,
		Stderr:       &out,
	})
	srv := httptest.NewServer(rt)
	defer srv.Close()

	status, body := call(t, "GET", srv.URL+"/v2/models/weather", "")
	if status != 200 || !strings.Contains(body, `"precipitation"`) || !strings.Contains(body, `"classes"`) {
		t.Fatalf("metadata: got %d %s", status, body)
	}

	// One 2-D input, with a JSON null and Python's NaN literal as missing values.
	status, body = call(t, "POST", srv.URL+"/v2/models/weather/infer", `{"id": "r-7", "inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 4],
		"data": [0.0, 12.8, 5.0, 4.7, 10.9, 10.6, 2.8, 4.5, null, 20.0, 10.0, NaN]}]}`)
	var matrix inferResponse
	if err := json.Unmarshal([]byte(body), &matrix); status != 200 || err != nil {
		t.Fatalf("infer: got %d %s (%v)", status, body, err)
	}
	if matrix.ID != "r-7" || len(matrix.Outputs) != 2 || matrix.Outputs[0].Name != "predict" || len(matrix.Outputs[0].Data) != 3 {
		t.Fatalf("infer: got %s, want id r-7 and 3 predictions", body)
	}
	classes := []any{"drizzle", "fog", "rain", "snow", "sun"}
	for _, label := range matrix.Outputs[0].Data {
		if !slices.Contains(classes, label) {
			t.Errorf("prediction %v is not one of %v", label, classes)
		}
	}
	if p := matrix.Outputs[1]; p.Name != "predict_proba" || fmt.Sprint(p.Shape) != "[3 5]" || len(p.Data) != 15 {
		t.Errorf("probabilities: got %+v, want a 3×5 matrix", p)
	}

	// One input per feature gives the same answers for the same rows.
	status, body = call(t, "POST", srv.URL+"/v2/models/weather/infer", `{"inputs": [
		{"name": "wind", "datatype": "FP64", "shape": [2], "data": [4.7, 4.5]},
		{"name": "precipitation", "datatype": "FP32", "shape": [2], "data": [0.0, 10.9]},
		{"name": "temp_max", "datatype": "FP32", "shape": [2, 1], "data": [12.8, 10.6]},
		{"name": "temp_min", "datatype": "FP32", "shape": [2], "data": [5.0, 2.8]}]}`)
	var columns inferResponse
	if err := json.Unmarshal([]byte(body), &columns); status != 200 || err != nil || len(columns.Outputs) == 0 {
		t.Fatalf("infer by feature: got %d %s (%v)", status, body, err)
	}
	if got, want := fmt.Sprint(columns.Outputs[0].Data), fmt.Sprint(matrix.Outputs[0].Data[:2]); got != want {
		t.Errorf("infer by feature: got %s, want %s as for the 2-D input", got, want)
	}

	// Bad requests are the server's 400s, passed through, naming the input.
	for _, c := range []struct{ body, want string }{
		{`{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]}`, `input \"x\": 3 columns`},
		{`{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, "a", 3, 4]}]}`, `input \"x\": value 1`},
		{`{"inputs": [{"name": "wind", "datatype": "FP32", "shape": [1], "data": [1]}]}`, `missing feature inputs: precipitation`},
	} {
		status, body := call(t, "POST", srv.URL+"/v2/models/weather/infer", c.body)
		if status != 400 || !strings.Contains(body, c.want) {
			t.Errorf("infer %s: got %d %s, want 400 with %s", c.body, status, body, c.want)
		}
	}
	if !strings.Contains(out.String(), "loaded "+model) {
		t.Errorf("server output %q does not say it loaded %s", out.String(), model)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rt.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
