package client

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/dataset"
)

// fakeServer implements the /api/v1 dataset contract in memory, enough to
// test the client's side of it without the real server: content-addressed
// blobs checked on upload, versions deduplicated by manifest digest, and
// MLflow-shaped error answers. It counts the requests it serves.
type fakeServer struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	blobs    map[string][]byte
	versions map[string][]*dataset.Version // by dataset, oldest first
	schemas  map[string][]byte
	calls    map[string]int // "PUT blob", "GET blob", "POST versions", …

	// corrupt, when set, makes GET blob answer wrong bytes of the right size.
	corrupt bool
	// putStarted, when non-nil, receives once when a PUT blob has read the
	// first byte of its body; the upload then stalls until release closes.
	putStarted chan struct{}
	release    chan struct{}
}

func newFakeServer(t testing.TB) *fakeServer {
	f := &fakeServer{t: t, blobs: map[string][]byte{}, versions: map[string][]*dataset.Version{},
		schemas: map[string][]byte{}, calls: map[string]int{}, release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/blobs/missing", f.missing)
	mux.HandleFunc("PUT /api/v1/blobs/sha256/{hex}", f.putBlob)
	mux.HandleFunc("GET /api/v1/blobs/sha256/{hex}", f.getBlob)
	mux.HandleFunc("HEAD /api/v1/blobs/sha256/{hex}", f.getBlob)
	mux.HandleFunc("GET /api/v1/datasets", f.listDatasets)
	mux.HandleFunc("POST /api/v1/datasets/{name}/versions", f.createVersion)
	mux.HandleFunc("GET /api/v1/datasets/{name}/versions", f.listVersions)
	mux.HandleFunc("GET /api/v1/datasets/{name}/versions/{ref}", f.getVersion)
	mux.HandleFunc("GET /api/v1/datasets/{name}/versions/{ref}/runs", f.runs)
	mux.HandleFunc("GET /api/v1/datasets/{name}/schema", f.getSchema)
	mux.HandleFunc("PUT /api/v1/datasets/{name}/schema", f.putSchema)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.release) }) // runs first: stalled uploads end
	return f
}

func (f *fakeServer) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[call]
}

func (f *fakeServer) note(call string) {
	f.mu.Lock()
	f.calls[call]++
	f.mu.Unlock()
}

func fakeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error_code": code, "message": msg})
}

func fakeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeServer) missing(w http.ResponseWriter, r *http.Request) {
	f.note("POST missing")
	var in struct {
		Digests []string `json:"digests"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fakeError(w, 400, "BAD_REQUEST", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []string{}
	for _, d := range in.Digests {
		if _, ok := f.blobs[d]; !ok {
			out = append(out, d)
		}
	}
	fakeJSON(w, 200, map[string][]string{"missing": out})
}

func (f *fakeServer) putBlob(w http.ResponseWriter, r *http.Request) {
	f.note("PUT blob")
	if f.putStarted != nil {
		buf := make([]byte, 1)
		io.ReadFull(r.Body, buf)
		select {
		case f.putStarted <- struct{}{}:
		default:
		}
		<-f.release
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	want := r.PathValue("hex")
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != want {
		fakeError(w, 400, "INVALID_PARAMETER_VALUE", "The uploaded bytes do not hash to "+want+".")
		return
	}
	f.mu.Lock()
	_, existed := f.blobs[want]
	f.blobs[want] = b
	f.mu.Unlock()
	if existed {
		w.WriteHeader(200)
	} else {
		w.WriteHeader(201)
	}
}

func (f *fakeServer) getBlob(w http.ResponseWriter, r *http.Request) {
	f.note(r.Method + " blob")
	f.mu.Lock()
	b, ok := f.blobs[r.PathValue("hex")]
	f.mu.Unlock()
	if !ok {
		fakeError(w, 404, "RESOURCE_DOES_NOT_EXIST", "No blob "+r.PathValue("hex")+".")
		return
	}
	if f.corrupt {
		b = []byte(strings.Repeat("x", len(b)))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodGet {
		w.Write(b)
	}
}

func (f *fakeServer) createVersion(w http.ResponseWriter, r *http.Request) {
	f.note("POST versions")
	name := r.PathValue("name")
	if err := dataset.ValidateName(name); err != nil {
		fakeError(w, 400, "INVALID_PARAMETER_VALUE", err.Error())
		return
	}
	var in dataset.CreateRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fakeError(w, 400, "BAD_REQUEST", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, file := range in.Files {
		if _, ok := f.blobs[file.SHA256]; !ok {
			fakeError(w, 400, "INVALID_PARAMETER_VALUE", "Blob of "+file.Path+" was not uploaded.")
			return
		}
	}
	digest := dataset.ManifestDigest(in.Files)
	for _, v := range f.versions[name] {
		if v.Digest == digest {
			fakeJSON(w, 200, map[string]any{"version": v, "created": false})
			return
		}
	}
	v := &dataset.Version{Dataset: name, Version: int64(len(f.versions[name]) + 1), Digest: digest,
		Files: in.Files, Profile: in.Profile, Source: in.Source, User: in.User, Tags: in.Tags,
		CreatedAt: time.Now().UTC()}
	for _, file := range in.Files {
		v.Rows += file.Rows
		v.Bytes += file.Size
	}
	f.versions[name] = append(f.versions[name], v)
	fakeJSON(w, 201, map[string]any{"version": v, "created": true})
}

func (f *fakeServer) listDatasets(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []dataset.Summary{}
	for name, vs := range f.versions {
		last := vs[len(vs)-1]
		out = append(out, dataset.Summary{Name: name, LatestVersion: last.Version, Versions: int64(len(vs)),
			Rows: last.Rows, CreatedAt: vs[0].CreatedAt, UpdatedAt: last.CreatedAt})
	}
	fakeJSON(w, 200, map[string]any{"datasets": out})
}

func (f *fakeServer) listVersions(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs, ok := f.versions[r.PathValue("name")]
	if !ok {
		fakeError(w, 404, "RESOURCE_DOES_NOT_EXIST", "No dataset "+r.PathValue("name")+".")
		return
	}
	// One version per page, so that clients must follow the pages.
	i := len(vs) - 1
	if tok := r.URL.Query().Get("page_token"); tok != "" {
		n, _ := strconv.Atoi(tok)
		i = n - 2
	}
	out := []*dataset.Version{vs[i]}
	next := ""
	if i > 0 {
		next = strconv.FormatInt(vs[i].Version, 10)
	}
	fakeJSON(w, 200, map[string]any{"versions": out, "next_page_token": next})
}

// find returns the version a reference selects, or nil.
func (f *fakeServer) find(name, sel string) *dataset.Version {
	f.mu.Lock()
	defer f.mu.Unlock()
	ref, err := dataset.ParseSelector(name, sel)
	if err != nil {
		return nil
	}
	vs := f.versions[name]
	for i := len(vs) - 1; i >= 0; i-- {
		v := vs[i]
		switch {
		case ref.Latest(),
			ref.Version == v.Version,
			ref.DigestPrefix != "" && strings.HasPrefix(v.Digest, "sha256:"+ref.DigestPrefix):
			return v
		}
	}
	return nil
}

func (f *fakeServer) getVersion(w http.ResponseWriter, r *http.Request) {
	f.note("GET version")
	v := f.find(r.PathValue("name"), r.PathValue("ref"))
	if v == nil {
		fakeError(w, 404, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("No version %s of dataset %s.", r.PathValue("ref"), r.PathValue("name")))
		return
	}
	out := *v
	if r.URL.Query().Get("profile") == "false" {
		out.Profile = nil
	}
	fakeJSON(w, 200, &out)
}

func (f *fakeServer) runs(w http.ResponseWriter, r *http.Request) {
	if f.find(r.PathValue("name"), r.PathValue("ref")) == nil {
		fakeError(w, 404, "RESOURCE_DOES_NOT_EXIST", "No such version.")
		return
	}
	fakeJSON(w, 200, map[string]any{"runs": []dataset.LineageRun{{RunID: "r1", ExperimentID: "0", Context: "training"}}})
}

func (f *fakeServer) getSchema(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	b, ok := f.schemas[r.PathValue("name")]
	f.mu.Unlock()
	if !ok {
		fakeError(w, 404, "RESOURCE_DOES_NOT_EXIST", "Dataset "+r.PathValue("name")+" has no schema.")
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(b)
}

func (f *fakeServer) putSchema(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if r.Header.Get("Content-Type") != "application/yaml" {
		fakeError(w, 400, "BAD_REQUEST", "want application/yaml")
		return
	}
	f.mu.Lock()
	f.schemas[r.PathValue("name")] = b
	f.mu.Unlock()
	w.WriteHeader(200)
}
