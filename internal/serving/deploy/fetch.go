package deploy

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mloop/mloop"
)

// maxModelFiles bounds the files of one model version that FetchModel
// writes.
const maxModelFiles = 100_000

// FetchModel writes the files of a model version into dir (which exists
// and should be empty): when the version's artifact URI names one file,
// that file under its base name; when it names a folder, every file under
// it at its relative path. Each file is written to a temporary name and
// renamed into place, so a file in dir is always whole; a file starting
// with "#!" is made executable (the artifact store keeps no modes, and a
// process model may run its script directly). ENOTFOUND for an unknown
// version or one without files; ENOTIMPLEMENTED when its files are not in
// this server's artifact store; EINVALID for a path that would leave dir.
func (s *Service) FetchModel(ctx context.Context, model string, version int64, dir string) error {
	if version <= 0 {
		return mloop.Errorf(mloop.EINVALID, "model version %d of %s: versions start at 1", version, model)
	}
	mv := model + "/" + strconv.FormatInt(version, 10)
	uri, err := s.Registry.GetModelVersionDownloadURI(ctx, model, strconv.FormatInt(version, 10))
	if mloop.IsNotFound(err) {
		return mloop.Errorf(mloop.ENOTFOUND, "model version %s does not exist (%s)", mv, strings.TrimSuffix(mloop.ErrorMessage(err), "."))
	} else if err != nil {
		return fmt.Errorf("fetch model version %s: %w", mv, err)
	}
	key, err := s.Artifacts.KeyOf(uri)
	if err != nil {
		code := mloop.ErrorCode(err)
		if code == mloop.EINTERNAL {
			return fmt.Errorf("fetch model version %s: locate %s: %w", mv, uri, err)
		}
		return mloop.Errorf(code, "the files of model version %s are at %s, which this server's artifact store does not hold (%s): register the model with mloop model register so that its files are stored with the server",
			mv, uri, strings.TrimSuffix(mloop.ErrorMessage(err), "."))
	}
	if key == "" {
		return mloop.Errorf(mloop.EINVALID, "the artifact URI %s of model version %s names the whole artifact store, not a model's files", uri, mv)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("fetch model version %s: open %s: %w", mv, dir, err)
	}
	defer root.Close()

	single, err := s.Artifacts.Exists(ctx, key)
	if err != nil {
		return fmt.Errorf("fetch model version %s: %w", mv, err)
	}
	if single {
		return s.fetchFile(ctx, root, path.Base(key), key)
	}
	files, err := s.listFiles(ctx, key)
	if err != nil {
		return fmt.Errorf("fetch model version %s: %w", mv, err)
	}
	if len(files) == 0 {
		return mloop.Errorf(mloop.ENOTFOUND, "model version %s has no files at %s: register it again", mv, uri)
	}
	for _, f := range files {
		rel, ok := strings.CutPrefix(f, key+"/")
		if !ok || rel == "" || !filepath.IsLocal(filepath.FromSlash(rel)) || strings.Contains(rel, "\\") {
			return mloop.Errorf(mloop.EINVALID, "model version %s: refusing file %q, whose path would leave the model's folder", mv, f)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.fetchFile(ctx, root, rel, f); err != nil {
			return fmt.Errorf("fetch model version %s: %w", mv, err)
		}
	}
	return nil
}

// listFiles returns the keys of every file under the folder key.
func (s *Service) listFiles(ctx context.Context, key string) ([]string, error) {
	var files []string
	dirs := []string{key}
	for len(dirs) > 0 {
		d := dirs[0]
		dirs = dirs[1:]
		entries, err := s.Artifacts.List(ctx, d)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Path, d+"/") {
				return nil, mloop.Errorf(mloop.EINVALID, "refusing artifact %q listed under %q", e.Path, d)
			}
			if e.IsDir {
				dirs = append(dirs, e.Path)
			} else {
				files = append(files, e.Path)
			}
			if len(files)+len(dirs) > maxModelFiles {
				return nil, mloop.Errorf(mloop.ETOOLARGE, "the model's folder %s holds more than %d files", key, maxModelFiles)
			}
		}
	}
	return files, nil
}

// fetchFile writes the artifact key to rel under root through a temporary
// file renamed into place.
func (s *Service) fetchFile(ctx context.Context, root *os.Root, rel, key string) (err error) {
	if d := path.Dir(rel); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return mloop.Errorf(mloop.EINVALID, "cannot create the folder of %q: %v", rel, err)
		}
	}
	obj, err := s.Artifacts.Get(ctx, key)
	if err != nil {
		return err
	}
	defer obj.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	tmp := rel + ".fetch-" + hex.EncodeToString(b[:])
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return mloop.Errorf(mloop.EINVALID, "cannot create %q: %v", rel, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			_ = root.Remove(tmp)
		}
	}()
	br := bufio.NewReader(obj)
	head, _ := br.Peek(2)
	executable := string(head) == "#!"
	n, err := io.Copy(f, br)
	if err != nil {
		return fmt.Errorf("copy %s: %w", key, err)
	}
	if n != obj.Size {
		return fmt.Errorf("copy %s: got %d bytes, want %d", key, n, obj.Size)
	}
	if executable {
		if err := f.Chmod(0o755); err != nil {
			return fmt.Errorf("make %s executable: %w", rel, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	if err := root.Rename(tmp, rel); err != nil {
		if errors.Is(err, os.ErrExist) {
			return mloop.Errorf(mloop.EINVALID, "cannot write %q: a folder is in the way", rel)
		}
		return fmt.Errorf("write %s: %w", rel, err)
	}
	return nil
}
