package dataset_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/sqlstore"
)

// testService is a dataset service over a fresh SQLite database and a local
// artifact folder.
type testService struct {
	*dataset.Service
	artifactDir string
}

// newTestService returns a service on a new SQLite file and artifact folder
// in tb.TempDir(), closed when the test ends.
func newTestService(tb testing.TB) *testService {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	db := sqlstore.NewDB(filepath.Join(dir, "mloop.db"))
	db.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
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
	s := dataset.NewService(sqlstore.NewDatasetStore(db), dataset.NewBlobs(arts), sqlstore.NewTrackingStore(db))
	s.Logger = db.Logger
	s.TempDir = tb.TempDir()
	return &testService{Service: s, artifactDir: artDir}
}

func sha(b string) string {
	sum := sha256.Sum256([]byte(b))
	return hex.EncodeToString(sum[:])
}

// mustPut stores content as a blob and returns its file entry at path p.
func (s *testService) mustPut(tb testing.TB, p, content string) dataset.File {
	tb.Helper()
	if _, _, err := s.Blobs.Put(context.Background(), sha(content), strings.NewReader(content)); err != nil {
		tb.Fatalf("put blob for %s: %v", p, err)
	}
	return dataset.File{Path: p, SHA256: sha(content), Size: int64(len(content)), Format: dataset.FormatCSV,
		Rows: int64(strings.Count(content, "\n") - 1)}
}

// profileOf is a client-side profile of n rows.
func profileOf(n int64) *dataset.Profile { return &dataset.Profile{Rows: n} }

// mustCreate pushes files with a profile and returns the version.
func (s *testService) mustCreate(tb testing.TB, name string, files ...dataset.File) (*dataset.Version, bool) {
	tb.Helper()
	var rows int64
	for _, f := range files {
		rows += f.Rows
	}
	v, created, err := s.CreateVersion(context.Background(), name, dataset.CreateRequest{Files: files, Profile: profileOf(rows)})
	if err != nil {
		tb.Fatalf("create version of %s: %v", name, err)
	}
	return v, created
}

func TestServiceCreateVersion(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	s.Now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 678_900_000, time.UTC) }
	a := s.mustPut(t, "jan/a.csv", "x,y\n1,2\n3,4\n")
	b := s.mustPut(t, "b.csv", "x,y\n5,6\n")
	v, created, err := s.CreateVersion(ctx, "flights", dataset.CreateRequest{
		Files: []dataset.File{a, b}, Profile: profileOf(3), Source: "./data", User: "ann", Tags: map[string]string{"k": "v"},
	})
	if err != nil || !created {
		t.Fatalf("CreateVersion: got created=%v, %v; want a new version", created, err)
	}
	want := &dataset.Version{
		Dataset: "flights", Version: 1, Digest: dataset.ManifestDigest([]dataset.File{a, b}),
		Rows: 3, Bytes: a.Size + b.Size, Files: []dataset.File{b, a}, Profile: profileOf(3),
		Source: "./data", User: "ann", Tags: map[string]string{"k": "v"},
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC),
	}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("CreateVersion:\n got %+v\nwant %+v", v, want)
	}

	// The same files in another order are the same version.
	again, created, err := s.CreateVersion(ctx, "flights", dataset.CreateRequest{Files: []dataset.File{b, a}, User: "bob"})
	if err != nil || created || again.Version != 1 || again.User != "ann" {
		t.Fatalf("identical push: got %+v created=%v, %v; want version 1 as first pushed, not created", again, created, err)
	}

	c := s.mustPut(t, "c.csv", "x,y\n7,8\n")
	v2, created := s.mustCreate(t, "flights", a, b, c)
	if !created || v2.Version != 2 || v2.Rows != 4 {
		t.Fatalf("second push: got version %d rows %d created=%v; want version 2 of 4 rows", v2.Version, v2.Rows, created)
	}
}

func TestServiceCreateVersionRejects(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	good := s.mustPut(t, "a.csv", "x\n1\n")
	with := func(edit func(f *dataset.File)) []dataset.File {
		f := good
		edit(&f)
		return []dataset.File{f}
	}
	tests := []struct {
		name  string
		files []dataset.File
		prof  *dataset.Profile
		msg   string
	}{
		{"flights", nil, profileOf(1), "at least one file"},
		{"bad/name", []dataset.File{good}, profileOf(1), "not allowed"},
		{"flights", with(func(f *dataset.File) { f.SHA256 = sha("other") }), profileOf(1), "upload it first"},
		{"flights", with(func(f *dataset.File) { f.Size = 99 }), profileOf(1), "holds 4"},
		{"flights", with(func(f *dataset.File) { f.Path = "../a.csv" }), profileOf(1), "clean relative path"},
		{"flights", with(func(f *dataset.File) { f.Path = "/etc/a.csv" }), profileOf(1), "absolute"},
		{"flights", with(func(f *dataset.File) { f.Path = "a//b.csv" }), profileOf(1), "clean relative path"},
		{"flights", with(func(f *dataset.File) { f.Path = "a/./b.csv" }), profileOf(1), "clean relative path"},
		{"flights", with(func(f *dataset.File) { f.Path = "dir/" }), profileOf(1), "clean relative path"},
		{"flights", with(func(f *dataset.File) { f.Path = "a\\b.csv" }), profileOf(1), "backslash"},
		{"flights", with(func(f *dataset.File) { f.Path = "" }), profileOf(1), "empty path"},
		{"flights", with(func(f *dataset.File) { f.SHA256 = "ABC" }), profileOf(1), "64 lower-case hex"},
		{"flights", with(func(f *dataset.File) { f.Format = "xlsx" }), profileOf(1), "unknown format"},
		{"flights", with(func(f *dataset.File) { f.Format, f.Compression = dataset.FormatParquet, dataset.CompressionGzip }), profileOf(1), "Parquet"},
		{"flights", []dataset.File{good, good}, profileOf(2), "listed twice"},
		{"flights", []dataset.File{good}, profileOf(7), "add up to 1"},
		// A path that is also another's folder cannot be pulled.
		{"flights", []dataset.File{good, with(func(f *dataset.File) { f.Path = "a.csv/b.csv" })[0]}, profileOf(2), "is inside \"a.csv\""},
		// Client profiles are checked before they are stored.
		{"flights", []dataset.File{good}, &dataset.Profile{Rows: 1, Columns: []*dataset.ColumnProfile{{Name: "x", Type: dataset.TypeInteger, Count: 1}}}, "no quantile sketch"},
		{"flights", []dataset.File{good}, &dataset.Profile{Rows: 1, Columns: []*dataset.ColumnProfile{{Name: "x", Type: dataset.TypeString, Count: 5}}}, "not the profile's 1 rows"},
		{"flights", []dataset.File{good}, &dataset.Profile{Rows: 1, Columns: []*dataset.ColumnProfile{{Name: "x", Type: "blob", Count: 1}}}, "unknown type"},
		{"flights", with(func(f *dataset.File) { f.Rows = 0 }), &dataset.Profile{Rows: -1}, "negative"},
	}
	for _, tt := range tests {
		_, _, err := s.CreateVersion(ctx, tt.name, dataset.CreateRequest{Files: tt.files, Profile: tt.prof})
		if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), tt.msg) {
			t.Errorf("CreateVersion(%s, %+v): got %v, want EINVALID saying %q", tt.name, tt.files, err, tt.msg)
		}
	}
	if _, err := s.ListDatasets(ctx); err != nil {
		t.Fatal(err)
	}
	if ds, _ := s.ListDatasets(ctx); len(ds) != 0 {
		t.Fatalf("after rejected pushes: got datasets %+v, want none", ds)
	}
}

// TestServiceProfilesWithoutClientProfile checks that a push without a
// profile has the server read the blob from the artifact store and profile
// it, and that the file's rows come from that profile.
func TestServiceProfilesWithoutClientProfile(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	f := s.mustPut(t, "data/a.csv", "x\n1\n2\n3\n")
	f.Rows = 0
	var seen []string
	s.ProfileFile = func(ctx context.Context, name, local string, file dataset.File, _ dataset.ProfileOptions) (*dataset.Profile, error) {
		b, err := os.ReadFile(local)
		if err != nil {
			return nil, err
		}
		seen = append(seen, name+" "+filepath.Ext(local)+" "+string(b))
		return &dataset.Profile{Rows: int64(bytes.Count(b, []byte("\n")) - 1)}, nil
	}
	v, _, err := s.CreateVersion(ctx, "d", dataset.CreateRequest{Files: []dataset.File{f}})
	if err != nil {
		t.Fatalf("CreateVersion without a profile: %v", err)
	}
	if want := []string{"d/data/a.csv .csv x\n1\n2\n3\n"}; !slices.Equal(seen, want) {
		t.Fatalf("profiled: got %q, want %q", seen, want)
	}
	if v.Rows != 3 || v.Files[0].Rows != 3 || v.Profile == nil || v.Profile.Rows != 3 {
		t.Fatalf("version: got rows %d, file rows %d, profile %+v; want 3 everywhere", v.Rows, v.Files[0].Rows, v.Profile)
	}
	if left, _ := os.ReadDir(s.TempDir); len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}

	s.ProfileFile = func(ctx context.Context, name, local string, file dataset.File, _ dataset.ProfileOptions) (*dataset.Profile, error) {
		return nil, &dataset.InputError{File: name, Line: 2, Column: "x", Msg: "not a number"}
	}
	g := s.mustPut(t, "b.csv", "x\nzz\n")
	_, _, err = s.CreateVersion(ctx, "d", dataset.CreateRequest{Files: []dataset.File{g}})
	if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), `d/b.csv:2: column "x": not a number`) {
		t.Fatalf("bad data: got %v, want EINVALID naming file, line and column", err)
	}
	if n, _ := s.Store.LatestVersion(ctx, "d"); n != 1 {
		t.Fatalf("after a failed push: latest version %d, want 1", n)
	}
}

// mustDigestCollision returns two contents whose one-file manifests' digests
// share their first dataset.MinDigestPrefix hex digits (a birthday search).
func mustDigestCollision(tb testing.TB, s *testService) (dataset.File, dataset.File) {
	tb.Helper()
	seen := map[string]string{}
	for i := range 1 << 16 {
		content := fmt.Sprintf("x\n%d\n", i)
		f := dataset.File{Path: "a.csv", SHA256: sha(content), Size: int64(len(content)), Format: dataset.FormatCSV, Rows: 1}
		p := dataset.ManifestDigest([]dataset.File{f})[7 : 7+dataset.MinDigestPrefix]
		if other, ok := seen[p]; ok {
			return s.mustPut(tb, "a.csv", other), s.mustPut(tb, "a.csv", content)
		}
		seen[p] = content
	}
	tb.Fatalf("no digest prefix collision found")
	return dataset.File{}, dataset.File{}
}

func TestServiceResolve(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	f1, f2 := mustDigestCollision(t, s)
	v1, _ := s.mustCreate(t, "d", f1)
	v2, _ := s.mustCreate(t, "d", f2)
	f3 := s.mustPut(t, "a.csv", "x\nthird\n")
	v3, _ := s.mustCreate(t, "d", f3)
	hex3 := strings.TrimPrefix(v3.Digest, "sha256:")
	for ref, want := range map[string]int64{
		"d": 3, "d@latest": 3, "d@1": 1, "d@2": 2,
		"d@sha256:" + hex3[:6]:                   3,
		"d@sha256:" + hex3:                       3,
		"d@" + v1.Digest[:20]:                    1,
		"d@" + v2.Digest:                         2,
		"d@sha256:" + strings.ToUpper(hex3[:12]): 3,
	} {
		r, err := dataset.ParseRef(ref)
		if err != nil {
			t.Fatalf("ParseRef(%q): %v", ref, err)
		}
		v, err := s.GetVersion(ctx, r, false)
		if err != nil || v.Version != want {
			t.Errorf("GetVersion(%s): got %v, %v; want version %d", ref, v, err, want)
		}
	}
	errs := []struct {
		ref, kind, msg string
	}{
		{"d@4", mloop.ENOTFOUND, "its versions are 1 to 3"},
		{"nope@1", mloop.ENOTFOUND, `Dataset "nope" does not exist`},
		{"nope", mloop.ENOTFOUND, `Dataset "nope" does not exist`},
		{"d@sha256:" + strings.Repeat("0", 40), mloop.ENOTFOUND, "no version whose digest starts with"},
		{"d@" + v1.Digest[:7+6], mloop.EINVALID, fmt.Sprintf("ambiguous in dataset \"d\": it matches d@1 (%s), d@2 (%s)", v1.Digest, v2.Digest)},
	}
	for _, tt := range errs {
		r, err := dataset.ParseRef(tt.ref)
		if err != nil {
			t.Fatalf("ParseRef(%q): %v", tt.ref, err)
		}
		_, err = s.GetVersion(ctx, r, false)
		if mloop.ErrorCode(err) != tt.kind || !strings.Contains(mloop.ErrorMessage(err), tt.msg) {
			t.Errorf("GetVersion(%s): got %v, want %s saying %q", tt.ref, err, tt.kind, tt.msg)
		}
	}
}

func TestServiceListVersionsPages(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	for i := range 5 {
		s.mustCreate(t, "d", s.mustPut(t, "a.csv", fmt.Sprintf("x\n%d\n", i)))
	}
	var got []int64
	token := ""
	pages := 0
	for {
		vs, next, err := s.ListVersions(ctx, "d", 2, token)
		if err != nil {
			t.Fatalf("ListVersions(token %q): %v", token, err)
		}
		pages++
		for _, v := range vs {
			got = append(got, v.Version)
		}
		if next == "" {
			break
		}
		token = next
	}
	if want := []int64{5, 4, 3, 2, 1}; !slices.Equal(got, want) || pages != 3 {
		t.Fatalf("paged versions: got %v in %d pages, want %v in 3", got, pages, want)
	}
	for _, bad := range []struct {
		max   int
		token string
	}{{-1, ""}, {dataset.MaxListVersions + 1, ""}, {2, "x"}, {2, "0"}} {
		if _, _, err := s.ListVersions(ctx, "d", bad.max, bad.token); mloop.ErrorCode(err) != mloop.EINVALID {
			t.Errorf("ListVersions(max %d, token %q): got %v, want EINVALID", bad.max, bad.token, err)
		}
	}
	if _, _, err := s.ListVersions(ctx, "nope", 0, ""); !mloop.IsNotFound(err) {
		t.Errorf("ListVersions of an unknown dataset: got %v, want ENOTFOUND", err)
	}
}

func TestServiceSchema(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	text := []byte("columns:\n  - name: x\n    type: integer\n")
	if err := s.SetSchema(ctx, "d", text); !mloop.IsNotFound(err) || !strings.Contains(mloop.ErrorMessage(err), "push a version") {
		t.Fatalf("SetSchema before any version: got %v, want ENOTFOUND saying to push first", err)
	}
	s.mustCreate(t, "d", s.mustPut(t, "a.csv", "x\n1\n"))
	if _, err := s.GetSchema(ctx, "d"); !mloop.IsNotFound(err) {
		t.Fatalf("GetSchema before one is set: got %v, want ENOTFOUND", err)
	}
	for _, bad := range []struct {
		text []byte
		msg  string
	}{
		{nil, "empty"},
		{[]byte("  \n"), "empty"},
		{[]byte{0xff, 0xfe}, "UTF-8"},
		{[]byte("columns:\n  - name: x\n    type: complex\n"), "Invalid schema"},
		{[]byte("colums: []\n"), "Invalid schema"},
	} {
		err := s.SetSchema(ctx, "d", bad.text)
		if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), bad.msg) {
			t.Errorf("SetSchema(%q): got %v, want EINVALID saying %q", bad.text, err, bad.msg)
		}
	}
	if _, err := s.GetSchema(ctx, "d"); !mloop.IsNotFound(err) {
		t.Fatalf("GetSchema after rejected schemas: got %v, want none stored", err)
	}
	if err := s.SetSchema(ctx, "d", text); err != nil {
		t.Fatalf("SetSchema: %v", err)
	}
	got, err := s.GetSchema(ctx, "d")
	if err != nil || !bytes.Equal(got, text) {
		t.Fatalf("GetSchema: got %q, %v; want %q", got, err, text)
	}
}

func TestBlobsPut(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	content := "a,b\n1,2\n"
	created, size, err := s.Blobs.Put(ctx, sha(content), strings.NewReader(content))
	if err != nil || !created || size != int64(len(content)) {
		t.Fatalf("Put: got created=%v size %d, %v; want created, size %d", created, size, err, len(content))
	}
	body := strings.NewReader(content)
	created, size, err = s.Blobs.Put(ctx, sha(content), body)
	if err != nil || created || size != int64(len(content)) || body.Len() != 0 {
		t.Fatalf("Put again: got created=%v size %d, %d bytes unread, %v; want not created, body drained", created, size, body.Len(), err)
	}
	obj, err := s.Blobs.Open(ctx, sha(content))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	b, _ := io.ReadAll(obj)
	obj.Close()
	if string(b) != content {
		t.Fatalf("Open: got %q, want %q", b, content)
	}
	if _, err := os.Stat(filepath.Join(s.artifactDir, filepath.FromSlash(dataset.BlobKey(sha(content))))); err != nil {
		t.Fatalf("blob not at its content address %s: %v", dataset.BlobKey(sha(content)), err)
	}
}

func TestBlobsPutMismatchStoresNothing(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	claimed := sha("the real content")
	_, _, err := s.Blobs.Put(ctx, claimed, strings.NewReader("other content"))
	if mloop.ErrorCode(err) != mloop.EINVALID {
		t.Fatalf("Put of mismatching bytes: got %v, want EINVALID", err)
	}
	msg := mloop.ErrorMessage(err)
	for _, want := range []string{"sha256:" + sha("other content"), "sha256:" + claimed, "nothing was stored"} {
		if !strings.Contains(msg, want) {
			t.Errorf("mismatch message %q: want it to hold %q", msg, want)
		}
	}
	if _, err := s.Blobs.Size(ctx, claimed); !mloop.IsNotFound(err) {
		t.Fatalf("after a mismatching Put: got %v, want no blob", err)
	}
	var files []string
	filepath.WalkDir(s.artifactDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Fatalf("after a mismatching Put: got files %v in the artifact store, want none", files)
	}
	if _, _, err := s.Blobs.Put(ctx, "../../etc/passwd", strings.NewReader("x")); mloop.ErrorCode(err) != mloop.EINVALID {
		t.Fatalf("Put with a path as digest: got %v, want EINVALID", err)
	}
}

func TestBlobsMissingAndSizes(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	s.mustPut(t, "a", "have\n")
	got, err := s.Blobs.Missing(ctx, []string{sha("have\n"), sha("lack 1"), sha("lack 2"), sha("lack 1")})
	if want := []string{sha("lack 1"), sha("lack 2")}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("Missing: got %v, %v; want %v", got, err, want)
	}
	sizes, err := s.Blobs.Sizes(ctx, []string{sha("have\n"), sha("lack 1")})
	if want := map[string]int64{sha("have\n"): 5}; err != nil || !reflect.DeepEqual(sizes, want) {
		t.Fatalf("Sizes: got %v, %v; want %v", sizes, err, want)
	}
	if _, err := s.Blobs.Missing(ctx, []string{"nothex"}); mloop.ErrorCode(err) != mloop.EINVALID {
		t.Fatalf("Missing with a bad digest: got %v, want EINVALID", err)
	}
}

func TestServiceGC(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	kept := s.mustPut(t, "a.csv", "x\n1\n")
	s.mustCreate(t, "d", kept)
	orphan1 := s.mustPut(t, "b.csv", "x\n2\n")
	orphan2 := s.mustPut(t, "c.csv", "x\n33\n")
	// A temporary file of an upload in flight is not a blob.
	tmp := filepath.Join(s.artifactDir, filepath.FromSlash(dataset.BlobKey(orphan1.SHA256))+".123.tmp")
	if err := os.WriteFile(tmp, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}

	s.Now = func() time.Time { return time.Now().Add(time.Hour) }
	res, err := s.GC(ctx, 2*time.Hour)
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	if res.Scanned != 3 || res.Referenced != 1 || res.Recent != 2 || len(res.Deleted) != 0 {
		t.Fatalf("GC within the grace period: got %+v, want 3 scanned, 1 referenced, 2 recent, none deleted", res)
	}
	res, err = s.GC(ctx, 30*time.Minute)
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	want := []string{orphan1.SHA256, orphan2.SHA256}
	slices.Sort(want)
	slices.Sort(res.Deleted)
	if !slices.Equal(res.Deleted, want) || res.DeletedBytes != orphan1.Size+orphan2.Size || res.Referenced != 1 {
		t.Fatalf("GC: got %+v, want deleted %v (%d bytes), 1 referenced", res, want, orphan1.Size+orphan2.Size)
	}
	missing, err := s.Blobs.Missing(ctx, []string{kept.SHA256, orphan1.SHA256, orphan2.SHA256})
	if err != nil || !slices.Equal(missing, []string{orphan1.SHA256, orphan2.SHA256}) {
		t.Fatalf("after GC: missing %v, %v; want the two orphans only", missing, err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("GC removed an upload's temporary file: %v", err)
	}
	if _, err := s.GC(ctx, -time.Second); mloop.ErrorCode(err) != mloop.EINVALID {
		t.Fatalf("GC with a negative grace: got %v, want EINVALID", err)
	}
}

// TestServiceProfilesOnServer pushes files without a profile through the
// default profiler: the blobs are read back from the artifact store with the
// readers of their formats and their profiles merged.
func TestServiceProfilesOnServer(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t)
	a := s.mustPut(t, "a.csv", "x,y\n1,a\n2,b\n3,c\n")
	b := s.mustPut(t, "b.csv.gz", gzipped(t, "x,y\n4,d\n5,e\n"))
	b.Compression, b.Rows = dataset.CompressionGzip, 0
	a.Rows = 0
	v, created, err := s.CreateVersion(ctx, "d", dataset.CreateRequest{Files: []dataset.File{a, b}})
	if err != nil || !created {
		t.Fatalf("CreateVersion without a profile: got created=%v, %v", created, err)
	}
	if v.Rows != 5 || v.Files[0].Rows != 3 || v.Files[1].Rows != 2 {
		t.Fatalf("rows: got version %d, files %d and %d; want 5, 3 and 2", v.Rows, v.Files[0].Rows, v.Files[1].Rows)
	}
	x, y := v.Profile.Column("x"), v.Profile.Column("y")
	if x == nil || y == nil || x.Type != dataset.TypeInteger || y.Type != dataset.TypeString || x.Count != 5 ||
		x.Min == nil || *x.Min != 1 || x.Max == nil || *x.Max != 5 {
		t.Fatalf("profile: got x %+v, y %+v; want x integer 1..5 of 5 values, y string", x, y)
	}

	bad := s.mustPut(t, "bad.csv", "x,y\n1,2\n3\n")
	bad.Rows = 0
	_, _, err = s.CreateVersion(ctx, "d", dataset.CreateRequest{Files: []dataset.File{bad}})
	if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), "d/bad.csv") {
		t.Fatalf("ragged CSV: got %v, want EINVALID naming d/bad.csv", err)
	}
}

// gzipped returns s compressed with gzip.
func gzipped(tb testing.TB, s string) string {
	tb.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.String()
}
