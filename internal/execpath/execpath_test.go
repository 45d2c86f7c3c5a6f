package execpath

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mloop/mloop"
)

func TestLook(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	for _, d := range []string{bin, filepath.Join(dir, "folder")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string, mode os.FileMode) {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(bin, "tool"), 0o755)
	write(filepath.Join(bin, "data"), 0o644)
	write(filepath.Join(dir, "local"), 0o755)

	for _, tc := range []struct {
		name, path, dir, want, err string
	}{
		{"tool", "::" + bin, "", filepath.Join(bin, "tool"), ""},
		{"tool", "", "", "", "not found"},
		{"data", bin, "", "", "not found"},
		{"./local", "", dir, "./local", ""},
		{"./missing", "", dir, "", "no such file"},
		{"./folder", "", dir, "", "is a folder"},
		{filepath.Join(bin, "data"), "", "", "", "not executable"},
	} {
		got, err := Look(tc.name, tc.path, tc.dir)
		if tc.err != "" {
			if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Look(%q, %q): got %q, %v; want EINVALID with %q", tc.name, tc.path, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Look(%q, %q): got %q, %v; want %q", tc.name, tc.path, got, err, tc.want)
		}
	}
	if _, err := Look("tool", "relative/dir", ""); err == nil {
		t.Error("a relative PATH entry was searched")
	}
}
