package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
)

// The layout of WorkDir:
//
//	WorkDir/hashmemo.json                       the file hash memo
//	WorkDir/datasets/<digest hex>/<file path>   materialized dataset versions
//	WorkDir/runs/<run>/<step>/log.txt           a step's log, all attempts
//	WorkDir/runs/<run>/<step>/outputs/<path>    a step's outputs

// stepDir returns the local folder of a step of a run.
func (s *Service) stepDir(runID, step string) string {
	return filepath.Join(s.WorkDir, "runs", runID, step)
}

// outputsDir returns the local folder a step writes its outputs to.
func (s *Service) outputsDir(runID, step string) string {
	return filepath.Join(s.stepDir(runID, step), "outputs")
}

// memoPath returns where the hash memo is saved.
func (s *Service) memoPath() string { return filepath.Join(s.WorkDir, "hashmemo.json") }

// materializeDataset makes the files of a dataset version available under
// WorkDir/datasets/<digest hex>/ and returns that folder. Versions are
// immutable, so a folder once complete is reused; it is written to a
// temporary folder and renamed into place, so a crash never leaves half a
// version where a complete one is expected. Concurrent callers for one
// version wait for the first.
func (s *Service) materializeDataset(ctx context.Context, v *dataset.Version) (string, error) {
	hx := strings.TrimPrefix(v.Digest, "sha256:")
	if dataset.ValidBlobDigest(hx) != nil {
		return "", mloop.Errorf(mloop.EINTERNAL, "dataset version %s has a malformed digest %q", v.Ref(), v.Digest)
	}
	dir := filepath.Join(s.WorkDir, "datasets", hx)
	unlock := s.rs.lockKey("dataset:" + hx)
	defer unlock()
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		problem := checkMaterialized(dir, v)
		if problem == "" {
			return dir, nil
		}
		// A step wrote into its (read-only) input, or something else did:
		// never hand the changed bytes to another step as this version.
		s.logger().Warn("materialized dataset version was modified; copying it again", "version", v.Ref(), "problem", problem)
		if err := os.RemoveAll(dir); err != nil {
			return "", fmt.Errorf("materialize %s: remove the modified copy: %w", v.Ref(), err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("materialize %s: %w", v.Ref(), err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), hx+".tmp*")
	if err != nil {
		return "", fmt.Errorf("materialize %s: %w", v.Ref(), err)
	}
	defer os.RemoveAll(tmp)
	for _, f := range v.Files {
		dst, err := localJoin(tmp, f.Path)
		if err != nil {
			return "", fmt.Errorf("materialize %s: %w", v.Ref(), err)
		}
		if err := s.copyBlob(ctx, f, dst); err != nil {
			return "", fmt.Errorf("materialize %s: %w", v.Ref(), err)
		}
	}
	if err := freeze(tmp, v.CreatedAt); err != nil {
		return "", fmt.Errorf("materialize %s: %w", v.Ref(), err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("materialize %s: %w", v.Ref(), err)
	}
	return dir, nil
}

// freeze makes the files under root read-only with the modification time
// mtime, so that a step cannot change a materialized dataset by mistake and
// checkMaterialized notices one that was changed anyway (root ignores
// permissions). Folders stay writable, so the work folder can always be
// deleted; checkMaterialized notices added or removed files.
func freeze(root string, mtime time.Time) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			return err
		}
		return os.Chmod(p, 0o444)
	})
}

// checkMaterialized returns "" when the folder dir holds exactly the files
// of v, each with its size and the modification time freeze gave it, and
// otherwise what differs.
func checkMaterialized(dir string, v *dataset.Version) string {
	want := make(map[string]int64, len(v.Files))
	for _, f := range v.Files {
		want[filepath.FromSlash(f.Path)] = f.Size
	}
	problem := ""
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		size, ok := want[rel]
		if !ok {
			problem = "unexpected file " + rel
			return fs.SkipAll
		}
		delete(want, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() || fi.Size() != size || !fi.ModTime().Equal(v.CreatedAt) {
			problem = "file " + rel + " changed"
			return fs.SkipAll
		}
		return nil
	})
	switch {
	case err != nil:
		return err.Error()
	case problem != "":
		return problem
	}
	for rel := range want {
		return "file " + rel + " missing"
	}
	return ""
}

// copyBlob writes one file of a dataset version to dst, checking its hash.
func (s *Service) copyBlob(ctx context.Context, f dataset.File, dst string) error {
	obj, err := s.Datasets.OpenFile(ctx, f.SHA256)
	if err != nil {
		return fmt.Errorf("file %s: %w", f.Path, err)
	}
	defer obj.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, cerr := io.Copy(io.MultiWriter(out, h), ctxReader{ctx, obj})
	if err := errors.Join(cerr, out.Close()); err != nil {
		return fmt.Errorf("file %s: %w", f.Path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return mloop.Errorf(mloop.EINTERNAL, "file %s of the dataset: stored bytes hash to %s, not %s", f.Path, got, f.SHA256)
	}
	return nil
}

// ctxReader stops reading once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// localJoin joins a slash-separated relative path to base, refusing one
// that leaves base.
func localJoin(base, rel string) (string, error) {
	if !filepath.IsLocal(filepath.FromSlash(rel)) {
		return "", mloop.Errorf(mloop.EINVALID, "path %q leaves its folder", rel)
	}
	return filepath.Join(base, filepath.FromSlash(rel)), nil
}

// artifactKey returns the artifact store key of an artifact URI.
func (s *Service) artifactKey(uri string) (string, error) {
	if s.Artifacts == nil {
		return "", mloop.Errorf(mloop.EUNAVAILABLE, "no artifact store is configured")
	}
	return s.Artifacts.KeyOf(uri)
}

// uploadPath uploads a local file, or a folder file by file, to the
// artifact URI uri.
func (s *Service) uploadPath(ctx context.Context, local, uri string) error {
	key, err := s.artifactKey(uri)
	if err != nil {
		return err
	}
	fi, err := os.Stat(local)
	if err != nil {
		return fmt.Errorf("upload %s: %w", local, err)
	}
	if !fi.IsDir() {
		return s.putFile(ctx, local, key)
	}
	return filepath.WalkDir(local, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(local, p)
		if err != nil {
			return err
		}
		return s.putFile(ctx, p, key+"/"+filepath.ToSlash(rel))
	})
}

func (s *Service) putFile(ctx context.Context, local, key string) error {
	f, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("upload %s: %w", local, err)
	}
	defer f.Close()
	if err := s.Artifacts.Put(ctx, key, f); err != nil {
		return fmt.Errorf("upload %s: %w", local, err)
	}
	return nil
}

// outputExists reports whether the artifacts of a recorded output are still
// in the artifact store.
func (s *Service) outputExists(ctx context.Context, rec OutputRecord) (bool, error) {
	key, err := s.artifactKey(rec.URI)
	if err != nil {
		return false, err
	}
	if !rec.Dir {
		return s.Artifacts.Exists(ctx, key)
	}
	entries, err := s.Artifacts.List(ctx, key)
	if err != nil {
		return false, err
	}
	return len(entries) > 0, nil
}

// downloadOutput writes a recorded output to dst (a file or a folder),
// through a temporary name renamed into place.
func (s *Service) downloadOutput(ctx context.Context, rec OutputRecord, dst string) error {
	key, err := s.artifactKey(rec.URI)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("download %s: %w", rec.URI, err)
	}
	tmp := fmt.Sprintf("%s.download%d", dst, time.Now().UnixNano())
	defer os.RemoveAll(tmp)
	if rec.Dir {
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return fmt.Errorf("download %s: %w", rec.URI, err)
		}
		if err := s.downloadTree(ctx, key, tmp); err != nil {
			return fmt.Errorf("download %s: %w", rec.URI, err)
		}
	} else if err := s.getFile(ctx, key, tmp); err != nil {
		return fmt.Errorf("download %s: %w", rec.URI, err)
	}
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("download %s: %w", rec.URI, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("download %s: %w", rec.URI, err)
	}
	return nil
}

func (s *Service) downloadTree(ctx context.Context, key, dst string) error {
	entries, err := s.Artifacts.List(ctx, key)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dst, filepath.FromSlash(e.Name))
		if e.IsDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			if err := s.downloadTree(ctx, e.Path, p); err != nil {
				return err
			}
			continue
		}
		if err := s.getFile(ctx, e.Path, p); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) getFile(ctx context.Context, key, dst string) error {
	obj, err := s.Artifacts.Get(ctx, key)
	if err != nil {
		return err
	}
	defer obj.Close()
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(f, ctxReader{ctx, obj})
	return errors.Join(cerr, f.Close())
}

// treeSize returns the total size of a file or folder.
func treeSize(p string) (int64, bool, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, false, err
	}
	if !fi.IsDir() {
		return fi.Size(), false, nil
	}
	var total int64
	err = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	return total, true, err
}

// fileStat is what a project snapshot remembers of one entry.
type fileStat struct {
	size  int64
	mtime int64
	mode  fs.FileMode
}

// snapshotSkip lists the folder names a project snapshot does not enter.
var snapshotSkip = map[string]bool{".git": true, ".mloop": true, "__pycache__": true, "node_modules": true}

// snapshotProject records (path, size, mtime, mode) of every entry of the
// project folder except the skipped folders and skip (the work folder when
// it lies inside the project).
func snapshotProject(root string, skip []string) (map[string]fileStat, error) {
	out := map[string]fileStat{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != root && errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return err
		}
		if p == root {
			return nil
		}
		if d.IsDir() {
			if snapshotSkip[d.Name()] {
				return filepath.SkipDir
			}
			for _, sk := range skip {
				if p == sk {
					return filepath.SkipDir
				}
			}
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st := fileStat{size: info.Size(), mtime: info.ModTime().UnixNano(), mode: info.Mode().Type()}
		if d.IsDir() {
			st.size, st.mtime = 0, 0 // a folder's own stat changes with its files
		}
		out[filepath.ToSlash(rel)] = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot project folder %s: %w", root, err)
	}
	return out, nil
}

// diffSnapshots describes what changed between two snapshots, at most limit
// paths ("created a.txt", "modified b.py", "deleted c"), and how many
// changes there were in total.
func diffSnapshots(before, after map[string]fileStat, limit int) ([]string, int) {
	var all []string
	for p, a := range after {
		b, ok := before[p]
		switch {
		case !ok:
			all = append(all, "created "+p)
		case a != b:
			all = append(all, "modified "+p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			all = append(all, "deleted "+p)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		_, pi, _ := strings.Cut(all[i], " ")
		_, pj, _ := strings.Cut(all[j], " ")
		return pi < pj
	})
	n := len(all)
	if len(all) > limit {
		all = all[:limit]
	}
	return all, n
}

// envName makes an input, output or param name part of an environment
// variable name: upper case, '-' as '_'.
func envName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

// inheritedEnv lists the variables a step inherits from the server process.
var inheritedEnv = []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"}

// outputPath returns the absolute local path of a step output.
func (s *Service) outputPath(runID, step string, o Output) string {
	return filepath.Join(s.outputsDir(runID, step), filepath.FromSlash(path.Clean(o.Path)))
}
