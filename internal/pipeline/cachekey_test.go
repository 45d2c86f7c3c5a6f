package pipeline

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func baseInput() CacheInput {
	return CacheInput{
		Command:  []string{"python3", "train.py", "--lr", "0.1"},
		Params:   map[string]string{"lr": "0.1", "depth": "6"},
		Env:      map[string]string{"OMP_NUM_THREADS": "2"},
		Code:     map[string]InputHash{"code": {Ref: "src/", Hash: "sha256:" + strings.Repeat("1", 64)}},
		Data:     map[string]InputHash{"data": {Ref: "data://flights@latest", Hash: "sha256:ab12" + strings.Repeat("0", 60)}},
		Upstream: map[string]InputHash{"report": {Ref: "steps.validate.outputs.report", Hash: "sha256:" + strings.Repeat("2", 64)}},
		Image:    "python:3.11",
	}
}

func TestCacheKeyChangesWithEachField(t *testing.T) {
	base := CacheKey(baseInput())
	if !strings.HasPrefix(base, "sha256:") || len(base) != len("sha256:")+64 {
		t.Fatalf("got key %q, want sha256:<64 hex>", base)
	}
	if again := CacheKey(baseInput()); again != base {
		t.Fatalf("same input: got %s then %s", base, again)
	}
	changes := map[string]func(*CacheInput){
		"engine":    func(c *CacheInput) { c.Engine = "other" },
		"command":   func(c *CacheInput) { c.Command[3] = "0.2" },
		"argv join": func(c *CacheInput) { c.Command = []string{"python3 train.py", "--lr", "0.1"} },
		"param":     func(c *CacheInput) { c.Params["lr"] = "0.2" },
		"env":       func(c *CacheInput) { c.Env["OMP_NUM_THREADS"] = "4" },
		"code":      func(c *CacheInput) { c.Code["code"] = InputHash{Hash: "sha256:3"} },
		"data":      func(c *CacheInput) { c.Data["data"] = InputHash{Ref: "data://flights@latest", Hash: "sha256:4"} },
		"upstream":  func(c *CacheInput) { c.Upstream["report"] = InputHash{Hash: "sha256:5"} },
		"image":     func(c *CacheInput) { c.Image = "python:3.12" },
		"outputs":   func(c *CacheInput) { c.Outputs = map[string]string{"metrics": "metrics.json metrics"} },
		"moved kv":  func(c *CacheInput) { c.Params = map[string]string{"lr": "0.1d", "epth": "6"} },
		"env→param": func(c *CacheInput) { c.Params["OMP_NUM_THREADS"] = "2"; delete(c.Env, "OMP_NUM_THREADS") },
	}
	seen := map[string]string{base: "base"}
	for name, change := range changes {
		in := baseInput()
		change(&in)
		k := CacheKey(in)
		if prev, dup := seen[k]; dup {
			t.Errorf("%s: got the same key as %s", name, prev)
		}
		seen[k] = name
	}
	// The ref as written does not count: same content, same key.
	in := baseInput()
	in.Data["data"] = InputHash{Ref: "data://flights@7", Hash: in.Data["data"].Hash}
	if got := CacheKey(in); got != base {
		t.Errorf("renamed ref with same digest: got %s want %s", got, base)
	}
	in = baseInput()
	in.Engine = EngineSalt
	if got := CacheKey(in); got != base {
		t.Errorf("explicit EngineSalt: got %s want %s", got, base)
	}
}

func TestExplainDiff(t *testing.T) {
	old, cur := baseInput(), baseInput()
	if got := ExplainDiff(old, cur); got != nil {
		t.Errorf("no change: got %q want nil", got)
	}
	cur.Command = []string{"python3", "train.py", "--lr", "0.2"}
	cur.Params["lr"] = "0.2"
	cur.Params["seed"] = "1"
	delete(cur.Env, "OMP_NUM_THREADS")
	cur.Data["data"] = InputHash{Ref: "data://flights@latest", Hash: "sha256:cd34" + strings.Repeat("0", 60)}
	cur.Image = ""
	got := ExplainDiff(old, cur)
	want := []string{
		`command changed: "python3 train.py --lr 0.1" → "python3 train.py --lr 0.2"`,
		"param lr: 0.1 → 0.2",
		"param seed added: 1",
		"env OMP_NUM_THREADS removed (was 2)",
		"input data (data://flights@latest): sha256:ab1200000000… → sha256:cd3400000000…",
		"image: python:3.11 → (none)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// countingMemo returns a memo whose Open counts the files it reads.
func countingMemo(reads *atomic.Int64) *HashMemo {
	m := NewHashMemo()
	m.Open = func(name string) (io.ReadCloser, error) {
		reads.Add(1)
		return os.Open(name)
	}
	return m
}

func writeFile(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestHashTreeFolder(t *testing.T) {
	ctx := context.Background()
	old := time.Now().Add(-time.Hour)
	a, b := t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		writeFile(t, filepath.Join(dir, "x.py"), "print(1)\n", old)
		writeFile(t, filepath.Join(dir, "pkg", "y.py"), "print(2)\n", old)
	}
	ha, err := HashTree(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := HashTree(ctx, b, nil)
	if ha != hb {
		t.Errorf("same content in two folders: got %s and %s", ha, hb)
	}
	// sha256("print(1)\n") is the hash of the single file.
	hf, _ := HashTree(ctx, filepath.Join(a, "x.py"), nil)
	if want := "sha256:cc42155088fca5730758db72b2a5bca33112a941dfaa2d43098ec422ce4ea213"; hf != want {
		t.Errorf("file hash: got %s want %s", hf, want)
	}
	if err := os.Rename(filepath.Join(b, "pkg", "y.py"), filepath.Join(b, "pkg", "z.py")); err != nil {
		t.Fatal(err)
	}
	if hb2, _ := HashTree(ctx, b, nil); hb2 == ha {
		t.Errorf("renamed file: got the same folder hash %s", hb2)
	}
	writeFile(t, filepath.Join(a, "x.py"), "print(3)\n", old)
	if ha2, _ := HashTree(ctx, a, nil); ha2 == ha {
		t.Errorf("changed file: got the same folder hash %s", ha2)
	}
}

func TestHashMemoSkipsUnchangedFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	for _, n := range []string{"a", "b", "c"} {
		writeFile(t, filepath.Join(dir, n), "content "+n, old)
	}
	var reads atomic.Int64
	m := countingMemo(&reads)
	h1, err := HashTree(ctx, dir, m)
	if err != nil {
		t.Fatal(err)
	}
	if got := reads.Load(); got != 3 {
		t.Fatalf("first hash: got %d reads want 3", got)
	}
	h2, _ := HashTree(ctx, dir, m)
	if got := reads.Load(); got != 3 || h2 != h1 {
		t.Errorf("second hash: got %d reads (want 3) and %s (want %s)", got, h2, h1)
	}
	// Touch b with the same content: its stat changes, so it is read again.
	later := old.Add(time.Minute)
	if err := os.Chtimes(filepath.Join(dir, "b"), later, later); err != nil {
		t.Fatal(err)
	}
	h3, _ := HashTree(ctx, dir, m)
	if got := reads.Load(); got != 4 || h3 != h1 {
		t.Errorf("after touch: got %d reads (want 4) and %s (want %s)", got, h3, h1)
	}
	// Save, load, and hash with the loaded memo: no reads at all.
	path := filepath.Join(t.TempDir(), "memo.json")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	var reads2 atomic.Int64
	m2, err := LoadHashMemo(path)
	if err != nil {
		t.Fatal(err)
	}
	m2.Open = countingMemo(&reads2).Open
	if h4, _ := HashTree(ctx, dir, m2); h4 != h1 || reads2.Load() != 0 || m2.Len() != 3 {
		t.Errorf("loaded memo: got %s, %d reads, %d entries; want %s, 0, 3", h4, reads2.Load(), m2.Len(), h1)
	}
	// A changed file with the same size and a new mtime is rehashed.
	writeFile(t, filepath.Join(dir, "c"), "CONTENT c", old.Add(2*time.Minute))
	if h5, _ := HashTree(ctx, dir, m2); h5 == h1 || reads2.Load() != 1 {
		t.Errorf("changed file: got %s with %d reads, want a new hash with 1 read", h5, reads2.Load())
	}
}

func TestHashMemoRacyFilesNotRemembered(t *testing.T) {
	ctx := context.Background()
	f := filepath.Join(t.TempDir(), "fresh")
	now := time.Now()
	writeFile(t, f, "x", now)
	var reads atomic.Int64
	m := countingMemo(&reads)
	m.Now = func() time.Time { return now }
	HashTree(ctx, f, m)
	HashTree(ctx, f, m)
	if got := reads.Load(); got != 2 || m.Len() != 0 {
		t.Errorf("file modified just now: got %d reads and %d entries, want 2 and 0", got, m.Len())
	}
}

func TestLoadHashMemoMissing(t *testing.T) {
	m, err := LoadHashMemo(filepath.Join(t.TempDir(), "none.json"))
	if err != nil || m.Len() != 0 {
		t.Errorf("missing memo: got %v, %d entries; want empty", err, m.Len())
	}
}

func TestExplainDiffOutputs(t *testing.T) {
	old, new := baseInput(), baseInput()
	old.Outputs = map[string]string{"metrics": "metrics.json file"}
	new.Outputs = map[string]string{"metrics": "metrics.json metrics"}
	got := ExplainDiff(old, new)
	if want := []string{"output metrics: metrics.json file → metrics.json metrics"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestHashTreeFollowsLinkedFolder(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "train.py"), []byte("print(1)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "code")
	if err := os.Symlink(src, link); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	ctx := context.Background()
	h1, err := HashTree(ctx, link, nil)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := HashTree(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h1 != direct {
		t.Fatalf("linked folder: got %s, want the folder's own hash %s", h1, direct)
	}
	if err := os.WriteFile(filepath.Join(src, "train.py"), []byte("print(2)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if h2, err := HashTree(ctx, link, nil); err != nil || h2 == h1 {
		t.Fatalf("after editing a file behind the link: got %s, %v; want a new hash (was %s)", h2, err, h1)
	}
}
