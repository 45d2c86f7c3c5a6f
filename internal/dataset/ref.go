package dataset

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mloop/mloop"
)

// Limits of names and references.
const (
	// MaxNameLength is the longest dataset name, in bytes.
	MaxNameLength = 200
	// MinDigestPrefix is the fewest hex digits a sha256:<prefix> reference
	// may give.
	MinDigestPrefix = 6
)

// nameRule is the rule for dataset names, as error messages state it.
const nameRule = "1 to 200 characters among letters, digits, '.', '_' and '-', not starting with '.' or '-'"

// ValidateName reports whether name may name a dataset: 1 to MaxNameLength
// characters among ASCII letters, digits, '.', '_' and '-', not starting
// with '.' or '-'. So a name never holds a path separator, a space or a NUL,
// and is never "." or "..". A bad name is an mloop.EINVALID error that
// states the rule.
func ValidateName(name string) error {
	if name == "" {
		return mloop.Errorf(mloop.EINVALID, "The dataset name is empty: a name is %s.", nameRule)
	}
	if len(name) > MaxNameLength {
		return mloop.Errorf(mloop.EINVALID, "The dataset name %q… is %d bytes long: a name is %s.", name[:32], len(name), nameRule)
	}
	if name[0] == '.' || name[0] == '-' {
		return mloop.Errorf(mloop.EINVALID, "Invalid dataset name %q: it starts with %q; a name is %s.", name, name[:1], nameRule)
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			r, _ := utf8.DecodeRuneInString(name[i:])
			return mloop.Errorf(mloop.EINVALID, "Invalid dataset name %q: character %q at byte %d is not allowed; a name is %s.", name, r, i, nameRule)
		}
	}
	return nil
}

// nameByte reports whether c may appear in a dataset name.
func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

// Ref names one version of a dataset: by number (NAME@3), by the latest
// version (NAME@latest, or NAME alone), or by a prefix of its manifest
// digest (NAME@sha256:<hex prefix>).
type Ref struct {
	// Name is the dataset's name.
	Name string
	// Version is the version number when the reference names one, else 0.
	Version int64
	// DigestPrefix is the lower-case hex prefix (without "sha256:") of the
	// version's digest when the reference names one, else "".
	DigestPrefix string
}

// Latest reports whether r names the latest version.
func (r Ref) Latest() bool { return r.Version == 0 && r.DigestPrefix == "" }

// Selector returns the part of r after the '@': "3", "latest" or
// "sha256:<prefix>".
func (r Ref) Selector() string {
	switch {
	case r.Version > 0:
		return strconv.FormatInt(r.Version, 10)
	case r.DigestPrefix != "":
		return "sha256:" + r.DigestPrefix
	}
	return "latest"
}

// String returns the reference as NAME@selector; ParseRef parses it back.
func (r Ref) String() string { return r.Name + "@" + r.Selector() }

// ParseRef parses a version reference: NAME@N (N a positive integer),
// NAME@latest, NAME@sha256:<hex prefix of at least MinDigestPrefix digits>,
// or NAME alone, which means NAME@latest. The name must pass ValidateName.
// Malformed references are mloop.EINVALID errors that say what is expected.
func ParseRef(s string) (Ref, error) {
	name, sel, found := strings.Cut(s, "@")
	if err := ValidateName(name); err != nil {
		return Ref{}, err
	}
	if !found {
		return Ref{Name: name}, nil
	}
	return ParseSelector(name, sel)
}

// ParseSelector parses the selector part of a reference to a version of the
// dataset name (already validated, or validated here): "N", "latest" or
// "sha256:<hex prefix>". The HTTP API takes the name and the selector from
// separate path segments.
func ParseSelector(name, sel string) (Ref, error) {
	if err := ValidateName(name); err != nil {
		return Ref{}, err
	}
	const want = "a version number (3), latest, or sha256: followed by at least 6 hex digits of the digest"
	switch {
	case sel == "latest":
		return Ref{Name: name}, nil
	case strings.HasPrefix(sel, "sha256:"):
		hex := strings.ToLower(sel[len("sha256:"):])
		if len(hex) < MinDigestPrefix || len(hex) > 64 || !isHex(hex) {
			return Ref{}, mloop.Errorf(mloop.EINVALID, "Invalid version %q of dataset %q: a digest reference is sha256: followed by %d to 64 hex digits.", sel, name, MinDigestPrefix)
		}
		return Ref{Name: name, DigestPrefix: hex}, nil
	case sel == "":
		return Ref{}, mloop.Errorf(mloop.EINVALID, "Invalid reference %q: nothing follows '@'; give %s.", name+"@", want)
	}
	for i := 0; i < len(sel); i++ {
		if sel[i] < '0' || sel[i] > '9' {
			return Ref{}, mloop.Errorf(mloop.EINVALID, "Invalid version %q of dataset %q: give %s.", sel, name, want)
		}
	}
	n, err := strconv.ParseInt(sel, 10, 64)
	if err != nil {
		return Ref{}, mloop.Errorf(mloop.EINVALID, "Invalid version %q of dataset %q: the number is too large.", sel, name)
	}
	if n < 1 {
		return Ref{}, mloop.Errorf(mloop.EINVALID, "Invalid version %q of dataset %q: version numbers start at 1.", sel, name)
	}
	return Ref{Name: name, Version: n}, nil
}

// isHex reports whether s holds only hex digits (either case).
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// ValidBlobDigest reports whether hex is a SHA-256 digest as blobs are
// named: 64 lower-case hex digits. A bad digest is an mloop.EINVALID error.
func ValidBlobDigest(hex string) error {
	if len(hex) != 64 || !isHex(hex) || strings.ToLower(hex) != hex {
		return mloop.Errorf(mloop.EINVALID, "Invalid blob digest %q: a blob is named by the SHA-256 of its bytes, 64 lower-case hex digits.", hex)
	}
	return nil
}
