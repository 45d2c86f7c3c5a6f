package dataset

import (
	"path"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mloop/mloop"
)

func TestValidateName(t *testing.T) {
	for _, name := range []string{"flights", "a", "A.b_c-d", "flights-2001.v2", "0", "a..b", strings.Repeat("x", MaxNameLength)} {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q): got %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", ".hidden", "-flag", "a/b", "../etc", "a b", "a\x00b", "a\\b",
		"café", "a@b", "a:b", strings.Repeat("x", MaxNameLength+1)} {
		err := ValidateName(name)
		if mloop.ErrorCode(err) != mloop.EINVALID {
			t.Errorf("ValidateName(%q): got %v, want an EINVALID error", name, err)
			continue
		}
		if msg := mloop.ErrorMessage(err); !strings.Contains(msg, nameRule) {
			t.Errorf("ValidateName(%q): got message %q, want it to state the rule %q", name, msg, nameRule)
		}
	}
}

func TestParseRef(t *testing.T) {
	tests := []struct {
		in   string
		want Ref
		str  string
	}{
		{"flights", Ref{Name: "flights"}, "flights@latest"},
		{"flights@latest", Ref{Name: "flights"}, "flights@latest"},
		{"flights@3", Ref{Name: "flights", Version: 3}, "flights@3"},
		{"flights@007", Ref{Name: "flights", Version: 7}, "flights@7"},
		{"flights@sha256:abcdef", Ref{Name: "flights", DigestPrefix: "abcdef"}, "flights@sha256:abcdef"},
		{"flights@sha256:ABCDEF0123", Ref{Name: "flights", DigestPrefix: "abcdef0123"}, "flights@sha256:abcdef0123"},
		{"flights@sha256:" + strings.Repeat("0", 64), Ref{Name: "flights", DigestPrefix: strings.Repeat("0", 64)}, "flights@sha256:" + strings.Repeat("0", 64)},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseRef(%q): got %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if s := got.String(); s != tt.str {
			t.Errorf("ParseRef(%q).String(): got %q, want %q", tt.in, s, tt.str)
		}
		if got.Latest() != (tt.want.Version == 0 && tt.want.DigestPrefix == "") {
			t.Errorf("ParseRef(%q).Latest(): got %v", tt.in, got.Latest())
		}
	}
	bad := []struct{ in, msg string }{
		{"", "empty"},
		{"a/b@1", "not allowed"},
		{"flights@", "nothing follows"},
		{"flights@0", "start at 1"},
		{"flights@-1", "version number"},
		{"flights@+1", "version number"},
		{"flights@1.5", "version number"},
		{"flights@99999999999999999999", "too large"},
		{"flights@LATEST", "version number"},
		{"flights@sha256:abc", "6 to 64 hex digits"},
		{"flights@sha256:abcdeg", "6 to 64 hex digits"},
		{"flights@sha256:" + strings.Repeat("0", 65), "6 to 64 hex digits"},
		{"flights@md5:abcdef", "version number"},
		{"flights@1@2", "version number"},
	}
	for _, tt := range bad {
		_, err := ParseRef(tt.in)
		if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), tt.msg) {
			t.Errorf("ParseRef(%q): got %v, want an EINVALID error saying %q", tt.in, err, tt.msg)
		}
	}
}

func TestValidBlobDigest(t *testing.T) {
	if err := ValidBlobDigest(strings.Repeat("ab", 32)); err != nil {
		t.Errorf("ValidBlobDigest of 64 lower-case hex digits: got %v, want nil", err)
	}
	for _, d := range []string{"", strings.Repeat("AB", 32), strings.Repeat("a", 63), strings.Repeat("a", 65), strings.Repeat("g", 64), "../" + strings.Repeat("a", 61)} {
		if mloop.ErrorCode(ValidBlobDigest(d)) != mloop.EINVALID {
			t.Errorf("ValidBlobDigest(%q): got nil, want EINVALID", d)
		}
	}
}

// FuzzParseRef checks that every accepted reference has a valid name,
// exactly one kind of selector, and survives a round trip through String.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"flights", "flights@3", "flights@latest", "a@sha256:abcdef", "a@", "@1", "a@b@c", "x@sha256:ABCDEF12", "a@00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if mloop.ErrorCode(err) != mloop.EINVALID {
				t.Fatalf("ParseRef(%q): got error kind %q, want EINVALID", s, mloop.ErrorCode(err))
			}
			return
		}
		if err := ValidateName(r.Name); err != nil {
			t.Fatalf("ParseRef(%q) accepted name %q that ValidateName rejects: %v", s, r.Name, err)
		}
		if r.Version < 0 || (r.Version > 0 && r.DigestPrefix != "") {
			t.Fatalf("ParseRef(%q): got %+v, want at most one selector", s, r)
		}
		back, err := ParseRef(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRef(%q) = %+v; ParseRef(%q) = %+v, %v; want the same", s, r, r.String(), back, err)
		}
	})
}

// FuzzCheckFilePath checks that every file path a version accepts stays
// inside the folder it is pulled into: local, clean and slash-separated,
// without '.', '..' or empty segments, valid UTF-8.
func FuzzCheckFilePath(f *testing.F) {
	for _, s := range []string{"a.csv", "dir/a.csv", "../a", "/etc/passwd", "a//b", "a/./b", "a\\b", "C:/x", "a\x00b", "é/ü.csv", ".hidden/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if checkFilePath(p) != nil {
			return
		}
		if !filepath.IsLocal(filepath.FromSlash(p)) {
			t.Fatalf("checkFilePath accepted %q, which is not local", p)
		}
		if path.Clean(p) != p || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
			t.Fatalf("checkFilePath accepted %q, which is not a clean relative slash path", p)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == ".." || seg == "." || seg == "" {
				t.Fatalf("checkFilePath accepted %q with segment %q", p, seg)
			}
		}
		if !utf8.ValidString(p) {
			t.Fatalf("checkFilePath accepted invalid UTF-8 %q", p)
		}
	})
}
