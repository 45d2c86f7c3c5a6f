package artifact

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mloop/mloop"
)

// MaxPathLen is the longest artifact path CleanPath accepts, in bytes. It is
// S3's limit on object keys.
const MaxPathLen = 1024

// invalidPathMessage is the client message of every path CleanPath rejects:
// MLflow's, word for word.
const invalidPathMessage = "Invalid path"

// maxDecodeRounds bounds how many layers of percent-encoding CleanPath peels
// off, as MLflow's validate_path_is_safe does; a path still changing after
// that many rounds is rejected.
const maxDecodeRounds = 10

// CleanPath normalises a client-supplied artifact path, relative to some
// root, and rejects every path that could leave that root.
//
// Like MLflow's validate_path_is_safe, it first percent-decodes the path
// until decoding changes nothing more, so "%2e%2e", "..%2f" and doubly
// encoded variants are judged by what they decode to. The decoded path is
// then rejected when it:
//
//   - is absolute ("/etc", "C:/x", "file:///x"),
//   - has a ".." segment,
//   - contains a backslash, a '#', a NUL or any other control character,
//   - is not valid UTF-8 or is longer than MaxPathLen bytes.
//
// A rejected path is an error of kind mloop.EINVALID whose client message is
// MLflow's, exactly "Invalid path" (MLflow's clients and tests compare it);
// the error's text, for logs, also names the path and the reason.
//
// Empty and "." segments are dropped, so "a//./b/" becomes "a/b". The empty
// result "" names the root itself. The result is stable: CleanPath of a
// result returns it unchanged, and it contains no percent-escape left to
// decode.
func CleanPath(p string) (string, error) {
	invalid := func(reason string) error {
		return fmt.Errorf("artifact path %q: %s: %w", p, reason, mloop.Errorf(mloop.EINVALID, invalidPathMessage))
	}
	s := p
	for round := 0; ; round++ {
		d := percentDecode(s)
		if d == s {
			break
		}
		if round == maxDecodeRounds {
			return "", invalid("it is percent-encoded too many times")
		}
		s = d
	}
	if len(s) > MaxPathLen {
		return "", invalid(fmt.Sprintf("it is longer than %d bytes", MaxPathLen))
	}
	if !utf8.ValidString(s) {
		return "", invalid("it is not valid UTF-8")
	}
	for _, c := range s {
		switch {
		case c == '\\':
			return "", invalid("it contains a backslash")
		case c == '#':
			return "", invalid("it contains '#'")
		case unicode.IsControl(c):
			return "", invalid("it contains a control character")
		}
	}
	switch {
	case strings.HasPrefix(s, "/"):
		return "", invalid("it must be relative, not absolute")
	case len(s) >= 2 && s[1] == ':' && isASCIILetter(s[0]):
		return "", invalid("it must be relative, not a drive path")
	case len(s) >= 5 && strings.EqualFold(s[:5], "file:"):
		return "", invalid("it must be relative, not a file: URI")
	}
	segs := strings.Split(s, "/")
	kept := segs[:0]
	for _, seg := range segs {
		switch seg {
		case "", ".":
			continue
		case "..":
			return "", invalid("it must not contain '..' segments")
		}
		kept = append(kept, seg)
	}
	return strings.Join(kept, "/"), nil
}

// percentDecode decodes every valid %XX escape of s and leaves anything else,
// including a '%' not followed by two hex digits, as it is (the lenient
// decoding of Python's urllib.parse.unquote, which MLflow uses).
func percentDecode(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// URIScheme is the scheme of MLflow's proxied artifact URIs.
const URIScheme = "mlflow-artifacts"

// httpRouteAnchor is where the artifact path starts in an http(s) artifact
// URI that points at a tracking server's proxied artifact API.
const httpRouteAnchor = "/api/2.0/mlflow-artifacts/artifacts/"

// KeyFromURI returns the store key an artifact URI served by this server
// points at. "mlflow-artifacts:/1/<run>/artifacts/model" (with or without a
// host, as in "mlflow-artifacts://host:5000/1/...") maps to
// "1/<run>/artifacts/model"; so does an http(s) URI of the proxied artifact
// API (".../api/2.0/mlflow-artifacts/artifacts/1/<run>/artifacts/model"), as
// MLflow resolves them.
//
// A URI of another scheme (s3://, file://, a bare path) names storage this
// server does not proxy: the error is of kind mloop.ENOTIMPLEMENTED. A
// malformed URI, or one whose path CleanPath rejects, is mloop.EINVALID.
func KeyFromURI(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", mloop.Errorf(mloop.EINVALID, "Invalid artifact URI %q: %v.", uri, err)
	}
	var p string
	switch strings.ToLower(u.Scheme) {
	case URIScheme:
		p = u.Opaque
		if p == "" {
			p = u.EscapedPath()
		}
	case "http", "https":
		_, after, found := strings.Cut(u.EscapedPath(), httpRouteAnchor)
		if !found {
			return "", mloop.Errorf(mloop.ENOTIMPLEMENTED, "Artifact URI %q does not point at an MLflow artifact proxy (%s...), so this server cannot serve it.", uri, httpRouteAnchor)
		}
		p = after
	default:
		return "", mloop.Errorf(mloop.ENOTIMPLEMENTED, "Artifact URI %q is not an %s:/ URI, so this server cannot serve it.", uri, URIScheme)
	}
	key, err := CleanPath(strings.TrimLeft(p, "/"))
	if err != nil {
		return "", fmt.Errorf("artifact URI %q: %w", uri, err)
	}
	return key, nil
}

// uriScheme matches the scheme of a URI as Python's urllib.parse finds it: a
// letter, then letters, digits, '+', '-' or '.', up to the first ':'.
var uriScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.\-]*:`)

// LocalPath reports whether uri names a file of this machine, as MLflow's
// is_local_uri decides, and if so returns that file's path as MLflow's
// local_file_uri_to_path finds it, made absolute (a relative path is taken
// from the working directory) and clean.
//
// Local are a path with no scheme ("/data/x", "data/x") and a file: URI
// ("file:///data/x", "file:/data/x", "file://localhost/data/x"), unless the
// URI names a host other than ".", "localhost…" or "127.0.0.1…":
// "file://10.0.0.7/data/x" names a file of another machine. The path is
// percent-decoded; a file: URI's query and fragment are not part of it.
func LocalPath(uri string) (string, bool) {
	scheme := uriScheme.FindString(uri)
	if scheme != "" && !strings.EqualFold(scheme, "file:") {
		return "", false
	}
	p := uri
	if authority, ok := strings.CutPrefix(uri[len(scheme):], "//"); ok {
		host, rest := authority, ""
		if i := strings.IndexAny(authority, "/?#"); i >= 0 {
			host, rest = authority[:i], authority[i:]
		}
		if !isLocalHost(host) {
			return "", false
		}
		if scheme != "" {
			p = rest
		}
	} else if scheme != "" {
		p = uri[len(scheme):]
	}
	if scheme != "" {
		if i := strings.IndexAny(p, "?#"); i >= 0 {
			p = p[:i]
		}
	}
	p = percentDecode(p)
	if p == "" {
		p = "."
	}
	if abs, err := filepath.Abs(filepath.FromSlash(p)); err == nil {
		return abs, true
	}
	return filepath.Clean(p), true
}

// isLocalHost reports whether the authority of a URI (user info and port
// included) names this machine or no machine, as MLflow's is_local_uri
// judges the host name: empty, ".", or starting with "localhost" or
// "127.0.0.1", in any case.
func isLocalHost(authority string) bool {
	host := authority
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i >= 0 {
			host = host[1:i]
		}
	} else if i := strings.IndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = strings.ToLower(host)
	return host == "" || host == "." || strings.HasPrefix(host, "localhost") || strings.HasPrefix(host, "127.0.0.1")
}
