package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

// datasetServer is a running test server with the dataset service wired as
// cmd/mloop wires it, and the folder of its artifact store.
type datasetServer struct {
	*httptest.Server
	artifactDir string
}

// newDatasetTestServer starts the real HTTP API, as newTestServer does, with
// the dataset service on the same SQLite database (so lineage sees MLflow
// runs) and artifact folder.
func newDatasetTestServer(tb testing.TB) *datasetServer {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	db := sqlstore.NewDB(filepath.Join(dir, "mloop.db"))
	db.Logger = logger
	if err := db.Open(ctx); err != nil {
		tb.Fatalf("open database: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	artDir := filepath.Join(dir, "artifacts")
	arts, err := artifact.Open(ctx, artDir)
	if err != nil {
		tb.Fatalf("open artifact store: %v", err)
	}
	tb.Cleanup(func() { arts.Close() })
	trackingStore := sqlstore.NewTrackingStore(db)
	trackingSvc := tracking.NewService(trackingStore)
	loggedModels := tracking.NewLoggedModels(sqlstore.NewLoggedModelStore(db), trackingSvc)
	datasets := dataset.NewService(sqlstore.NewDatasetStore(db), dataset.NewBlobs(arts), trackingStore)
	datasets.Logger = logger
	s := &Server{
		Tracking:     trackingSvc,
		LoggedModels: loggedModels,
		Registry:     registry.NewService(sqlstore.NewRegistryStore(db), trackingSvc, loggedModels),
		Datasets:     datasets,
		Artifacts:    arts,
		Ready:        db.Ping,
		Logger:       logger,
		Version:      "test",
	}
	srv := httptest.NewServer(s.Handler())
	tb.Cleanup(srv.Close)
	return &datasetServer{Server: srv, artifactDir: artDir}
}

// do sends a request with body (a string, []byte, or any value sent as
// JSON; nil for none) and returns the status, headers and body.
func (d *datasetServer) do(tb testing.TB, method, path string, body any) (int, http.Header, []byte) {
	tb.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatalf("encode %s %s body: %v", method, path, err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, d.URL+path, r)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	resp, err := d.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, out
}

// want sends a request, checks the status and decodes the JSON answer into
// out (unless nil).
func (d *datasetServer) want(tb testing.TB, method, path string, body any, status int, out any) {
	tb.Helper()
	got, _, b := d.do(tb, method, path, body)
	if got != status {
		tb.Fatalf("%s %s: got status %d (%s), want %d", method, path, got, b, status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// wantError sends a request and checks the MLflow-shaped error answer.
func (d *datasetServer) wantError(tb testing.TB, method, path string, body any, status int, code, msg string) {
	tb.Helper()
	var e struct {
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
	}
	d.want(tb, method, path, body, status, &e)
	if e.ErrorCode != code || !strings.Contains(e.Message, msg) {
		tb.Fatalf("%s %s: got %s %q, want %s with a message holding %q", method, path, e.ErrorCode, e.Message, code, msg)
	}
}

func hexSHA(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])
}

// pushFiles uploads contents as the blobs of files a.csv, b.csv, … and
// returns their entries.
func (d *datasetServer) pushFiles(tb testing.TB, contents ...string) []dataset.File {
	tb.Helper()
	var files []dataset.File
	for i, c := range contents {
		h := hexSHA(c)
		d.want(tb, "PUT", "/api/v1/blobs/sha256/"+h, c, http.StatusCreated, nil)
		files = append(files, dataset.File{Path: fmt.Sprintf("%c.csv", 'a'+i), SHA256: h, Size: int64(len(c)),
			Format: dataset.FormatCSV, Rows: int64(strings.Count(c, "\n") - 1)})
	}
	return files
}

// versionReply is the answer of POST …/versions.
type versionReply struct {
	Version *dataset.Version `json:"version"`
	Created bool             `json:"created"`
}

// commit creates a version of name from files with a profile of their rows.
func (d *datasetServer) commit(tb testing.TB, name string, files []dataset.File, status int) versionReply {
	tb.Helper()
	var rows int64
	for _, f := range files {
		rows += f.Rows
	}
	var out versionReply
	d.want(tb, "POST", "/api/v1/datasets/"+name+"/versions",
		dataset.CreateRequest{Files: files, Profile: &dataset.Profile{Rows: rows}, Source: "./data", User: "ann"}, status, &out)
	return out
}

func TestDatasetPushByBlobsAndCommit(t *testing.T) {
	d := newDatasetTestServer(t)
	contents := []string{"x,y\n1,2\n3,4\n", "x,y\n5,6\n"}
	digests := []string{hexSHA(contents[0]), hexSHA(contents[1])}

	var missing struct{ Missing []string }
	d.want(t, "POST", "/api/v1/blobs/missing", map[string]any{"digests": digests}, http.StatusOK, &missing)
	if !slices.Equal(missing.Missing, digests) {
		t.Fatalf("missing before upload: got %v, want %v", missing.Missing, digests)
	}
	files := d.pushFiles(t, contents...)
	var again struct {
		Created bool  `json:"created"`
		Size    int64 `json:"size"`
	}
	d.want(t, "PUT", "/api/v1/blobs/sha256/"+digests[0], contents[0], http.StatusOK, &again)
	if again.Created || again.Size != int64(len(contents[0])) {
		t.Fatalf("second upload: got %+v, want created false and size %d", again, len(contents[0]))
	}
	d.want(t, "POST", "/api/v1/blobs/missing", map[string]any{"digests": append(digests, "sha256:"+hexSHA("absent"))}, http.StatusOK, &missing)
	if want := []string{hexSHA("absent")}; !slices.Equal(missing.Missing, want) {
		t.Fatalf("missing after upload: got %v, want %v", missing.Missing, want)
	}

	status, h, body := d.do(t, "GET", "/api/v1/blobs/sha256/"+digests[0], nil)
	if status != http.StatusOK || string(body) != contents[0] || h.Get("Content-Length") != fmt.Sprint(len(contents[0])) {
		t.Fatalf("GET blob: got %d %q, Content-Length %q; want 200 %q", status, body, h.Get("Content-Length"), contents[0])
	}
	status, h, _ = d.do(t, "HEAD", "/api/v1/blobs/sha256/"+digests[1], nil)
	if status != http.StatusOK || h.Get("Content-Length") != fmt.Sprint(len(contents[1])) {
		t.Fatalf("HEAD blob: got %d, Content-Length %q; want 200, %d", status, h.Get("Content-Length"), len(contents[1]))
	}
	if status, _, _ := d.do(t, "HEAD", "/api/v1/blobs/sha256/"+hexSHA("absent"), nil); status != http.StatusNotFound {
		t.Fatalf("HEAD of a missing blob: got %d, want 404", status)
	}

	first := d.commit(t, "flights", files, http.StatusCreated)
	if !first.Created || first.Version.Version != 1 || first.Version.Digest != dataset.ManifestDigest(files) ||
		first.Version.Rows != 3 || first.Version.Bytes != int64(len(contents[0])+len(contents[1])) || first.Version.User != "ann" {
		t.Fatalf("first commit: got %+v, want version 1 of 3 rows with the manifest digest", first)
	}
	same := d.commit(t, "flights", []dataset.File{files[1], files[0]}, http.StatusOK)
	if same.Created || same.Version.Version != 1 || same.Version.Digest != first.Version.Digest {
		t.Fatalf("identical repush: got %+v, want version 1, created false", same)
	}
	third := d.pushFiles(t, "x,y\n7,8\n")[0]
	third.Path = "c.csv"
	second := d.commit(t, "flights", []dataset.File{files[1], third}, http.StatusCreated)
	if second.Version.Version != 2 {
		t.Fatalf("second commit: got version %d, want 2", second.Version.Version)
	}

	var list struct{ Datasets []dataset.Summary }
	d.want(t, "GET", "/api/v1/datasets", nil, http.StatusOK, &list)
	if len(list.Datasets) != 1 || list.Datasets[0].Name != "flights" || list.Datasets[0].LatestVersion != 2 ||
		list.Datasets[0].Versions != 2 || list.Datasets[0].Rows != second.Version.Rows {
		t.Fatalf("list datasets: got %+v, want flights with 2 versions", list.Datasets)
	}

	var versions struct {
		Versions      []*dataset.Version `json:"versions"`
		NextPageToken string             `json:"next_page_token"`
	}
	d.want(t, "GET", "/api/v1/datasets/flights/versions", nil, http.StatusOK, &versions)
	if len(versions.Versions) != 2 || versions.Versions[0].Version != 2 || versions.Versions[1].Version != 1 ||
		versions.Versions[0].Profile != nil || versions.NextPageToken != "" {
		t.Fatalf("list versions: got %+v, want 2 then 1 without profiles", versions)
	}
	d.want(t, "GET", "/api/v1/datasets/flights/versions?max_results=1", nil, http.StatusOK, &versions)
	if len(versions.Versions) != 1 || versions.Versions[0].Version != 2 || versions.NextPageToken == "" {
		t.Fatalf("first page: got %+v, want version 2 and a next page", versions)
	}
	token := versions.NextPageToken
	versions.NextPageToken = ""
	d.want(t, "GET", "/api/v1/datasets/flights/versions?max_results=1&page_token="+token, nil, http.StatusOK, &versions)
	if len(versions.Versions) != 1 || versions.Versions[0].Version != 1 || versions.NextPageToken != "" {
		t.Fatalf("second page: got %+v, want version 1 and no next page", versions)
	}

	hex1 := strings.TrimPrefix(first.Version.Digest, "sha256:")
	for ref, want := range map[string]int64{"latest": 2, "1": 1, "2": 2, "sha256:" + hex1[:8]: 1, first.Version.Digest: 1} {
		var v dataset.Version
		d.want(t, "GET", "/api/v1/datasets/flights/versions/"+ref, nil, http.StatusOK, &v)
		if v.Version != want || v.Profile == nil || len(v.Files) == 0 {
			t.Errorf("GET version %s: got version %d, profile %v, %d files; want version %d with profile and files", ref, v.Version, v.Profile != nil, len(v.Files), want)
		}
	}
	var v dataset.Version
	d.want(t, "GET", "/api/v1/datasets/flights/versions/1?profile=false", nil, http.StatusOK, &v)
	if v.Version != 1 || v.Profile != nil {
		t.Fatalf("GET version without profile: got version %d, profile %v", v.Version, v.Profile != nil)
	}
	d.wantError(t, "GET", "/api/v1/datasets/flights/versions/9", nil, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "its versions are 1 to 2")
	d.wantError(t, "GET", "/api/v1/datasets/nope/versions/latest", nil, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", `Dataset "nope" does not exist`)
	d.wantError(t, "GET", "/api/v1/datasets/nope/versions", nil, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", `Dataset "nope" does not exist`)
	d.wantError(t, "GET", "/api/v1/datasets/flights/versions/sha256:0000000000", nil, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "no version whose digest starts with")
	d.wantError(t, "GET", "/api/v1/datasets/flights/versions/one", nil, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "version number")
	d.wantError(t, "GET", "/api/v1/datasets/flights/versions/1?profile=maybe", nil, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "profile")
	d.wantError(t, "GET", "/api/v1/datasets/flights/versions?max_results=x", nil, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "max_results")
}

func TestDatasetBlobHashMismatchStoresNothing(t *testing.T) {
	d := newDatasetTestServer(t)
	claimed := hexSHA("the bytes the client hashed")
	d.wantError(t, "PUT", "/api/v1/blobs/sha256/"+claimed, "other bytes", http.StatusBadRequest, "INVALID_PARAMETER_VALUE",
		"hash to sha256:"+hexSHA("other bytes")+", not to sha256:"+claimed)
	if status, _, _ := d.do(t, "HEAD", "/api/v1/blobs/sha256/"+claimed, nil); status != http.StatusNotFound {
		t.Fatalf("HEAD after a mismatching upload: got %d, want 404", status)
	}
	var files []string
	filepath.WalkDir(d.artifactDir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Fatalf("after a mismatching upload: got files %v, want none", files)
	}
	d.wantError(t, "PUT", "/api/v1/blobs/sha256/"+strings.ToUpper(claimed), "x", http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "64 lower-case hex")
	d.wantError(t, "GET", "/api/v1/blobs/sha256/abc", nil, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "64 lower-case hex")
	d.wantError(t, "POST", "/api/v1/blobs/missing", `{"digests": ["nothex"]}`, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "64 lower-case hex")
	d.wantError(t, "POST", "/api/v1/blobs/missing", `{"digests": `, http.StatusBadRequest, "BAD_REQUEST", "Malformed JSON")
	d.wantError(t, "POST", "/api/v1/blobs/missing", `{"digests": "x"}`, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "digests")
}

func TestDatasetBadRequests(t *testing.T) {
	d := newDatasetTestServer(t)
	files := d.pushFiles(t, "x\n1\n")
	for _, name := range []string{".hidden", "-flag", "a%2Fb", "a%20b", "a%00b", "caf%C3%A9", strings.Repeat("n", 201)} {
		d.wantError(t, "POST", "/api/v1/datasets/"+name+"/versions", dataset.CreateRequest{Files: files, Profile: &dataset.Profile{Rows: 1}},
			http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "a name is 1 to 200 characters")
		d.wantError(t, "GET", "/api/v1/datasets/"+name+"/versions/latest", nil, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "a name is 1 to 200 characters")
	}
	absent := files[0]
	absent.Path, absent.SHA256 = "b.csv", hexSHA("never uploaded")
	d.wantError(t, "POST", "/api/v1/datasets/d/versions", dataset.CreateRequest{Files: []dataset.File{files[0], absent}, Profile: &dataset.Profile{Rows: 2}},
		http.StatusBadRequest, "INVALID_PARAMETER_VALUE", `File "b.csv": no blob sha256:`+absent.SHA256+` is stored on the server: upload it first`)
	escape := files[0]
	escape.Path = "../../etc/passwd"
	d.wantError(t, "POST", "/api/v1/datasets/d/versions", dataset.CreateRequest{Files: []dataset.File{escape}, Profile: &dataset.Profile{Rows: 1}},
		http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "not a clean relative path")
	d.wantError(t, "POST", "/api/v1/datasets/d/versions", `{"files": [`, http.StatusBadRequest, "BAD_REQUEST", "Malformed JSON")
	d.wantError(t, "POST", "/api/v1/datasets/d/versions", `{"files": [{"size": "big"}]}`, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "files.size")
	d.wantError(t, "POST", "/api/v1/datasets/d/versions", ``, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "empty")
	var list struct{ Datasets []dataset.Summary }
	d.want(t, "GET", "/api/v1/datasets", nil, http.StatusOK, &list)
	if len(list.Datasets) != 0 {
		t.Fatalf("after rejected pushes: got datasets %+v, want none", list.Datasets)
	}
}

func TestDatasetConcurrentPushes(t *testing.T) {
	d := newDatasetTestServer(t)
	const n = 8
	var all [][]dataset.File
	for i := range n {
		all = append(all, d.pushFiles(t, fmt.Sprintf("x\n%d\n", i)))
	}
	numbers := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body, _ := json.Marshal(dataset.CreateRequest{Files: all[i], Profile: &dataset.Profile{Rows: 1}})
			resp, err := d.Client().Post(d.URL+"/api/v1/datasets/race/versions", "application/json", bytes.NewReader(body))
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			var out versionReply
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated || out.Version == nil {
				errs[i] = fmt.Errorf("push %d: got status %d, %+v, %v; want 201 with a version", i, resp.StatusCode, out, err)
				return
			}
			numbers[i] = out.Version.Version
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(numbers)
	if want := []int64{1, 2, 3, 4, 5, 6, 7, 8}; !slices.Equal(numbers, want) {
		t.Fatalf("concurrent pushes: got versions %v, want %v", numbers, want)
	}
}

func TestDatasetLineage(t *testing.T) {
	d := newDatasetTestServer(t)
	v := d.commit(t, "flights", d.pushFiles(t, "x\n1\n"), http.StatusCreated).Version
	hexDigest := strings.TrimPrefix(v.Digest, "sha256:")
	createRun := func(name string) string {
		var out struct {
			Run struct {
				Info struct {
					RunID string `json:"run_id"`
				} `json:"info"`
			} `json:"run"`
		}
		d.want(t, "POST", "/api/2.0/mlflow/runs/create", map[string]any{"experiment_id": "0", "run_name": name, "start_time": 1000}, http.StatusOK, &out)
		return out.Run.Info.RunID
	}
	logInput := func(runID, name, digest, context string) {
		in := map[string]any{"dataset": map[string]any{"name": name, "digest": digest, "source_type": "local", "source": "./data"}}
		if context != "" {
			in["tags"] = []map[string]string{{"key": "mlflow.data.context", "value": context}}
		}
		d.want(t, "POST", "/api/2.0/mlflow/runs/log-inputs", map[string]any{"run_id": runID, "datasets": []any{in}}, http.StatusOK, nil)
	}
	train := createRun("train")
	logInput(train, "flights", hexDigest[:8], "training")
	eval := createRun("eval")
	logInput(eval, "flights-36", hexDigest[:36], "eval") // the longest digest MLflow stores
	other := createRun("other")
	logInput(other, "flights", hexDigest[:7], "training") // too short to link
	logInput(other, "else", hexSHA("else")[:8], "")
	prefixed := createRun("prefixed")
	logInput(prefixed, "flights", v.Digest[:36], "")

	var out struct {
		Runs []dataset.LineageRun `json:"runs"`
	}
	d.want(t, "GET", "/api/v1/datasets/flights/versions/latest/runs", nil, http.StatusOK, &out)
	got := map[string]dataset.LineageRun{}
	for _, r := range out.Runs {
		got[r.RunID] = r
	}
	want := map[string]dataset.LineageRun{
		train:    {RunID: train, ExperimentID: "0", RunName: "train", Status: "RUNNING", StartTime: 1000, DatasetName: "flights", Context: "training"},
		eval:     {RunID: eval, ExperimentID: "0", RunName: "eval", Status: "RUNNING", StartTime: 1000, DatasetName: "flights-36", Context: "eval"},
		prefixed: {RunID: prefixed, ExperimentID: "0", RunName: "prefixed", Status: "RUNNING", StartTime: 1000, DatasetName: "flights"},
	}
	if len(out.Runs) != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("lineage runs:\n got %+v\nwant %+v", out.Runs, want)
	}
	d.wantError(t, "GET", "/api/v1/datasets/flights/versions/2/runs", nil, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "its versions are 1 to 1")
}

func TestDatasetSchemaHTTP(t *testing.T) {
	d := newDatasetTestServer(t)
	schema := "columns:\n  - name: x\n    type: integer\n"
	d.wantError(t, "PUT", "/api/v1/datasets/d/schema", schema, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "push a version")
	d.commit(t, "d", d.pushFiles(t, "x\n1\n"), http.StatusCreated)
	d.wantError(t, "GET", "/api/v1/datasets/d/schema", nil, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "has no schema")
	d.want(t, "PUT", "/api/v1/datasets/d/schema", schema, http.StatusOK, nil)
	status, h, body := d.do(t, "GET", "/api/v1/datasets/d/schema", nil)
	if status != http.StatusOK || string(body) != schema || !strings.HasPrefix(h.Get("Content-Type"), "application/yaml") {
		t.Fatalf("GET schema: got %d %q (%s), want 200 %q as application/yaml", status, body, h.Get("Content-Type"), schema)
	}
	d.wantError(t, "PUT", "/api/v1/datasets/d/schema", "", http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "empty")
	d.wantError(t, "PUT", "/api/v1/datasets/d/schema", "columns:\n  - name: x\n    type: complex\n", http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Invalid schema")
	d.wantError(t, "PUT", "/api/v1/datasets/a%2Fb/schema", schema, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "not allowed")
}

func TestDatasetGCHTTP(t *testing.T) {
	d := newDatasetTestServer(t)
	kept := d.pushFiles(t, "x\n1\n")
	d.commit(t, "d", kept, http.StatusCreated)
	orphan := d.pushFiles(t, "x\n2\n")[0]
	var res dataset.GCResult
	d.want(t, "POST", "/api/v1/datasets/gc", nil, http.StatusOK, &res)
	if res.Scanned != 2 || res.Referenced != 1 || res.Recent != 1 || len(res.Deleted) != 0 {
		t.Fatalf("GC with the default grace: got %+v, want the orphan kept as recent", res)
	}
	d.want(t, "POST", "/api/v1/datasets/gc", map[string]string{"older_than": "0s"}, http.StatusOK, &res)
	if !slices.Equal(res.Deleted, []string{orphan.SHA256}) || res.DeletedBytes != orphan.Size || res.Referenced != 1 {
		t.Fatalf("GC with no grace: got %+v, want the orphan %s deleted", res, orphan.SHA256)
	}
	if status, _, _ := d.do(t, "HEAD", "/api/v1/blobs/sha256/"+kept[0].SHA256, nil); status != http.StatusOK {
		t.Fatalf("referenced blob after GC: got %d, want 200", status)
	}
	d.wantError(t, "POST", "/api/v1/datasets/gc", map[string]string{"older_than": "soon"}, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "older_than")
}

func TestDatasetsNotConfigured(t *testing.T) {
	srv, _ := newTestServer(t)
	resp, err := srv.Client().Get(srv.URL + "/api/v1/datasets")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		ErrorCode string `json:"error_code"`
	}
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != http.StatusNotImplemented || e.ErrorCode != "NOT_IMPLEMENTED" {
		t.Fatalf("datasets without a dataset service: got %d %s, want 501 NOT_IMPLEMENTED", resp.StatusCode, e.ErrorCode)
	}
}

// TestDatasetPushWithoutProfile commits files without a profile: the server
// profiles the blobs, and the rows come from its profile.
func TestDatasetPushWithoutProfile(t *testing.T) {
	d := newDatasetTestServer(t)
	files := d.pushFiles(t, "x,y\n1,a\n2,b\n", "x,y\n3,c\n")
	for i := range files {
		files[i].Rows = 0
	}
	var out versionReply
	d.want(t, "POST", "/api/v1/datasets/d/versions", dataset.CreateRequest{Files: files}, http.StatusCreated, &out)
	if out.Version.Rows != 3 || out.Version.Files[0].Rows != 2 || out.Version.Profile == nil || out.Version.Profile.Column("x") == nil {
		t.Fatalf("push without a profile: got %+v, want 3 rows profiled by the server", out.Version)
	}
}
