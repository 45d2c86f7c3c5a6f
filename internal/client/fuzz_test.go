package client

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mloop/mloop/internal/dataset"
)

// FuzzLocalPath checks that no file path a server sends can place a pulled
// or cached file outside its folder.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"a.csv", "dir/b.csv", "../x", "/etc/passwd", "a/../../b", "", ".", "a//b", `a\..\b`, "a/./b", "..", "a/..", "..0", "a/..b"} {
		f.Add(s)
	}
	hex := strings.Repeat("ab", 32)
	f.Fuzz(func(t *testing.T, p string) {
		dest := filepath.Join(string(filepath.Separator)+"srv", "dest") // never touched
		file := dataset.File{Path: p, SHA256: hex, Size: 1}
		if got, err := localPath(dest, file); err == nil {
			rel, rerr := filepath.Rel(dest, got)
			if rerr != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
				t.Fatalf("localPath(%q) = %q: outside %s", p, got, dest)
			}
		}
		cache := &BlobCache{Dir: dest}
		if got, err := cache.Path(file); err == nil {
			want := filepath.Join(dest, "sha256", hex[:2], hex)
			if filepath.Dir(got) != want {
				t.Fatalf("cache path of %q = %q: want a file directly in %s", p, got, want)
			}
		}
	})
}
