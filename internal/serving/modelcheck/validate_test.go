package modelcheck

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mloop/mloop"
)

// fixture returns the bytes of an XGBoost test model of the runtime.
func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("..", "xgboost", "testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// writeDir writes files (relative path → content) into a new folder.
func writeDir(tb testing.TB, files map[string][]byte) string {
	tb.Helper()
	dir := tb.TempDir()
	for rel, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func TestValidateModelXGBoost(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, flavor string
		files        map[string][]byte
		objective    string
		outputs      int
	}{
		{"json detected", "", map[string][]byte{"model.json": fixture(t, "binary_logistic.json"), "README": []byte("x")}, "binary:logistic", 1},
		{"ubj given", FlavorXGBoost, map[string][]byte{"model.ubj": fixture(t, "tiny_softprob.ubj")}, "multi:softprob", 0},
		{"regression", "", map[string][]byte{"model.json": fixture(t, "reg_squarederror.json")}, "reg:squarederror", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := ValidateModel(ctx, tc.flavor, writeDir(t, tc.files))
			if err != nil {
				t.Fatalf("ValidateModel: %v", err)
			}
			if info.Flavor != FlavorXGBoost || info.Objective != tc.objective || info.NumTrees == 0 ||
				info.NumFeatures == 0 || len(info.Features) != info.NumFeatures {
				t.Errorf("got %+v, want an xgboost %s model with trees and features", info, tc.objective)
			}
			if tc.outputs > 0 && info.Outputs != tc.outputs {
				t.Errorf("got %d outputs, want %d", info.Outputs, tc.outputs)
			}
			if _, ok := tc.files[info.File]; !ok {
				t.Errorf("got file %q, want one of the model files", info.File)
			}
		})
	}
	// A single file under any name.
	p := filepath.Join(t.TempDir(), "delay.json")
	if err := os.WriteFile(p, fixture(t, "binary_logitraw.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := ValidateModel(ctx, "", p)
	if err != nil || info.Objective != "binary:logitraw" || info.File != "delay.json" {
		t.Fatalf("single file: got %+v, %v; want binary:logitraw from delay.json", info, err)
	}
}

func TestValidateModelRejects(t *testing.T) {
	ctx := context.Background()
	good := fixture(t, "binary_logistic.json")
	unsupported := bytes.Replace(good, []byte(`"binary:logistic"`), []byte(`"rank:pairwise"`), -1)
	if bytes.Equal(unsupported, good) {
		t.Fatal("fixture has no binary:logistic objective to replace")
	}
	for _, tc := range []struct {
		name, flavor string
		files        map[string][]byte
		want         string // in the message
	}{
		{"truncated json", "", map[string][]byte{"model.json": good[:len(good)/2]}, "not a model mloop can serve"},
		{"unsupported objective", "", map[string][]byte{"model.json": unsupported}, "rank:pairwise"},
		{"empty folder", "", map[string][]byte{"notes.txt": []byte("hi")}, "cannot tell the model's flavor"},
		{"no xgboost file", FlavorXGBoost, map[string][]byte{"serve.json": []byte(`{"command":["x"]}`)}, "holds no XGBoost model"},
		{"both xgboost files", FlavorXGBoost, map[string][]byte{"model.json": good, "model.ubj": fixture(t, "tiny_softprob.ubj")}, "both model.json and model.ubj"},
		{"both flavors", "", map[string][]byte{"model.json": good, "serve.json": []byte(`{"command":["x"]}`)}, "give the flavor"},
		{"unknown flavor", "onnx", map[string][]byte{"model.json": good}, `unknown model flavor "onnx"`},
		{"no serve.json", FlavorProcess, map[string][]byte{"model.json": good}, "has no serve.json"},
		{"empty command", "", map[string][]byte{"serve.json": []byte(`{"command":[]}`)}, "command is missing or empty"},
		{"bad spec json", "", map[string][]byte{"serve.json": []byte(`{"command":`)}, "not a valid spec"},
		{"unknown spec field", "", map[string][]byte{"serve.json": []byte(`{"cmd":["x"]}`)}, "unknown field"},
		{"PORT in env", "", map[string][]byte{"serve.json": []byte(`{"command":["x"],"env":{"PORT":"1"}}`)}, "must not set PORT"},
		{"bad env name", "", map[string][]byte{"serve.json": []byte(`{"command":["x"],"env":{"A-B":"1"}}`)}, "not a variable name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := ValidateModel(ctx, tc.flavor, writeDir(t, tc.files))
			if err == nil {
				t.Fatalf("got %+v, want an error", info)
			}
			if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (kind %s), want EINVALID saying %q", err, mloop.ErrorCode(err), tc.want)
			}
		})
	}
}

func TestValidateModelProcess(t *testing.T) {
	dir := writeDir(t, map[string][]byte{
		"serve.json": []byte(`{"command": ["python3", "serve.py", "--threads", "2"], "env": {"MODEL_FILE": "model.pkl"}}`),
		"serve.py":   []byte("print('hi')\n"),
	})
	info, err := ValidateModel(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Flavor != FlavorProcess || info.File != ProcessSpecFile || strings.Join(info.Command, " ") != "python3 serve.py --threads 2" {
		t.Fatalf("got %+v, want the process model's command", info)
	}
}

// tarEntry is one entry of a test archive.
type tarEntry struct {
	name     string
	typeflag byte
	body     string
	link     string
}

// makeTar returns a tar archive of entries.
func makeTar(tb testing.TB, entries ...tarEntry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link}
		if e.typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractTar(t *testing.T) {
	dir := t.TempDir()
	files, err := ExtractTar(context.Background(), bytes.NewReader(makeTar(t,
		tarEntry{name: "./", typeflag: tar.TypeDir},
		tarEntry{name: "./serve.json", typeflag: tar.TypeReg, body: "{}"},
		tarEntry{name: "lib/", typeflag: tar.TypeDir},
		tarEntry{name: "lib/util.py", typeflag: tar.TypeReg, body: "x = 1\n"},
		tarEntry{name: "data/deep/w.bin", typeflag: tar.TypeReg, body: "abc"},
	)), dir, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(files, ","), "serve.json,lib/util.py,data/deep/w.bin"; got != want {
		t.Errorf("got files %s, want %s", got, want)
	}
	data, err := os.ReadFile(filepath.Join(dir, "lib", "util.py"))
	if err != nil || string(data) != "x = 1\n" {
		t.Errorf("got %q, %v; want the file's content", data, err)
	}
}

func TestExtractTarRejects(t *testing.T) {
	small := Limits{MaxFiles: 2, MaxFileBytes: 10, MaxTotalBytes: 15, MaxPathLength: 40}
	for _, tc := range []struct {
		name    string
		entries []tarEntry
		kind    string
		want    string
	}{
		{"dotdot", []tarEntry{{name: "../evil", typeflag: tar.TypeReg, body: "x"}}, mloop.EINVALID, "not a clean relative path"},
		{"inner dotdot", []tarEntry{{name: "a/../../evil", typeflag: tar.TypeReg, body: "x"}}, mloop.EINVALID, "not a clean relative path"},
		{"absolute", []tarEntry{{name: "/etc/evil", typeflag: tar.TypeReg, body: "x"}}, mloop.EINVALID, "is absolute"},
		{"backslash", []tarEntry{{name: `..\evil`, typeflag: tar.TypeReg, body: "x"}}, mloop.EINVALID, "backslash"},
		{"symlink", []tarEntry{{name: "l", typeflag: tar.TypeSymlink, link: "/etc/passwd"}}, mloop.EINVALID, "link"},
		{"hardlink", []tarEntry{{name: "l", typeflag: tar.TypeLink, link: "/etc/passwd"}}, mloop.EINVALID, "link"},
		{"fifo", []tarEntry{{name: "p", typeflag: tar.TypeFifo}}, mloop.EINVALID, "only regular files and folders"},
		{"duplicate", []tarEntry{{name: "a", typeflag: tar.TypeReg, body: "x"}, {name: "./a", typeflag: tar.TypeReg, body: "y"}}, mloop.EINVALID, "twice"},
		{"file under file", []tarEntry{{name: "a", typeflag: tar.TypeReg, body: "x"}, {name: "a/b", typeflag: tar.TypeReg, body: "y"}}, mloop.EINVALID, "cannot be created"},
		{"empty", []tarEntry{{name: "d/", typeflag: tar.TypeDir}}, mloop.EINVALID, "no files"},
		{"too many files", []tarEntry{{name: "a", typeflag: tar.TypeReg}, {name: "b", typeflag: tar.TypeReg}, {name: "c", typeflag: tar.TypeReg}}, mloop.ETOOLARGE, "more than 2 files"},
		{"file too large", []tarEntry{{name: "a", typeflag: tar.TypeReg, body: strings.Repeat("x", 11)}}, mloop.ETOOLARGE, "larger than 10 bytes"},
		{"total too large", []tarEntry{{name: "a", typeflag: tar.TypeReg, body: "123456789"}, {name: "b", typeflag: tar.TypeReg, body: "123456789"}}, mloop.ETOOLARGE, "more than 15 bytes"},
		{"long name", []tarEntry{{name: strings.Repeat("a", 41), typeflag: tar.TypeReg, body: "x"}}, mloop.EINVALID, "longer than 40"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "x")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := ExtractTar(context.Background(), bytes.NewReader(makeTar(t, tc.entries...)), dir, small)
			if mloop.ErrorCode(err) != tc.kind || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (kind %s), want %s saying %q", err, mloop.ErrorCode(err), tc.kind, tc.want)
			}
			assertInside(t, parent, dir)
		})
	}
	t.Run("truncated", func(t *testing.T) {
		data := makeTar(t, tarEntry{name: "a", typeflag: tar.TypeReg, body: strings.Repeat("x", 5000)})
		_, err := ExtractTar(context.Background(), bytes.NewReader(data[:1500]), t.TempDir(), DefaultLimits)
		if mloop.ErrorCode(err) != mloop.EINVALID {
			t.Fatalf("got %v, want EINVALID", err)
		}
	})
	t.Run("not a tar", func(t *testing.T) {
		_, err := ExtractTar(context.Background(), strings.NewReader(strings.Repeat("garbage ", 100)), t.TempDir(), DefaultLimits)
		if mloop.ErrorCode(err) != mloop.EINVALID {
			t.Fatalf("got %v, want EINVALID", err)
		}
	})
}

// assertInside fails when anything below parent lies outside dir.
func assertInside(tb testing.TB, parent, dir string) {
	tb.Helper()
	err := filepath.Walk(parent, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(dir, p); p != parent && !filepath.IsLocal(rel) && p != dir {
			tb.Errorf("extraction wrote %s, outside %s", p, dir)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func FuzzExtractModelTar(f *testing.F) {
	f.Add(makeTar(f, tarEntry{name: "model.json", typeflag: tar.TypeReg, body: "{}"}))
	f.Add(makeTar(f, tarEntry{name: "../x", typeflag: tar.TypeReg, body: "x"}))
	f.Add(makeTar(f, tarEntry{name: "a/", typeflag: tar.TypeDir}, tarEntry{name: "a/b", typeflag: tar.TypeReg, body: "x"}))
	f.Add(makeTar(f, tarEntry{name: "l", typeflag: tar.TypeSymlink, link: "../../etc"}, tarEntry{name: "l/x", typeflag: tar.TypeReg, body: "x"}))
	lim := Limits{MaxFiles: 20, MaxFileBytes: 1 << 16, MaxTotalBytes: 1 << 18, MaxPathLength: 256}
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "x")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		files, err := ExtractTar(context.Background(), bytes.NewReader(data), dir, lim)
		if err != nil {
			if k := mloop.ErrorCode(err); k != mloop.EINVALID && k != mloop.ETOOLARGE {
				t.Fatalf("got error of kind %s, want EINVALID or ETOOLARGE: %v", k, err)
			}
		}
		for _, f := range files {
			st, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f)))
			if err != nil || !st.Mode().IsRegular() {
				t.Fatalf("extracted %q is not a regular file in the folder: %v", f, err)
			}
		}
		assertInside(t, parent, dir)
		// Nothing but regular files and folders is ever created.
		_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
				t.Errorf("extraction made %s of mode %s", p, fi.Mode())
			}
			return nil
		})
	})
}
