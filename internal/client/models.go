package client

// Registering local models as model versions (docs/models-api.md).

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/modelcheck"
)

// RegisteredModelVersion is the model version that RegisterModel created,
// with what the server's check found in the model.
type RegisteredModelVersion = modelcheck.Registered

// RegisterModel uploads the model at path — a folder, or a single XGBoost
// model file (.json or .ubj, sent as model.json or model.ubj) — as a tar
// archive made on the fly, and registers it as a new version of the
// registered model name (created when missing). flavor is xgboost, process
// or empty (the server detects it). The server checks the model before it
// stores anything: a corrupt or unsupported model is an EINVALID error
// with the reason.
func (c *Client) RegisterModel(ctx context.Context, name, path, flavor, description string) (*RegisteredModelVersion, error) {
	st, err := os.Stat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, mloop.Errorf(mloop.EINVALID, "model path %s does not exist", path)
		}
		return nil, fmt.Errorf("register model %s: %w", name, err)
	}
	single := ""
	if !st.IsDir() {
		ext := strings.ToLower(filepath.Ext(path))
		if ext != ".json" && ext != ".ubj" {
			return nil, mloop.Errorf(mloop.EINVALID, "model file %s is not an XGBoost model (.json or .ubj): give the model's folder instead", path)
		}
		single = "model" + ext
	}
	q := url.Values{}
	if flavor != "" {
		q.Set("flavor", flavor)
	}
	if description != "" {
		q.Set("description", description)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		var err error
		if single != "" {
			err = tarFile(pw, path, single, st)
		} else {
			err = tarFolder(ctx, pw, path)
		}
		pw.CloseWithError(err)
		done <- err
	}()
	p := "/api/v1/models/" + url.PathEscape(name) + "/versions"
	resp, sendErr := c.send(ctx, request{method: http.MethodPost, path: p, query: q, body: pr, size: -1, contentType: "application/x-tar"})
	pr.CloseWithError(io.ErrClosedPipe) // ends the writer if the server answered early
	tarErr := <-done
	if sendErr != nil {
		if tarErr != nil && tarErr != io.ErrClosedPipe {
			return nil, fmt.Errorf("register model %s: pack %s: %w", name, path, tarErr)
		}
		return nil, fmt.Errorf("register model %s: %w", name, sendErr)
	}
	defer resp.Body.Close()
	var v RegisteredModelVersion
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, fmt.Errorf("register model %s: decode answer: %w", name, err)
	}
	return &v, nil
}

// tarFolder writes the regular files below dir to w as a tar archive with
// slash-separated relative names. Symbolic links to files are followed;
// links to folders and other special files are errors.
func tarFolder(ctx context.Context, w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		name := filepath.ToSlash(rel)
		st, err := os.Stat(p) // follows links
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: st.ModTime()})
		case st.IsDir():
			return fmt.Errorf("%s is a link to a folder: copy the folder into the model instead", p)
		case !st.Mode().IsRegular():
			return fmt.Errorf("%s is not a regular file", p)
		}
		return writeTarFile(tw, p, name, st)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// tarFile writes the single file at p to w as a tar archive holding it as name.
func tarFile(w io.Writer, p, name string, st fs.FileInfo) error {
	tw := tar.NewWriter(w)
	if err := writeTarFile(tw, p, name, st); err != nil {
		return err
	}
	return tw.Close()
}

// writeTarFile adds the file at p to tw under name.
func writeTarFile(tw *tar.Writer, p, name string, st fs.FileInfo) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: st.Size(), Mode: int64(st.Mode().Perm()), ModTime: st.ModTime()}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, st.Size()); err != nil {
		return fmt.Errorf("read %s: %w (did it change while being sent?)", p, err)
	}
	return nil
}
