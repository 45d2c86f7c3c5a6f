package client

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
)

// mustScan writes files (relative path → content) into a temporary folder
// and returns a Scan of them as ScanPath would (without profiles).
func mustScan(t *testing.T, files map[string]string) *dataset.Scan {
	t.Helper()
	dir := t.TempDir()
	s := &dataset.Scan{Root: dir, Dir: dir}
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		sum, size, err := dataset.HashFile(context.Background(), p, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.Files = append(s.Files, dataset.File{Path: rel, SHA256: sum, Size: size, Format: dataset.FormatCSV,
			Rows: int64(strings.Count(content, "\n") - 1)})
		s.Bytes += size
	}
	slices.SortFunc(s.Files, func(a, b dataset.File) int { return strings.Compare(a.Path, b.Path) })
	for _, f := range s.Files {
		s.Rows += f.Rows
	}
	s.Digest = dataset.ManifestDigest(s.Files)
	return s
}

func TestPushUploadsOnlyMissingBlobs(t *testing.T) {
	f := newFakeServer(t)
	c := New(f.srv.URL, nil)
	ctx := context.Background()
	// Two files with the same bytes share one blob.
	scan := mustScan(t, map[string]string{
		"a.csv":     "x,y\n1,2\n3,4\n",
		"sub/b.csv": "x,y\n5,6\n",
		"sub/c.csv": "x,y\n5,6\n",
	})
	var last TransferProgress
	res, err := c.Push(ctx, "points", scan, PushOptions{User: "ana", Tags: map[string]string{"k": "v"},
		Progress: func(p TransferProgress) { last = p }})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if !res.Created || res.Version.Version != 1 || res.Version.Digest != scan.Digest {
		t.Fatalf("push: got created=%v %s %s, want a new version 1 with digest %s", res.Created, res.Version.Ref(), res.Version.Digest, scan.Digest)
	}
	if res.UploadedFiles != 2 || f.count("PUT blob") != 2 {
		t.Fatalf("push: got %d uploads reported, %d served, want 2 (one per distinct blob)", res.UploadedFiles, f.count("PUT blob"))
	}
	if last.Bytes != res.UploadedBytes || last.FilesDone != 2 || last.Files != 2 {
		t.Fatalf("last progress: got %+v, want every byte of %d and 2 of 2 files", last, res.UploadedBytes)
	}
	if v := res.Version; v.User != "ana" || v.Tags["k"] != "v" || v.Source != scan.Root || v.Rows != 4 {
		t.Fatalf("version: got user %q tags %v source %q rows %d, want ana, k=v, %s, 4", v.User, v.Tags, v.Source, v.Rows, scan.Root)
	}

	// Identical content again: nothing uploaded, the same version back.
	res, err = c.Push(ctx, "points", scan, PushOptions{})
	if err != nil {
		t.Fatalf("repush: %v", err)
	}
	if res.Created || res.Version.Version != 1 || res.UploadedFiles != 0 || f.count("PUT blob") != 2 {
		t.Fatalf("repush: got created=%v version %d, %d uploads (%d served in all), want the existing version 1 and no upload",
			res.Created, res.Version.Version, res.UploadedFiles, f.count("PUT blob"))
	}

	// One changed file: only it is uploaded.
	scan2 := mustScan(t, map[string]string{"a.csv": "x,y\n1,2\n3,4\n", "sub/b.csv": "x,y\n7,8\n"})
	res, err = c.Push(ctx, "points", scan2, PushOptions{})
	if err != nil {
		t.Fatalf("push changed: %v", err)
	}
	if !res.Created || res.Version.Version != 2 || res.UploadedFiles != 1 {
		t.Fatalf("push changed: got created=%v version %d uploads %d, want version 2 and 1 upload", res.Created, res.Version.Version, res.UploadedFiles)
	}
}

func TestPushCancelledCommitsNothing(t *testing.T) {
	f := newFakeServer(t)
	f.putStarted = make(chan struct{}, 1)
	c := New(f.srv.URL, nil)
	scan := mustScan(t, map[string]string{"big.csv": "v\n" + strings.Repeat("1234567\n", 1<<17)})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-f.putStarted
		cancel()
	}()
	_, err := c.Push(ctx, "big", scan, PushOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("push: got %v, want context.Canceled", err)
	}
	if n := f.count("POST versions"); n != 0 {
		t.Fatalf("cancelled push: got %d commits, want 0", n)
	}
	if _, err := c.ListVersions(context.Background(), "big"); !mloop.IsNotFound(err) {
		t.Fatalf("versions after a cancelled push: got %v, want not found", err)
	}
}

func TestPushChangedFileIsRefused(t *testing.T) {
	f := newFakeServer(t)
	c := New(f.srv.URL, nil)
	scan := mustScan(t, map[string]string{"a.csv": "x\n1\n"})
	// Same size, other bytes: only the hash tells.
	if err := os.WriteFile(scan.LocalPath(scan.Files[0]), []byte("x\n2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := c.Push(context.Background(), "a", scan, PushOptions{})
	if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), "push again") {
		t.Fatalf("push of a changed file: got %v, want an invalid error telling to push again", err)
	}
	if n := f.count("POST versions"); n != 0 {
		t.Fatalf("got %d commits, want 0", n)
	}

	// A size change is caught before uploading.
	if err := os.WriteFile(scan.LocalPath(scan.Files[0]), []byte("x\n22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	puts := f.count("PUT blob")
	_, err = c.Push(context.Background(), "a", scan, PushOptions{})
	if mloop.ErrorCode(err) != mloop.ECONFLICT || f.count("PUT blob") != puts {
		t.Fatalf("push of a resized file: got %v and %d more uploads, want a conflict and none", err, f.count("PUT blob")-puts)
	}
}

func TestPullWritesVerifiedFilesAtomically(t *testing.T) {
	f := newFakeServer(t)
	c := New(f.srv.URL, nil)
	ctx := context.Background()
	scan := mustScan(t, map[string]string{"a.csv": "x\n1\n", "deep/er/b.csv": "x\n2\n3\n"})
	res, err := c.Push(ctx, "d", scan, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "out")
	st, err := c.Pull(ctx, res.Version, dest, nil)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if st.DownloadedFiles != 2 || st.SkippedFiles != 0 || st.DownloadedBytes != scan.Bytes {
		t.Fatalf("pull: got %+v, want 2 files and %d bytes downloaded", st, scan.Bytes)
	}
	for _, file := range scan.Files {
		want, _ := os.ReadFile(scan.LocalPath(file))
		got, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(file.Path)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("pulled %s: got %q %v, want %q", file.Path, got, err, want)
		}
		if fi, _ := os.Stat(filepath.Join(dest, filepath.FromSlash(file.Path))); fi.Mode().Perm() != 0o644 {
			t.Fatalf("pulled %s: got mode %v, want 0644", file.Path, fi.Mode().Perm())
		}
	}

	// Again: everything is there already.
	gets := f.count("GET blob")
	st, err = c.Pull(ctx, res.Version, dest, nil)
	if err != nil || st.SkippedFiles != 2 || st.DownloadedFiles != 0 || f.count("GET blob") != gets {
		t.Fatalf("second pull: got %+v %v and %d downloads, want 2 skipped and none", st, err, f.count("GET blob")-gets)
	}

	// A corrupted answer never lands under the file's name.
	f.corrupt = true
	dest2 := t.TempDir()
	_, err = c.Pull(ctx, res.Version, dest2, nil)
	if err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("pull of corrupt bytes: got %v, want a hash mismatch", err)
	}
	var left []string
	filepath.WalkDir(dest2, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Fatalf("after a failed pull: got files %v, want none", left)
	}
}

func TestPullRefusesPathsOutsideDest(t *testing.T) {
	c := New("http://127.0.0.1:1", nil) // never reached
	for _, p := range []string{"../evil.csv", "/etc/evil.csv", "a/../../evil.csv", "", `a\..\evil.csv`} {
		v := &dataset.Version{Dataset: "d", Version: 1, Files: []dataset.File{{Path: p, SHA256: strings.Repeat("a", 64), Size: 1}}}
		dest := t.TempDir()
		_, err := c.Pull(context.Background(), v, dest, nil)
		if mloop.ErrorCode(err) != mloop.EINVALID {
			t.Fatalf("pull of path %q: got %v, want an invalid error", p, err)
		}
	}
}

func TestBlobCacheDownloadsOnce(t *testing.T) {
	f := newFakeServer(t)
	c := New(f.srv.URL, nil)
	ctx := context.Background()
	scan := mustScan(t, map[string]string{"m/jan.csv": "x\n1\n", "m/feb.csv": "x\n2\n"})
	res, err := c.Push(ctx, "d", scan, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cache := NewBlobCache(t.TempDir(), c)
	paths, err := cache.Materialize(ctx, res.Version, nil)
	if err != nil {
		t.Fatalf("materialize: %v", err)
	}
	for i, file := range res.Version.Files {
		if filepath.Base(paths[i]) != filepath.Base(file.Path) {
			t.Fatalf("cached %s: got path %s, want the file's name kept", file.Path, paths[i])
		}
		got, _ := os.ReadFile(paths[i])
		want, _ := os.ReadFile(scan.LocalPath(file))
		if !bytes.Equal(got, want) {
			t.Fatalf("cached %s: got %q, want %q", file.Path, got, want)
		}
	}
	gets := f.count("GET blob")
	again, err := cache.Materialize(ctx, res.Version, nil)
	if err != nil || !slices.Equal(again, paths) || f.count("GET blob") != gets {
		t.Fatalf("materialize again: got %v %v and %d downloads, want the same paths and none", again, err, f.count("GET blob")-gets)
	}
}

func TestVersionsSchemaAndRuns(t *testing.T) {
	f := newFakeServer(t)
	c := New(f.srv.URL+"/", nil) // a trailing slash is fine
	ctx := context.Background()
	for _, content := range []string{"x\n1\n", "x\n1\n2\n"} {
		if _, err := c.Push(ctx, "d", mustScan(t, map[string]string{"a.csv": content}), PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := c.ListDatasets(ctx)
	if err != nil || len(ds) != 1 || ds[0].Name != "d" || ds[0].LatestVersion != 2 || ds[0].Versions != 2 {
		t.Fatalf("list datasets: got %+v %v, want d with 2 versions", ds, err)
	}
	vs, err := c.ListVersions(ctx, "d")
	if err != nil || len(vs) != 2 || vs[0].Version != 2 {
		t.Fatalf("list versions: got %v %v, want 2 versions newest first", vs, err)
	}
	for _, ref := range []string{"1", "latest", vs[1].Digest[:7+8]} {
		v, err := c.GetVersion(ctx, "d", ref, false)
		want := int64(1)
		if ref == "latest" {
			want = 2
		}
		if err != nil || v.Version != want {
			t.Fatalf("get d@%s: got %v %v, want version %d", ref, v, err, want)
		}
	}
	if _, err := c.GetVersion(ctx, "d", "9", true); !mloop.IsNotFound(err) {
		t.Fatalf("get d@9: got %v, want not found", err)
	}
	if _, err := c.GetSchema(ctx, "d"); !mloop.IsNotFound(err) {
		t.Fatalf("schema before one is set: got %v, want not found", err)
	}
	yaml := []byte("columns:\n  - name: x\n")
	if err := c.SetSchema(ctx, "d", yaml); err != nil {
		t.Fatalf("set schema: %v", err)
	}
	if got, err := c.GetSchema(ctx, "d"); err != nil || !bytes.Equal(got, yaml) {
		t.Fatalf("get schema: got %q %v, want %q", got, err, yaml)
	}
	runs, err := c.VersionRuns(ctx, "d", "1")
	if err != nil || len(runs) != 1 || runs[0].RunID != "r1" || runs[0].Context != "training" {
		t.Fatalf("runs: got %+v %v, want run r1 (training)", runs, err)
	}
	if ok, err := c.HasBlob(ctx, vs[0].Files[0].SHA256); !ok || err != nil {
		t.Fatalf("has blob: got %v %v, want true", ok, err)
	}
	if ok, err := c.HasBlob(ctx, strings.Repeat("0", 64)); ok || err != nil {
		t.Fatalf("has unknown blob: got %v %v, want false", ok, err)
	}
}

func TestErrorKinds(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/datasets/gone/versions":
			fakeError(w, 404, "RESOURCE_DOES_NOT_EXIST", "No dataset gone.")
		case "/api/v1/datasets/bad/versions":
			fakeError(w, 400, "INVALID_PARAMETER_VALUE", "Invalid name.")
		case "/api/v1/datasets/old/versions":
			fakeError(w, 404, "ENDPOINT_NOT_FOUND", "No API endpoint.")
		case "/api/v1/datasets/proxy/versions":
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>bad gateway</html>"))
		}
	}))
	defer srv.Close()
	c := New(srv.URL, nil)
	ctx := context.Background()
	for name, want := range map[string]string{
		"gone": mloop.ENOTFOUND, "bad": mloop.EINVALID, "old": mloop.ENOTIMPLEMENTED, "proxy": mloop.EUNAVAILABLE,
	} {
		_, err := c.ListVersions(ctx, name)
		if got := mloop.ErrorCode(err); got != want {
			t.Errorf("list versions of %s: got kind %q (%v), want %q", name, got, err, want)
		}
	}

	// Nobody listening: unavailable, naming the address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = New(addr, nil).ListDatasets(ctx)
	if mloop.ErrorCode(err) != mloop.EUNAVAILABLE || !strings.Contains(err.Error(), addr) {
		t.Fatalf("unreachable server: got %v, want unavailable naming %s", err, addr)
	}

	// A cancelled call is the context's error.
	cctx, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	<-cctx.Done()
	if _, err := c.ListDatasets(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired context: got %v, want context.DeadlineExceeded", err)
	}
}

func TestInvalidBlobDigests(t *testing.T) {
	c := New("http://127.0.0.1:1", nil)
	ctx := context.Background()
	for _, d := range []string{"", "abc", strings.Repeat("A", 64), strings.Repeat("a", 63) + "/"} {
		if _, err := c.PutBlob(ctx, d, strings.NewReader(""), 0); mloop.ErrorCode(err) != mloop.EINVALID {
			t.Errorf("put blob %q: got %v, want invalid", d, err)
		}
		if _, _, err := c.GetBlob(ctx, d); mloop.ErrorCode(err) != mloop.EINVALID {
			t.Errorf("get blob %q: got %v, want invalid", d, err)
		}
	}
}
