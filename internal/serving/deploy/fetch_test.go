package deploy_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/serving/deploy"
)

// readTree returns every file under dir (slash path → content) and the
// modes of the files.
func readTree(t *testing.T, dir string) (map[string][]byte, map[string]fs.FileMode) {
	t.Helper()
	files, modes := map[string][]byte{}, map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)], modes[filepath.ToSlash(rel)] = b, info.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, modes
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestFetchModelFolder(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	want := map[string][]byte{
		"model.json":             fixture(t, "tiny_categorical.json"),
		"README.md":              []byte("# flights\n"),
		"scripts/warm.sh":        []byte("#!/bin/sh\necho warm\n"),
		"data/nested/deep/x.bin": {0, 1, 2, 3, 255},
		"empty.txt":              {},
	}
	v := e.register(t, "flights", want)
	dir := t.TempDir()
	must(t, "FetchModel", e.svc.FetchModel(ctx, "flights", v, dir))
	got, modes := readTree(t, dir)
	if g, w := strings.Join(sortedKeys(got), ","), strings.Join(sortedKeys(want), ","); g != w {
		t.Fatalf("fetched files: got %s, want %s (and no temporary file left)", g, w)
	}
	for name, b := range want {
		if !bytes.Equal(got[name], b) {
			t.Errorf("%s: got %d bytes that differ from the %d registered", name, len(got[name]), len(b))
		}
	}
	if modes["scripts/warm.sh"]&0o100 == 0 || modes["model.json"]&0o111 != 0 {
		t.Fatalf("modes: got warm.sh %v and model.json %v, want the script (#!) executable and the model not", modes["scripts/warm.sh"], modes["model.json"])
	}
}

func TestFetchModelSingleFile(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	body := fixture(t, "tiny_categorical.json")
	must(t, "Put", e.arts.Put(ctx, "single/delay.json", bytes.NewReader(body)))
	v := e.registerSource(t, "delay", "mlflow-artifacts:/single/delay.json")
	dir := t.TempDir()
	must(t, "FetchModel", e.svc.FetchModel(ctx, "delay", v, dir))
	got, _ := readTree(t, dir)
	if len(got) != 1 || !bytes.Equal(got["delay.json"], body) {
		t.Fatalf("fetched files: got %v, want delay.json only", sortedKeys(got))
	}
}

func TestFetchModelErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.registerXGBoost(t, "flights", 1)
	outside := e.registerSource(t, "outside", "s3://elsewhere/models/outside")
	empty := e.registerSource(t, "empty", "mlflow-artifacts:/nothing/here")
	for _, tc := range []struct {
		name     string
		model    string
		version  int64
		code     string
		contains string
	}{
		{"unknown version", "flights", 9, mloop.ENOTFOUND, "model version flights/9 does not exist"},
		{"unknown model", "nope", 1, mloop.ENOTFOUND, "nope/1"},
		{"version zero", "flights", 0, mloop.EINVALID, "versions start at 1"},
		{"outside the artifact store", "outside", outside, mloop.ENOTIMPLEMENTED, "s3://elsewhere/models/outside"},
		{"no files", "empty", empty, mloop.ENOTFOUND, "has no files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := e.svc.FetchModel(ctx, tc.model, tc.version, dir)
			wantCode(t, "FetchModel", err, tc.code)
			if msg := mloop.ErrorMessage(err); !strings.Contains(msg, tc.contains) {
				t.Fatalf("FetchModel: got message %q, want it to contain %q", msg, tc.contains)
			}
			if got, _ := readTree(t, dir); len(got) != 0 {
				t.Fatalf("FetchModel failed but wrote %v", sortedKeys(got))
			}
		})
	}
}

// escapingArtifacts lists, under any folder, a file whose path leaves it.
type escapingArtifacts struct {
	deploy.Artifacts
	evil string
}

func (a escapingArtifacts) List(ctx context.Context, dir string) ([]artifact.Entry, error) {
	return []artifact.Entry{{Path: dir + "/" + a.evil, Name: "x"}}, nil
}

func (a escapingArtifacts) Exists(ctx context.Context, key string) (bool, error) { return false, nil }

func TestFetchModelRefusesEscapingPaths(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	v := e.registerSource(t, "evil", "mlflow-artifacts:/evil/model")
	must(t, "Put", e.arts.Put(ctx, "evil/secret", strings.NewReader("secret")))
	for _, evil := range []string{"../secret", "../../../../etc/passwd", "a/../../secret", "/abs"} {
		svc := e.newService(t)
		svc.Artifacts = escapingArtifacts{Artifacts: e.arts, evil: evil}
		parent := t.TempDir()
		dir := filepath.Join(parent, "model")
		must(t, "mkdir", os.Mkdir(dir, 0o755))
		err := svc.FetchModel(ctx, "evil", v, dir)
		wantCode(t, "FetchModel of "+evil, err, mloop.EINVALID)
		if got, _ := readTree(t, parent); len(got) != 0 {
			t.Fatalf("FetchModel of %s wrote %v", evil, sortedKeys(got))
		}
	}
}
