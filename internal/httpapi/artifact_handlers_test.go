package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/tracking"
)

const artifactsAPI = "/api/2.0/mlflow-artifacts/artifacts"

// sendArtifactRequest sends method target (a path with optional query, sent
// as is) with body, and returns the response with its body read (without the
// newline that ends a JSON body).
func sendArtifactRequest(tb testing.TB, srv *httptest.Server, method, target string, body io.Reader) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequest(method, srv.URL+target, body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, target, err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, target, err)
	}
	if resp.Header.Get("Content-Type") == "application/json" {
		b = bytes.TrimSuffix(b, []byte("\n"))
	}
	return resp, string(b)
}

// wantArtifactResponse sends a request and fails unless the answer has the
// given status and (when want is not "") exactly the body want.
func wantArtifactResponse(tb testing.TB, srv *httptest.Server, method, target string, body io.Reader, status int, want string) *http.Response {
	tb.Helper()
	resp, got := sendArtifactRequest(tb, srv, method, target, body)
	if resp.StatusCode != status {
		tb.Errorf("%s %s: got status %d (body %s), want %d", method, target, resp.StatusCode, got, status)
	}
	if want != "" && got != want {
		tb.Errorf("%s %s: got body\n  %s\nwant\n  %s", method, target, got, want)
	}
	return resp
}

// wantArtifactError fails unless the request is answered with status and
// MLflow's error body carrying errorCode.
func wantArtifactError(tb testing.TB, srv *httptest.Server, method, target string, status int, errorCode string) {
	tb.Helper()
	var body io.Reader
	if method == http.MethodPut {
		body = strings.NewReader("evil")
	}
	resp, got := sendArtifactRequest(tb, srv, method, target, body)
	var e struct {
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
	}
	if err := json.Unmarshal([]byte(got), &e); err != nil || resp.StatusCode != status || e.ErrorCode != errorCode || e.Message == "" {
		tb.Errorf("%s %s: got status %d, body %s, want status %d with error_code %s and a message", method, target, resp.StatusCode, got, status, errorCode)
	}
}

// putArtifact uploads content to the store at key through the API.
func putArtifact(tb testing.TB, srv *httptest.Server, key, content string) {
	tb.Helper()
	wantArtifactResponse(tb, srv, http.MethodPut, artifactsAPI+"/"+key, strings.NewReader(content), http.StatusOK, "{}")
}

func TestArtifactUploadDownload(t *testing.T) {
	srv, _ := newTestServer(t)
	const mlmodel = "artifact_path: model\nflavors: {}\n"
	putArtifact(t, srv, "1/abc/artifacts/model/MLmodel", mlmodel)
	putArtifact(t, srv, "1/abc/artifacts/plot.png", "\x89PNG")
	putArtifact(t, srv, "1/abc/artifacts/weights.bin", "\x00\x01")
	putArtifact(t, srv, "1/abc/artifacts/model v2/notes.txt", "spaces")

	tests := []struct {
		target, body, contentType, filename string
	}{
		{artifactsAPI + "/1/abc/artifacts/model/MLmodel", mlmodel, "text/plain", "MLmodel"},
		{artifactsAPI + "/1/abc/artifacts/plot.png", "\x89PNG", "image/png", "plot.png"},
		{artifactsAPI + "/1/abc/artifacts/weights.bin", "\x00\x01", "application/octet-stream", "weights.bin"},
		{artifactsAPI + "/1/abc/artifacts/model%20v2/notes.txt", "spaces", "text/plain", "notes.txt"},
		// Equivalent spellings and the ajax prefix reach the same artifact.
		{artifactsAPI + "/1/abc/artifacts/model%2FMLmodel", mlmodel, "text/plain", "MLmodel"},
		{"/ajax-api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/plot.png", "\x89PNG", "image/png", "plot.png"},
	}
	for _, tt := range tests {
		resp := wantArtifactResponse(t, srv, http.MethodGet, tt.target, nil, http.StatusOK, tt.body)
		h := resp.Header
		if got := h.Get("Content-Type"); got != tt.contentType {
			t.Errorf("GET %s: got Content-Type %q, want %q", tt.target, got, tt.contentType)
		}
		if got, want := h.Get("Content-Disposition"), "attachment; filename="+tt.filename; got != want {
			t.Errorf("GET %s: got Content-Disposition %q, want %q", tt.target, got, want)
		}
		if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: got X-Content-Type-Options %q, want nosniff", tt.target, got)
		}
		if got, want := h.Get("Content-Length"), strconv.Itoa(len(tt.body)); got != want {
			t.Errorf("GET %s: got Content-Length %q, want %q", tt.target, got, want)
		}
	}

	// A second upload replaces the first.
	putArtifact(t, srv, "1/abc/artifacts/model/MLmodel", "v2")
	wantArtifactResponse(t, srv, http.MethodGet, artifactsAPI+"/1/abc/artifacts/model/MLmodel", nil, http.StatusOK, "v2")

	for _, target := range []string{
		artifactsAPI + "/1/abc/artifacts/missing.txt",
		artifactsAPI + "/1/abc/artifacts/model", // a folder is not a file
	} {
		wantArtifactError(t, srv, http.MethodGet, target, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	}
}

// TestArtifactLargeStream uploads and downloads an artifact far larger than
// the JSON body limit, as a chunked stream of unknown length.
func TestArtifactLargeStream(t *testing.T) {
	srv, _ := newTestServer(t, func(s *Server) { s.MaxBodyBytes = 1 << 10 })
	const size = 24<<20 + 7
	sent := sha256.New()
	// Wrapping the reader hides its length: the client sends it chunked.
	body := struct{ io.Reader }{io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{42}), size), sent)}
	target := artifactsAPI + "/0/run/artifacts/model/model.ubj"
	wantArtifactResponse(t, srv, http.MethodPut, target, body, http.StatusOK, "{}")

	resp, err := srv.Client().Get(srv.URL + target)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	received := sha256.New()
	n, err := io.Copy(received, resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", target, err)
	}
	if resp.StatusCode != http.StatusOK || n != size || resp.ContentLength != size {
		t.Errorf("GET %s: got status %d, %d bytes, Content-Length %d, want 200 with %d bytes", target, resp.StatusCode, n, resp.ContentLength, size)
	}
	if !bytes.Equal(received.Sum(nil), sent.Sum(nil)) {
		t.Errorf("GET %s: got sha256 %x, want %x", target, received.Sum(nil), sent.Sum(nil))
	}
}

func TestArtifactListProxied(t *testing.T) {
	srv, _ := newTestServer(t)
	putArtifact(t, srv, "1/r/artifacts/metrics.csv", "a,b\n")
	putArtifact(t, srv, "1/r/artifacts/model/MLmodel", "flavors: {}")
	putArtifact(t, srv, "1/r/artifacts/model/data/w.bin", "0123456789")
	putArtifact(t, srv, "1/r/artifacts/empty.txt", "")

	tests := []struct{ query, want string }{
		{"", `{"files":[{"path":"1","is_dir":true}]}`},
		{"?path=1/r/artifacts", `{"files":[` +
			`{"path":"empty.txt","is_dir":false,"file_size":0},` +
			`{"path":"metrics.csv","is_dir":false,"file_size":4},` +
			`{"path":"model","is_dir":true}]}`},
		{"?path=1/r/artifacts/model/", `{"files":[` +
			`{"path":"MLmodel","is_dir":false,"file_size":11},` +
			`{"path":"data","is_dir":true}]}`},
		{"?path=1%2Fr%2Fartifacts%2Fmodel%2Fdata", `{"files":[{"path":"w.bin","is_dir":false,"file_size":10}]}`},
		// MLflow leaves an empty list out.
		{"?path=1/r/artifacts/missing", `{}`},
		{"?path=1/r/artifacts/metrics.csv", `{}`},
	}
	for _, tt := range tests {
		wantArtifactResponse(t, srv, http.MethodGet, artifactsAPI+tt.query, nil, http.StatusOK, tt.want)
	}
}

func TestArtifactDelete(t *testing.T) {
	srv, _ := newTestServer(t)
	putArtifact(t, srv, "2/r/artifacts/a.txt", "a")
	putArtifact(t, srv, "2/r/artifacts/dir/b.txt", "b")
	putArtifact(t, srv, "2/r/artifacts/dir/sub/c.txt", "c")

	wantArtifactResponse(t, srv, http.MethodDelete, artifactsAPI+"/2/r/artifacts/a.txt", nil, http.StatusOK, "{}")
	wantArtifactError(t, srv, http.MethodGet, artifactsAPI+"/2/r/artifacts/a.txt", http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")

	// A folder goes with everything under it.
	wantArtifactResponse(t, srv, http.MethodDelete, artifactsAPI+"/2/r/artifacts/dir", nil, http.StatusOK, "{}")
	wantArtifactError(t, srv, http.MethodGet, artifactsAPI+"/2/r/artifacts/dir/sub/c.txt", http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	wantArtifactResponse(t, srv, http.MethodGet, artifactsAPI+"?path=2/r/artifacts", nil, http.StatusOK, `{}`)

	// As in MLflow, deleting what does not exist succeeds.
	wantArtifactResponse(t, srv, http.MethodDelete, artifactsAPI+"/2/r/artifacts/never", nil, http.StatusOK, "{}")
	// The root is not an artifact.
	wantArtifactError(t, srv, http.MethodDelete, artifactsAPI+"/", http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
}

// TestArtifactHostilePaths sends paths that try to leave the store's root,
// in every spelling, to every artifact endpoint: each is a 400
// INVALID_PARAMETER_VALUE, and the file next to the store stays unread and
// untouched.
func TestArtifactHostilePaths(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("top secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := artifact.Open(context.Background(), filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv, _ := newTestServer(t, func(s *Server) { s.Artifacts = store })
	putArtifact(t, srv, "keep.txt", "keep")

	paths := []string{
		"../secret",
		"a/../../secret",
		"%2e%2e/secret",
		"%2E%2E%2Fsecret",
		"..%2fsecret",
		"a%2f..%2f..%2fsecret",
		"%252e%252e%252fsecret",
		`..\secret`,
		"..%5csecret",
		"a%00b",
		"a%0ab",
		"/" + filepath.ToSlash(secret),
		"%2f" + strings.ReplaceAll(strings.TrimPrefix(filepath.ToSlash(secret), "/"), "/", "%2f"),
		"C:%2fWindows",
		"file:%2f%2f%2fetc%2fpasswd",
	}
	for _, p := range paths {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			wantArtifactError(t, srv, method, artifactsAPI+"/"+p, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
		}
		wantArtifactError(t, srv, http.MethodGet, "/ajax-api/2.0/mlflow-artifacts/artifacts/"+p, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
		wantArtifactError(t, srv, http.MethodGet, artifactsAPI+"?path="+p, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
	}

	// The tracking API's listing rejects them too, before it looks the run
	// up (so that this run need not exist).
	for _, p := range []string{"../..", "%2e%2e%2f%2e%2e", "..%252f..", "/etc", `..\..`} {
		wantArtifactError(t, srv, http.MethodGet, "/api/2.0/mlflow/artifacts/list?run_id=0123456789abcdef0123456789abcdef&path="+p, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
	}

	if b, err := os.ReadFile(secret); err != nil || string(b) != "top secret" {
		t.Errorf("the file next to the store: got %q, %v, want it untouched", b, err)
	}
	wantArtifactResponse(t, srv, http.MethodGet, artifactsAPI, nil, http.StatusOK,
		`{"files":[{"path":"keep.txt","is_dir":false,"file_size":4}]}`)
}

// mustCreateArtifactRun creates an experiment and a run in it.
func mustCreateArtifactRun(tb testing.TB, s *Server) *tracking.Run {
	tb.Helper()
	ctx := context.Background()
	expID, err := s.Tracking.CreateExperiment(ctx, "artifacts-"+tb.Name(), "", nil)
	if err != nil {
		tb.Fatalf("create experiment: %v", err)
	}
	run, err := s.Tracking.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: expID})
	if err != nil {
		tb.Fatalf("create run: %v", err)
	}
	return run
}

func TestListRunArtifacts(t *testing.T) {
	srv, s := newTestServer(t)
	run := mustCreateArtifactRun(t, s)
	root := run.Info.ArtifactURI
	key, ok := strings.CutPrefix(root, artifact.URIScheme+":/")
	if !ok {
		t.Fatalf("run artifact_uri %q: want an %s:/ URI", root, artifact.URIScheme)
	}
	// What an MLflow client does with an mlflow-artifacts:/ root: upload
	// through the proxied API under the root's path.
	putArtifact(t, srv, key+"/metrics.csv", "a,b\n")
	putArtifact(t, srv, key+"/model/MLmodel", "flavors: {}")
	putArtifact(t, srv, key+"/model/data/w.bin", "0123456789")

	rootJSON, _ := json.Marshal(root)
	list := "/api/2.0/mlflow/artifacts/list?run_id=" + run.Info.RunID
	tests := []struct{ target, want string }{
		{list, `{"root_uri":` + string(rootJSON) + `,"files":[` +
			`{"path":"metrics.csv","is_dir":false,"file_size":4},` +
			`{"path":"model","is_dir":true}]}`},
		{list + "&path=model", `{"root_uri":` + string(rootJSON) + `,"files":[` +
			`{"path":"model/MLmodel","is_dir":false,"file_size":11},` +
			`{"path":"model/data","is_dir":true}]}`},
		{list + "&path=model/data/&page_token=ignored", `{"root_uri":` + string(rootJSON) + `,"files":[` +
			`{"path":"model/data/w.bin","is_dir":false,"file_size":10}]}`},
		{"/api/2.0/mlflow/artifacts/list?run_uuid=" + run.Info.RunID + "&path=model/data", `{"root_uri":` + string(rootJSON) + `,"files":[` +
			`{"path":"model/data/w.bin","is_dir":false,"file_size":10}]}`},
		{"/ajax-api/2.0/mlflow/artifacts/list?run_id=" + run.Info.RunID + "&path=missing", `{"root_uri":` + string(rootJSON) + `}`},
	}
	for _, tt := range tests {
		wantArtifactResponse(t, srv, http.MethodGet, tt.target, nil, http.StatusOK, tt.want)
	}

	wantArtifactError(t, srv, http.MethodGet, "/api/2.0/mlflow/artifacts/list?path=model", http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
	wantArtifactError(t, srv, http.MethodGet, "/api/2.0/mlflow/artifacts/list?run_id=0123456789abcdef0123456789abcdef", http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
}

// TestArtifactsDisabled checks that without an artifact store the artifact
// API answers 503, as MLflow does without --serve-artifacts.
func TestArtifactsDisabled(t *testing.T) {
	srv, _ := newTestServer(t, func(s *Server) { s.Artifacts = nil })
	for _, tt := range []struct{ method, target string }{
		{http.MethodGet, artifactsAPI + "/a.txt"},
		{http.MethodPut, artifactsAPI + "/a.txt"},
		{http.MethodDelete, artifactsAPI + "/a.txt"},
		{http.MethodGet, artifactsAPI + "?path=a"},
	} {
		wantArtifactError(t, srv, tt.method, tt.target, http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE")
	}
}

// withLocalArtifactRoot gives the server a local artifact store in a fresh
// folder, and has new experiments keep their artifacts there through
// file:// URIs, as `mloop server --artifacts DIR --default-artifact-root
// file://DIR` does. It returns the folder.
func withLocalArtifactRoot(tb testing.TB) (string, func(*Server)) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "store")
	store, err := artifact.Open(context.Background(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	return dir, func(s *Server) {
		s.Artifacts = store
		s.Tracking.ArtifactRoot = "file://" + filepath.ToSlash(dir)
	}
}

// mustWriteFile writes content to the file p, creating its folders, as an
// MLflow client logs artifacts straight to a file:// artifact root.
func mustWriteFile(tb testing.TB, p, content string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// TestListRunArtifactsLocalRoot checks the tracking API's listing of a run
// whose artifact_uri is a file:// URI inside the server's artifact store,
// and that a run whose artifacts live elsewhere on the server's disk is not
// served.
func TestListRunArtifactsLocalRoot(t *testing.T) {
	dir, opt := withLocalArtifactRoot(t)
	srv, s := newTestServer(t, opt)
	run := mustCreateArtifactRun(t, s)
	root := run.Info.ArtifactURI
	runDir, ok := artifact.LocalPath(root)
	if !ok || !strings.HasPrefix(runDir, dir+string(filepath.Separator)) {
		t.Fatalf("run artifact_uri %q: want a file:// URI under %s", root, dir)
	}
	mustWriteFile(t, filepath.Join(runDir, "model", "MLmodel"), "flavors: {}")
	mustWriteFile(t, filepath.Join(runDir, "metrics.csv"), "a,b\n")

	rootJSON, _ := json.Marshal(root)
	list := "/api/2.0/mlflow/artifacts/list?run_id=" + run.Info.RunID
	wantArtifactResponse(t, srv, http.MethodGet, list, nil, http.StatusOK, `{"root_uri":`+string(rootJSON)+`,"files":[`+
		`{"path":"metrics.csv","is_dir":false,"file_size":4},`+
		`{"path":"model","is_dir":true}]}`)
	wantArtifactResponse(t, srv, http.MethodGet, list+"&path=model", nil, http.StatusOK, `{"root_uri":`+string(rootJSON)+`,"files":[`+
		`{"path":"model/MLmodel","is_dir":false,"file_size":11}]}`)

	// An experiment whose artifact_location is a folder the server does not
	// serve: its runs' artifacts are the client's to read.
	ctx := context.Background()
	expID, err := s.Tracking.CreateExperiment(ctx, "elsewhere", "file://"+filepath.ToSlash(t.TempDir()), nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Tracking.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: expID})
	if err != nil {
		t.Fatal(err)
	}
	wantArtifactError(t, srv, http.MethodGet, "/api/2.0/mlflow/artifacts/list?run_id="+other.Info.RunID, http.StatusNotImplemented, "NOT_IMPLEMENTED")
}

// TestArtifactInvalidPathMessage checks that a path that could leave the
// artifact root is answered with MLflow's exact error body, which MLflow's
// test_path_validation compares with ==.
func TestArtifactInvalidPathMessage(t *testing.T) {
	srv, s := newTestServer(t)
	run := mustCreateArtifactRun(t, s)
	const want = `{"error_code":"INVALID_PARAMETER_VALUE","message":"Invalid path"}`
	for _, target := range []string{
		"/api/2.0/mlflow/artifacts/list?run_id=" + run.Info.RunID + "&path=../path",
		"/api/2.0/mlflow/artifacts/list?run_id=" + run.Info.RunID + "&path=%2e%2e%2fpath",
		"/api/2.0/mlflow/artifacts/list?run_id=" + run.Info.RunID + "&path=/etc",
		artifactsAPI + "?path=../path",
		artifactsAPI + "/a%2f..%2f..%2fpath",
	} {
		wantArtifactResponse(t, srv, http.MethodGet, target, nil, http.StatusBadRequest, want)
	}
}

// TestSendArtifactUnder checks the download MLflow's get-artifact and
// model-versions/get-artifact endpoints answer, for every kind of artifact
// root the server serves, through a test route that serves
// sendArtifactUnder(root, path) for the query's root and path.
func TestSendArtifactUnder(t *testing.T) {
	dir, opt := withLocalArtifactRoot(t)
	_, s := newTestServer(t, opt)
	mux := http.NewServeMux()
	mux.Handle("GET /artifact", s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		rel, err := artifact.CleanPath(r.URL.Query().Get("path"))
		if err != nil {
			return err
		}
		return s.sendArtifactUnder(w, r, r.URL.Query().Get("root"), rel)
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	ctx := context.Background()
	files := []struct{ name, contentType string }{
		{"a.txt", "text/plain"},
		{"b.pkl", "application/octet-stream"},
		{"c.png", "image/png"},
		{"d.pdf", "application/pdf"},
		{"MLmodel", "text/plain"},
		{"mlproject", "text/plain"},
	}
	for _, f := range files {
		if err := s.Artifacts.Put(ctx, "0/r/artifacts/"+f.name, strings.NewReader(f.name)); err != nil {
			t.Fatal(err)
		}
	}
	mustWriteFile(t, filepath.Join(dir, "mvroot", "model", "MLmodel"), "flavors: {}")

	get := func(root, p string, header http.Header) (*http.Response, string) {
		t.Helper()
		q := url.Values{"root": {root}, "path": {p}}
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/artifact?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, strings.TrimSuffix(string(b), "\n")
	}

	roots := []string{
		"mlflow-artifacts:/0/r/artifacts",
		"mlflow-artifacts://host:5000/0/r/artifacts",
		"http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts",
		"file://" + filepath.ToSlash(dir) + "/0/r/artifacts",
	}
	for _, root := range roots {
		for _, f := range files {
			// As in MLflow, the server's guess wins over what the client accepts.
			resp, body := get(root, f.name, http.Header{"Accept": {"text/html"}})
			if resp.StatusCode != http.StatusOK || body != f.name {
				t.Errorf("%s %s: got %d %q, want 200 %q", root, f.name, resp.StatusCode, body, f.name)
				continue
			}
			h := resp.Header
			if got := h.Get("Content-Type"); got != f.contentType {
				t.Errorf("%s %s: got Content-Type %q, want %q", root, f.name, got, f.contentType)
			}
			if got, want := h.Get("Content-Disposition"), "attachment; filename="+f.name; got != want {
				t.Errorf("%s %s: got Content-Disposition %q, want %q", root, f.name, got, want)
			}
			if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("%s %s: got X-Content-Type-Options %q, want nosniff", root, f.name, got)
			}
		}
	}

	tests := []struct {
		root, path string
		status     int
		body       string
	}{
		// A model version's source under the store's root.
		{"mlflow-artifacts:/mvroot", "model/MLmodel", http.StatusOK, "flavors: {}"},
		{"file://" + filepath.ToSlash(dir) + "/mvroot/model", "MLmodel", http.StatusOK, "flavors: {}"},
		{"mlflow-artifacts:/0/r/artifacts", "missing.txt", http.StatusNotFound, ""},
		{"mlflow-artifacts:/0/r", "artifacts", http.StatusNotFound, ""}, // a folder
		{"mlflow-artifacts:/0/r/artifacts", "../../../etc/passwd", http.StatusBadRequest, `{"error_code":"INVALID_PARAMETER_VALUE","message":"Invalid path"}`},
		{"file:///etc", "passwd", http.StatusNotImplemented, ""},
		{"s3://bucket/0/r/artifacts", "a.txt", http.StatusNotImplemented, ""},
	}
	for _, tt := range tests {
		resp, body := get(tt.root, tt.path, nil)
		if resp.StatusCode != tt.status || (tt.body != "" && body != tt.body) {
			t.Errorf("%s %s: got %d %q, want %d %q", tt.root, tt.path, resp.StatusCode, body, tt.status, tt.body)
		}
	}
}

// TestArtifactReservedDatasetFolder checks that the proxied artifact API
// cannot overwrite or delete dataset blobs: the datasets/ folder of the store
// is read-only through it.
func TestArtifactReservedDatasetFolder(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, target := range []string{"/datasets", "/datasets/blobs/sha256/ab/abcd", "/datasets/x"} {
		wantArtifactError(t, srv, http.MethodPut, artifactsAPI+target, http.StatusForbidden, "PERMISSION_DENIED")
		wantArtifactError(t, srv, http.MethodDelete, artifactsAPI+target, http.StatusForbidden, "PERMISSION_DENIED")
	}
	// A folder that merely starts with the same letters is an ordinary one.
	putArtifact(t, srv, "datasets2/a.txt", "a")
}
