package registry

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzRegistrySources feeds arbitrary model version sources, which clients
// control, to the parsers that read them. None may panic; a models:/ URI
// that parses names exactly one thing; and a remote source that passes the
// relative-path check holds, however often it is percent-decoded, no ".."
// segment and no NUL.
func FuzzRegistrySources(f *testing.F) {
	for _, s := range []string{
		"s3://bucket/a/b", "https://host:5000/api/2.0/mlflow-artifacts/artifacts/x",
		"models:/m/1", "models:/m/Production", "models:/m/latest", "models:/m@champion", "models:/m-0123abc",
		"models:/", "models://m/1", "models:/a/b/c", "models:/@", "runs:/run/path", "runs:/",
		"s3://b/a/../b", "https://h/a/%252e%252e/b", "s3://b/a%00", "mlflow-artifacts://h:1/..%2f..%2f",
		"file:///tmp/x", "file://host/x", "//\x00/0", "/abs/path", "rel/path", "", "%", "%zz", ":", "a:b:c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, source string) {
		if u, err := parseModelsURI(source); err == nil {
			forms := 0
			for _, set := range []bool{u.modelID != "", u.version != 0, u.alias != "", u.stage != ""} {
				if set {
					forms++
				}
			}
			if forms > 1 || (u.modelID == "") == (u.name == "") {
				t.Errorf("parseModelsURI(%q): got %+v, want either a model id or a name with at most one suffix", source, u)
			}
		}
		if err := validateNoRelativePaths(source); err == nil {
			decoded := source
			for {
				d, err := url.QueryUnescape(decoded)
				if err != nil || d == decoded {
					break
				}
				decoded = d
			}
			if strings.Contains(decoded, "\x00") {
				t.Errorf("validateNoRelativePaths(%q): accepted a source with a NUL", source)
			}
			for _, seg := range strings.Split(uriPath(decoded), "/") {
				if seg == ".." || seg == "." {
					t.Errorf("validateNoRelativePaths(%q): accepted a source whose path holds %q", source, seg)
				}
			}
		}
		if isFileURI(source) && !strings.HasPrefix(strings.ToLower(source), "file:") {
			t.Errorf("isFileURI(%q): got true for a URI without the file: scheme", source)
		}
	})
}
