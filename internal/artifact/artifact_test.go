package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mloop/mloop"
)

// implementations lists every Store the conformance suite runs against. Each
// open func returns a fresh, empty store that is cleaned up with the test.
var implementations = []struct {
	name string
	open func(tb testing.TB) *Store
}{
	{"file", MustOpenDir},
	{"mem", func(tb testing.TB) *Store { return MustOpen(tb, "mem://") }},
	{"s3", MustOpenS3},
}

// MustOpen opens the store at rawURL and closes it when the test ends.
func MustOpen(tb testing.TB, rawURL string) *Store {
	tb.Helper()
	s, err := Open(context.Background(), rawURL)
	if err != nil {
		tb.Fatalf("Open(%q): %v", rawURL, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// MustOpenDir opens a store in a fresh local folder (created by Open).
func MustOpenDir(tb testing.TB) *Store {
	tb.Helper()
	return MustOpen(tb, filepath.Join(tb.TempDir(), "artifacts"))
}

// MustOpenS3 opens a store on the real S3-compatible server named by
// MLOOP_TEST_S3 (scripts/test.sh starts MinIO and sets it), under a prefix of
// its own that is emptied when the test ends. The bucket is created if it
// does not exist. Without MLOOP_TEST_S3 the test fails, unless
// MLOOP_TEST_SKIP_S3=1 asks explicitly to skip it.
func MustOpenS3(tb testing.TB) *Store {
	tb.Helper()
	raw := os.Getenv("MLOOP_TEST_S3")
	if raw == "" {
		if os.Getenv("MLOOP_TEST_SKIP_S3") == "1" {
			tb.Skip("MLOOP_TEST_SKIP_S3=1: skipping the S3 store")
		}
		tb.Fatal("MLOOP_TEST_S3 is not set: run the tests with scripts/test.sh, which starts MinIO " +
			"and sets it (or set MLOOP_TEST_SKIP_S3=1 to skip the S3 store explicitly)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatalf("MLOOP_TEST_S3=%q: %v", raw, err)
	}
	mustCreateBucket(tb, u)
	u.Path = "/" + randomName(tb.Name())
	s := MustOpen(tb, u.String())
	tb.Cleanup(func() { emptyStore(tb, s) })
	return s
}

// mustCreateBucket creates the bucket of the s3:// URL u unless it exists,
// through the S3 client of gocloud's own bucket.
func mustCreateBucket(tb testing.TB, u *url.URL) {
	tb.Helper()
	s := MustOpen(tb, u.String())
	var client *s3.Client
	if !s.bucket.As(&client) {
		tb.Fatalf("the bucket of %s is not an S3 bucket", u.Redacted())
	}
	_, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &u.Host})
	var owned *types.BucketAlreadyOwnedByYou
	var exists *types.BucketAlreadyExists
	if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
		tb.Fatalf("create bucket %q at %s: %v", u.Host, u.Redacted(), err)
	}
}

// emptyStore deletes everything in s.
func emptyStore(tb testing.TB, s *Store) {
	tb.Helper()
	ctx := context.Background()
	entries, err := s.List(ctx, "")
	if err != nil {
		tb.Errorf("empty store: %v", err)
		return
	}
	for _, e := range entries {
		if err := s.Delete(ctx, e.Path); err != nil {
			tb.Errorf("empty store: %v", err)
		}
	}
}

// randomName returns a unique, path-safe name starting with base.
func randomName(base string) string {
	base = strings.NewReplacer("/", "-", " ", "-").Replace(base)
	return fmt.Sprintf("%s-%016x", base, rand.Uint64())
}

// TestStore is the conformance suite every Store implementation passes.
func TestStore(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, impl.open(t)) })
			t.Run("LargeStream", func(t *testing.T) { testLargeStream(t, impl.open(t)) })
			t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, impl.open(t)) })
			t.Run("List", func(t *testing.T) { testList(t, impl.open(t)) })
			t.Run("NestedPaths", func(t *testing.T) { testNestedPaths(t, impl.open(t)) })
			t.Run("DeleteFile", func(t *testing.T) { testDeleteFile(t, impl.open(t)) })
			t.Run("DeleteDir", func(t *testing.T) { testDeleteDir(t, impl.open(t)) })
			t.Run("NotFound", func(t *testing.T) { testNotFound(t, impl.open(t)) })
			t.Run("HostilePaths", func(t *testing.T) { testHostilePaths(t, impl.open(t)) })
			t.Run("FailedPut", func(t *testing.T) { testFailedPut(t, impl.open(t)) })
		})
	}
}

// mustPut writes content at key.
func mustPut(tb testing.TB, s *Store, key, content string) {
	tb.Helper()
	if err := s.Put(context.Background(), key, strings.NewReader(content)); err != nil {
		tb.Fatalf("Put(%q): %v", key, err)
	}
}

// mustGet reads the artifact at key whole (tests use small artifacts only).
func mustGet(tb testing.TB, s *Store, key string) (*Object, string) {
	tb.Helper()
	obj, err := s.Get(context.Background(), key)
	if err != nil {
		tb.Fatalf("Get(%q): %v", key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		tb.Fatalf("Get(%q): read: %v", key, err)
	}
	return obj, string(b)
}

// mustList lists dir.
func mustList(tb testing.TB, s *Store, dir string) []Entry {
	tb.Helper()
	entries, err := s.List(context.Background(), dir)
	if err != nil {
		tb.Fatalf("List(%q): %v", dir, err)
	}
	return entries
}

// wantKind fails unless err is an *mloop.Error of the given kind.
func wantKind(tb testing.TB, what string, err error, kind string) {
	tb.Helper()
	if got := mloop.ErrorCode(err); got != kind {
		tb.Errorf("%s: got error %v (kind %q), want kind %q", what, err, got, kind)
	}
}

func testRoundTrip(t *testing.T, s *Store) {
	const content = "hello, artifacts\n"
	mustPut(t, s, "notes.txt", content)
	obj, got := mustGet(t, s, "notes.txt")
	if got != content {
		t.Errorf("Get: got %q, want %q", got, content)
	}
	if obj.Size != int64(len(content)) {
		t.Errorf("Get: got size %d, want %d", obj.Size, len(content))
	}
	if obj.ContentType == "" {
		t.Errorf("Get: got an empty content type, want one")
	}
	if ok, err := s.Exists(context.Background(), "notes.txt"); err != nil || !ok {
		t.Errorf("Exists: got %v, %v, want true, nil", ok, err)
	}
	// An empty artifact is an artifact too.
	mustPut(t, s, "empty", "")
	if obj, got := mustGet(t, s, "empty"); got != "" || obj.Size != 0 {
		t.Errorf("Get(empty): got %q of size %d, want an empty artifact", got, obj.Size)
	}
}

func testLargeStream(t *testing.T, s *Store) {
	// Larger than S3's 5 MiB minimum part, so S3 stores it in several parts.
	const size = 12<<20 + 12345
	ctx := context.Background()
	// Deterministic pseudo-random bytes, hashed on the way in; never held whole.
	sum := sha256.New()
	src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{7}), size), sum)
	if err := s.Put(ctx, "big/model.bin", src); err != nil {
		t.Fatalf("Put: %v", err)
	}
	obj, err := s.Get(ctx, "big/model.bin")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer obj.Close()
	if obj.Size != size {
		t.Errorf("Get: got size %d, want %d", obj.Size, size)
	}
	got := sha256.New()
	n, err := io.Copy(got, obj)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if n != size || !bytes.Equal(got.Sum(nil), sum.Sum(nil)) {
		t.Errorf("read back %d bytes with sha256 %x, want %d bytes with sha256 %x", n, got.Sum(nil), size, sum.Sum(nil))
	}
}

func testOverwrite(t *testing.T, s *Store) {
	mustPut(t, s, "a/model.json", `{"v": 1}`)
	mustPut(t, s, "a/model.json", `{"v": 2, "longer": true}`)
	if _, got := mustGet(t, s, "a/model.json"); got != `{"v": 2, "longer": true}` {
		t.Errorf("Get after overwrite: got %q, want the second content", got)
	}
}

// putLayout writes a small tree:
//
//	a.txt         3 bytes
//	dir/b.bin     5 bytes
//	dir/sub/c.txt 1 byte
//	dir2/d        2 bytes
//	dir-x         4 bytes (sorts between "dir/" and "dir2/" and must not join "dir")
func putLayout(t *testing.T, s *Store) {
	t.Helper()
	for key, content := range map[string]string{
		"a.txt": "aaa", "dir/b.bin": "bbbbb", "dir/sub/c.txt": "c", "dir2/d": "dd", "dir-x": "xxxx",
	} {
		mustPut(t, s, key, content)
	}
}

func testList(t *testing.T, s *Store) {
	putLayout(t, s)
	tests := []struct {
		dir  string
		want []Entry
	}{
		{"", []Entry{
			{Path: "a.txt", Name: "a.txt", Size: 3},
			{Path: "dir", Name: "dir", IsDir: true},
			{Path: "dir-x", Name: "dir-x", Size: 4},
			{Path: "dir2", Name: "dir2", IsDir: true},
		}},
		{"dir", []Entry{
			{Path: "dir/b.bin", Name: "b.bin", Size: 5},
			{Path: "dir/sub", Name: "sub", IsDir: true},
		}},
		{"dir/", []Entry{
			{Path: "dir/b.bin", Name: "b.bin", Size: 5},
			{Path: "dir/sub", Name: "sub", IsDir: true},
		}},
		{"./dir//sub", []Entry{{Path: "dir/sub/c.txt", Name: "c.txt", Size: 1}}},
		{"dir2", []Entry{{Path: "dir2/d", Name: "d", Size: 2}}},
		{"missing", []Entry{}},
		{"a.txt", []Entry{}},
		{"di", []Entry{}},
	}
	for _, tt := range tests {
		if got := mustList(t, s, tt.dir); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("List(%q):\n got %+v\nwant %+v", tt.dir, got, tt.want)
		}
	}
}

func testNestedPaths(t *testing.T, s *Store) {
	const key = "1/0123abcd/artifacts/model/data/weights.ubj"
	mustPut(t, s, key, "w")
	if _, got := mustGet(t, s, key); got != "w" {
		t.Errorf("Get(%q): got %q, want %q", key, got, "w")
	}
	// Each ancestor lists exactly the next segment as a folder.
	segs := strings.Split(key, "/")
	for i := 0; i < len(segs)-1; i++ {
		dir := strings.Join(segs[:i], "/")
		want := []Entry{{Path: strings.Join(segs[:i+1], "/"), Name: segs[i], IsDir: true}}
		if got := mustList(t, s, dir); !reflect.DeepEqual(got, want) {
			t.Errorf("List(%q): got %+v, want %+v", dir, got, want)
		}
	}
	// Equivalent spellings of the key name the same artifact.
	if _, got := mustGet(t, s, "1//0123abcd/./artifacts/model/data/weights.ubj"); got != "w" {
		t.Errorf("Get of an equivalent spelling: got %q, want %q", got, "w")
	}
}

func testDeleteFile(t *testing.T, s *Store) {
	ctx := context.Background()
	putLayout(t, s)
	if err := s.Delete(ctx, "dir/b.bin"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if ok, err := s.Exists(ctx, "dir/b.bin"); err != nil || ok {
		t.Errorf("Exists after Delete: got %v, %v, want false, nil", ok, err)
	}
	_, err := s.Get(ctx, "dir/b.bin")
	wantKind(t, "Get after Delete", err, mloop.ENOTFOUND)
	want := []Entry{{Path: "dir/sub", Name: "sub", IsDir: true}}
	if got := mustList(t, s, "dir"); !reflect.DeepEqual(got, want) {
		t.Errorf("List(dir) after Delete: got %+v, want %+v", got, want)
	}
}

func testDeleteDir(t *testing.T, s *Store) {
	ctx := context.Background()
	putLayout(t, s)
	if err := s.Delete(ctx, "dir"); err != nil {
		t.Fatalf("Delete(dir): %v", err)
	}
	for _, key := range []string{"dir/b.bin", "dir/sub/c.txt"} {
		if ok, err := s.Exists(ctx, key); err != nil || ok {
			t.Errorf("Exists(%q) after Delete(dir): got %v, %v, want false, nil", key, ok, err)
		}
	}
	want := []Entry{
		{Path: "a.txt", Name: "a.txt", Size: 3},
		{Path: "dir-x", Name: "dir-x", Size: 4},
		{Path: "dir2", Name: "dir2", IsDir: true},
	}
	if got := mustList(t, s, ""); !reflect.DeepEqual(got, want) {
		t.Errorf("List after Delete(dir):\n got %+v\nwant %+v", got, want)
	}
	// The deleted folder's name can now hold a file.
	mustPut(t, s, "dir", "now a file")
	if _, got := mustGet(t, s, "dir"); got != "now a file" {
		t.Errorf("Get(dir): got %q, want %q", got, "now a file")
	}
}

func testNotFound(t *testing.T, s *Store) {
	ctx := context.Background()
	mustPut(t, s, "dir/file", "x")
	for _, key := range []string{"missing", "dir/missing", "dir"} {
		_, err := s.Get(ctx, key)
		wantKind(t, fmt.Sprintf("Get(%q)", key), err, mloop.ENOTFOUND)
		if ok, err := s.Exists(ctx, key); err != nil || ok {
			t.Errorf("Exists(%q): got %v, %v, want false, nil", key, ok, err)
		}
	}
	for _, key := range []string{"missing", "dir/missing", "di"} {
		wantKind(t, fmt.Sprintf("Delete(%q)", key), s.Delete(ctx, key), mloop.ENOTFOUND)
	}
	if _, got := mustGet(t, s, "dir/file"); got != "x" {
		t.Errorf("Get(dir/file) after failed deletes: got %q, want %q", got, "x")
	}
}

// hostilePaths are paths that try to leave the store's root or are unsafe.
var hostilePaths = []string{
	"..", "../x", "a/../../x", "a/..", "/etc/passwd", "//etc/passwd",
	"%2e%2e/x", "%2E%2E%2Fx", "..%2fx", "a%2f..%2f..%2fx", "%252e%252e/x", "%25252e%25252e%25252fx",
	"%2fetc%2fpasswd", `..\x`, `a\b`, "a%5cb", "a\x00b", "a%00b", "a\nb", "a\x7fb",
	"C:/Windows", "c:x", "file:///etc/passwd", "a#b", "bad\xffutf8",
}

func testHostilePaths(t *testing.T, s *Store) {
	ctx := context.Background()
	mustPut(t, s, "keep", "k")
	for _, p := range hostilePaths {
		wantKind(t, fmt.Sprintf("Put(%q)", p), s.Put(ctx, p, strings.NewReader("evil")), mloop.EINVALID)
		_, err := s.Get(ctx, p)
		wantKind(t, fmt.Sprintf("Get(%q)", p), err, mloop.EINVALID)
		_, err = s.Exists(ctx, p)
		wantKind(t, fmt.Sprintf("Exists(%q)", p), err, mloop.EINVALID)
		_, err = s.List(ctx, p)
		wantKind(t, fmt.Sprintf("List(%q)", p), err, mloop.EINVALID)
		wantKind(t, fmt.Sprintf("Delete(%q)", p), s.Delete(ctx, p), mloop.EINVALID)
	}
	// The root itself is not an artifact: it can be listed, not written or deleted.
	for _, p := range []string{"", ".", "./"} {
		wantKind(t, fmt.Sprintf("Put(%q)", p), s.Put(ctx, p, strings.NewReader("x")), mloop.EINVALID)
		wantKind(t, fmt.Sprintf("Delete(%q)", p), s.Delete(ctx, p), mloop.EINVALID)
	}
	want := []Entry{{Path: "keep", Name: "keep", Size: 1}}
	if got := mustList(t, s, ""); !reflect.DeepEqual(got, want) {
		t.Errorf("List after hostile writes: got %+v, want only %+v", got, want)
	}
}

// failingReader yields n bytes, then fails with errBroken.
type failingReader struct{ left int }

var errBroken = errors.New("connection reset by client")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, errBroken
	}
	n := min(len(p), r.left)
	clear(p[:n])
	r.left -= n
	return n, nil
}

func testFailedPut(t *testing.T, s *Store) {
	ctx := context.Background()
	// A new artifact whose upload breaks does not appear.
	err := s.Put(ctx, "new.bin", &failingReader{left: 6 << 20})
	if !errors.Is(err, errBroken) {
		t.Errorf("Put with a failing reader: got %v, want an error wrapping %v", err, errBroken)
	}
	if ok, err := s.Exists(ctx, "new.bin"); err != nil || ok {
		t.Errorf("Exists after a failed Put: got %v, %v, want false, nil", ok, err)
	}
	// An existing artifact keeps its content.
	mustPut(t, s, "old.txt", "old")
	if err := s.Put(ctx, "old.txt", &failingReader{left: 1 << 10}); !errors.Is(err, errBroken) {
		t.Errorf("Put with a failing reader: got %v, want an error wrapping %v", err, errBroken)
	}
	if _, got := mustGet(t, s, "old.txt"); got != "old" {
		t.Errorf("Get after a failed overwrite: got %q, want %q", got, "old")
	}
	// A cancelled context stops the upload and is reported as such.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Put(cctx, "cancelled.bin", strings.NewReader("data")); err == nil {
		t.Errorf("Put with a cancelled context: got nil error, want one")
	}
	if ok, err := s.Exists(ctx, "cancelled.bin"); err != nil || ok {
		t.Errorf("Exists after a cancelled Put: got %v, %v, want false, nil", ok, err)
	}
}

// TestDirLayout checks that a local store keeps plain files, nothing else, and
// removes the folders Delete empties.
func TestDirLayout(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	s := MustOpen(t, "file://"+root)
	putLayout(t, s)
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	want := []string{"a.txt", "dir-x", "dir/b.bin", "dir/sub/c.txt", "dir2/d"}
	if !reflect.DeepEqual(files, want) {
		t.Errorf("files on disk: got %q, want %q", files, want)
	}
	if err := s.Delete(context.Background(), "dir/sub/c.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "dir", "sub")); !os.IsNotExist(err) {
		t.Errorf("stat dir/sub after deleting its only file: got %v, want not exist", err)
	}
	if _, err := os.Stat(filepath.Join(root, "dir")); err != nil {
		t.Errorf("stat dir (still holding b.bin): got %v, want it to exist", err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Errorf("stat root: got %v, want the root to stay", err)
	}
}

func TestOpen(t *testing.T) {
	tests := []struct {
		url  string
		kind string // "" when Open succeeds
	}{
		{"mem://", ""},
		{"file://" + filepath.Join(t.TempDir(), "a", "b"), ""},
		{filepath.Join(t.TempDir(), "plain"), ""},
		{"", mloop.EINVALID},
		{"gs://bucket", mloop.EINVALID},
		{"s3:///prefix", mloop.EINVALID},
		{"s3://bucket/../x?region=us-east-1", mloop.EINVALID},
		{"s3://bucket?region=us-east-1&no_such_param=1", mloop.EINVALID},
		{"file://otherhost/x", mloop.EINVALID},
	}
	for _, tt := range tests {
		s, err := Open(context.Background(), tt.url)
		if err == nil {
			s.Close()
		}
		if got := mloop.ErrorCode(err); got != tt.kind {
			t.Errorf("Open(%q): got error %v (kind %q), want kind %q", tt.url, err, got, tt.kind)
		}
	}
}

func TestCleanPath(t *testing.T) {
	ok := []struct{ in, want string }{
		{"", ""},
		{".", ""},
		{"a", "a"},
		{"a/b/c.txt", "a/b/c.txt"},
		{"a//b/", "a/b"},
		{"./a/./b", "a/b"},
		{"...", "..."},
		{"a..b/..c/d..", "a..b/..c/d.."},
		{"model%20v1/MLmodel", "model v1/MLmodel"},
		{"a%2fb", "a/b"},
		{"a%252fb", "a/b"},
		{"100%", "100%"},
		{"50%zz", "50%zz"},
		{"%", "%"},
		{"日本/データ.csv", "日本/データ.csv"},
		{"run:1/a:b", "run:1/a:b"},
		{"1/abc/artifacts", "1/abc/artifacts"},
	}
	for _, tt := range ok {
		got, err := CleanPath(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("CleanPath(%q): got %q, %v, want %q, nil", tt.in, got, err, tt.want)
		}
	}
	for _, in := range append(hostilePaths, strings.Repeat("a", MaxPathLen+1), "%"+strings.Repeat("25", 12)+"41") {
		got, err := CleanPath(in)
		if mloop.ErrorCode(err) != mloop.EINVALID {
			t.Errorf("CleanPath(%q): got %q, %v, want an %s error", in, got, err, mloop.EINVALID)
			continue
		}
		// Clients see MLflow's message, word for word; the error's text,
		// for logs, names the offending path as the client sent it.
		if msg := mloop.ErrorMessage(err); msg != "Invalid path" {
			t.Errorf("CleanPath(%q): got message %q, want %q", in, msg, "Invalid path")
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", in)) {
			t.Errorf("CleanPath(%q): got error %q, want it to name the path", in, err)
		}
	}
}

func FuzzCleanPath(f *testing.F) {
	for _, p := range hostilePaths {
		f.Add(p)
	}
	for _, p := range []string{"", "a/b", "a//b/./c/", "%", "%%32%65", "a%2F%2e%2E%2f", "日本/データ.csv"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := CleanPath(in)
		if err != nil {
			if mloop.ErrorCode(err) != mloop.EINVALID {
				t.Fatalf("CleanPath(%q): got error kind %q, want %q", in, mloop.ErrorCode(err), mloop.EINVALID)
			}
			return
		}
		switch {
		case strings.HasPrefix(got, "/"):
			t.Fatalf("CleanPath(%q) = %q: starts with '/'", in, got)
		case strings.ContainsAny(got, "\\\x00"):
			t.Fatalf("CleanPath(%q) = %q: has a backslash or NUL", in, got)
		case strings.HasSuffix(got, "/") || strings.Contains(got, "//"):
			t.Fatalf("CleanPath(%q) = %q: has an empty segment", in, got)
		}
		for _, seg := range strings.Split(got, "/") {
			if seg == ".." || seg == "." {
				t.Fatalf("CleanPath(%q) = %q: has a %q segment", in, got, seg)
			}
		}
		if again, err := CleanPath(got); err != nil || again != got {
			t.Fatalf("CleanPath(CleanPath(%q)) = %q, %v: want %q, nil (stable)", in, again, err, got)
		}
		if percentDecode(got) != got {
			t.Fatalf("CleanPath(%q) = %q: still has a percent-escape", in, got)
		}
	})
}

func TestKeyFromURI(t *testing.T) {
	tests := []struct {
		uri  string
		want string
		kind string
	}{
		{"mlflow-artifacts:/1/abc/artifacts", "1/abc/artifacts", ""},
		{"mlflow-artifacts:/1/abc/artifacts/model", "1/abc/artifacts/model", ""},
		{"mlflow-artifacts://host:5000/1/abc/artifacts", "1/abc/artifacts", ""},
		{"mlflow-artifacts:1/abc", "1/abc", ""},
		{"mlflow-artifacts:/", "", ""},
		{"http://host:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts", "1/abc/artifacts", ""},
		{"mlflow-artifacts:/1/../../etc", "", mloop.EINVALID},
		{"mlflow-artifacts:/1/%2e%2e/%2e%2e/etc", "", mloop.EINVALID},
		{"s3://bucket/1/abc/artifacts", "", mloop.ENOTIMPLEMENTED},
		{"/var/mlruns/1/abc/artifacts", "", mloop.ENOTIMPLEMENTED},
		{"https://example.com/other/path", "", mloop.ENOTIMPLEMENTED},
		{"mlflow-artifacts:/%zz", "", mloop.EINVALID},
	}
	for _, tt := range tests {
		got, err := KeyFromURI(tt.uri)
		if mloop.ErrorCode(err) != tt.kind || got != tt.want {
			t.Errorf("KeyFromURI(%q): got %q, %v, want %q with error kind %q", tt.uri, got, err, tt.want, tt.kind)
		}
	}
}

func TestContentType(t *testing.T) {
	tests := []struct{ name, want string }{
		{"MLmodel", "text/plain"},
		{"model/MLproject", "text/plain"},
		{"mlproject", "text/plain"},
		{"a.txt", "text/plain"},
		{"d.pdf", "application/pdf"},
		{"conda.yaml", "text/plain"},
		{"requirements.txt", "text/plain"},
		{"metrics.json", "text/plain"},
		{"data.csv", "text/plain"},
		{"plot.png", "image/png"},
		{"index.html", "text/html"},
		{"model.pkl", "application/octet-stream"},
		{"weights", "application/octet-stream"},
		{".hidden", "application/octet-stream"},
	}
	for _, tt := range tests {
		if got := ContentType(tt.name); got != tt.want {
			t.Errorf("ContentType(%q): got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestLocalPath(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		uri   string
		want  string // "" when the URI is not local
		local bool
	}{
		{"/data/mlruns/1", "/data/mlruns/1", true},
		{"/data/./mlruns/../x/", "/data/x", true},
		{"data/x", filepath.Join(wd, "data/x"), true},
		{"file:///data/x", "/data/x", true},
		{"file:/data/x", "/data/x", true},
		{"FILE:///data/x", "/data/x", true},
		{"file://localhost/data/x", "/data/x", true},
		{"file://LOCALHOST:8080/data/x", "/data/x", true},
		{"file://127.0.0.1/data/x", "/data/x", true},
		{"file://./data/x", "/data/x", true},
		{"file:///data/a%20b?q=1#f", "/data/a b", true},
		{"/data/a%20b", "/data/a b", true},
		{"file://123.456.789.123/path/to/source", "", false},
		{"file://otherhost/data/x", "", false},
		{"//otherhost/data/x", "", false},
		{"mlflow-artifacts:/1/r/artifacts", "", false},
		{"s3://bucket/x", "", false},
		{"http://localhost/x", "", false},
		{"runs:/r/model", "", false},
	}
	for _, tt := range tests {
		got, local := LocalPath(tt.uri)
		if local != tt.local || got != filepath.FromSlash(tt.want) {
			t.Errorf("LocalPath(%q): got %q, %v, want %q, %v", tt.uri, got, local, tt.want, tt.local)
		}
	}
}

func TestKeyOf(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	local := MustOpen(t, root)
	mem := MustOpen(t, "mem://")
	rootURI := "file://" + filepath.ToSlash(root)
	tests := []struct {
		store *Store
		uri   string
		want  string
		kind  string
	}{
		{local, "mlflow-artifacts:/1/r/artifacts", "1/r/artifacts", ""},
		{local, "http://host:5000/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts", "1/r/artifacts", ""},
		{local, rootURI + "/1/r/artifacts", "1/r/artifacts", ""},
		{local, rootURI, "", ""},
		{local, rootURI + "/1/r/artifacts/model/..", "1/r/artifacts", ""},
		{local, filepath.Join(root, "1", "r"), "1/r", ""},
		{local, "file://localhost" + filepath.ToSlash(root) + "/0/x", "0/x", ""},
		// Local paths outside the store's folder are not served.
		{local, rootURI + "/../secret", "", mloop.ENOTIMPLEMENTED},
		{local, rootURI + "-sibling/x", "", mloop.ENOTIMPLEMENTED},
		{local, "file:///etc/passwd", "", mloop.ENOTIMPLEMENTED},
		{local, "file://otherhost" + filepath.ToSlash(root) + "/x", "", mloop.ENOTIMPLEMENTED},
		{local, "s3://bucket/x", "", mloop.ENOTIMPLEMENTED},
		{local, "mlflow-artifacts:/1/../../etc", "", mloop.EINVALID},
		// A store with no local folder serves no local path.
		{mem, rootURI + "/1/r/artifacts", "", mloop.ENOTIMPLEMENTED},
		{mem, "mlflow-artifacts:/1/r/artifacts", "1/r/artifacts", ""},
	}
	for _, tt := range tests {
		got, err := tt.store.KeyOf(tt.uri)
		if mloop.ErrorCode(err) != tt.kind || got != tt.want {
			t.Errorf("KeyOf(%q): got %q, %v, want %q with error kind %q", tt.uri, got, err, tt.want, tt.kind)
		}
	}
}

// FuzzLocalPath checks that LocalPath never panics and that the path of a
// local URI is absolute and clean.
func FuzzLocalPath(f *testing.F) {
	for _, u := range []string{"/a/b", "a/../b", "file:///a", "file:/a", "file://localhost:1/a", "file://h/a",
		"//h/a", "file:", "file://", "file:%2e%2e", "s3://b/k", "", ":", "file://[::1]/a", "file://u@127.0.0.1/a?q#f"} {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		p, local := LocalPath(uri)
		if !local {
			return
		}
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			t.Fatalf("LocalPath(%q) = %q: want an absolute, clean path", uri, p)
		}
	})
}
