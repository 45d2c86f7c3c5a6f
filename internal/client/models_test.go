package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/modelcheck"
)

// modelServer answers model registrations by unpacking the archive with
// the server's own extraction and recording the files it got.
type modelServer struct {
	files map[string]string
	query string
	reply func(w http.ResponseWriter)
}

func newModelServer(t *testing.T) (*modelServer, *Client) {
	t.Helper()
	ms := &modelServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/models/flights/versions" || r.Header.Get("Content-Type") != "application/x-tar" {
			fakeError(w, http.StatusNotFound, "ENDPOINT_NOT_FOUND", r.Method+" "+r.URL.Path)
			return
		}
		ms.query = r.URL.RawQuery
		// Not t.TempDir: a handler may outlive the test's call.
		dir, err := os.MkdirTemp("", "model-upload-*")
		if err != nil {
			fakeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", err.Error())
			return
		}
		defer os.RemoveAll(dir)
		names, err := modelcheck.ExtractTar(r.Context(), r.Body, dir, modelcheck.DefaultLimits)
		if err != nil {
			fakeError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", mloop.ErrorMessage(err))
			return
		}
		ms.files = map[string]string{}
		for _, n := range names {
			data, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(n)))
			ms.files[n] = string(data)
		}
		if ms.reply != nil {
			ms.reply(w)
			return
		}
		fakeJSON(w, http.StatusCreated, modelcheck.Registered{Name: "flights", Version: 3, Flavor: "xgboost",
			Info: &modelcheck.ModelInfo{Flavor: "xgboost", Objective: "binary:logistic", NumTrees: 150}})
	}))
	t.Cleanup(srv.Close)
	return ms, New(srv.URL, nil)
}

func TestRegisterModelFolder(t *testing.T) {
	ms, c := newModelServer(t)
	dir := t.TempDir()
	for rel, content := range map[string]string{"serve.json": `{"command":["x"]}`, "lib/a.py": "a", "lib/deep/b.py": "bb"} {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A link to a file is sent as the file.
	if err := os.Symlink(filepath.Join(dir, "lib", "a.py"), filepath.Join(dir, "link.py")); err != nil {
		t.Fatal(err)
	}
	v, err := c.RegisterModel(context.Background(), "flights", dir, "process", "my model")
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != 3 || v.Info == nil || v.Info.NumTrees != 150 {
		t.Errorf("got %+v, want the server's answer", v)
	}
	var names []string
	for n := range ms.files {
		names = append(names, n)
	}
	sort.Strings(names)
	if got, want := strings.Join(names, ","), "lib/a.py,lib/deep/b.py,link.py,serve.json"; got != want {
		t.Errorf("server got files %s, want %s", got, want)
	}
	if ms.files["link.py"] != "a" || ms.files["lib/deep/b.py"] != "bb" {
		t.Errorf("server got contents %v", ms.files)
	}
	if ms.query != "description=my+model&flavor=process" {
		t.Errorf("got query %q, want flavor and description", ms.query)
	}
}

func TestRegisterModelSingleFile(t *testing.T) {
	ms, c := newModelServer(t)
	p := filepath.Join(t.TempDir(), "delay.UBJ")
	if err := os.WriteFile(p, []byte("{ubj}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterModel(context.Background(), "flights", p, "", ""); err != nil {
		t.Fatal(err)
	}
	if len(ms.files) != 1 || ms.files["model.ubj"] != "{ubj}" {
		t.Errorf("server got %v, want the file as model.ubj", ms.files)
	}
}

func TestRegisterModelErrors(t *testing.T) {
	ms, c := newModelServer(t)
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	ms.reply = func(w http.ResponseWriter) {
		fakeError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", `not a model mloop can serve: xgboost model "model.json": truncated`)
	}
	_, err := c.RegisterModel(ctx, "flights", dir, "", "")
	if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("got %v, want EINVALID with the server's reason", err)
	}

	if _, err := c.RegisterModel(ctx, "flights", filepath.Join(dir, "missing"), "", ""); mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing path: got %v, want EINVALID saying it does not exist", err)
	}
	txt := filepath.Join(dir, "model.pkl")
	if err := os.WriteFile(txt, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterModel(ctx, "flights", txt, "", ""); mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), "give the model's folder") {
		t.Errorf("single non-XGBoost file: got %v, want EINVALID", err)
	}
	// A link to a folder cannot be sent.
	linked := t.TempDir()
	if err := os.Symlink(t.TempDir(), filepath.Join(linked, "sub")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterModel(ctx, "flights", linked, "", ""); err == nil || !strings.Contains(err.Error(), "link to a folder") {
		t.Errorf("link to a folder: got %v, want an error naming it", err)
	}
}
