package httpapi

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/artifact"
)

// This file serves artifacts: MLflow's proxied artifact API
// (mlflow_artifacts.proto, what `mlflow server --serve-artifacts` answers
// under /api/2.0/mlflow-artifacts/) and the tracking API's ListArtifacts.
// Paths travel in the URL and are normalised by artifact.CleanPath; a path
// that could leave the store's root is a 400 INVALID_PARAMETER_VALUE.
// Downloads and uploads stream: an artifact never sits whole in memory.

// artifactFile is MLflow's FileInfo on the wire: file_size is a JSON number
// for files and absent for folders.
type artifactFile struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize *int64 `json:"file_size,omitempty"`
}

// artifactStore returns the server's artifact store. Without one the
// artifact API is off, and answers 503 as MLflow does when it runs with
// --no-serve-artifacts.
func (s *Server) artifactStore() (*artifact.Store, error) {
	if s.Artifacts == nil {
		return nil, mloop.Errorf(mloop.EUNAVAILABLE, "The artifact API is disabled: this server runs without an artifact store.")
	}
	return s.Artifacts, nil
}

// artifactUnder returns the store, and the key in it, of the artifact (or
// folder) rel under the artifact root rootURI: an mlflow-artifacts:/ or
// proxied http(s) URI, or a file: URI inside the store's local folder (see
// artifact.Store.KeyOf), such as a run's artifact_uri or a model version's
// download URI. rel must already be cleaned by artifact.CleanPath. This is
// how every endpoint that reads or writes the artifacts of a run or a model
// version finds them, as MLflow's handlers do with
// _get_proxied_run_artifact_destination_path.
func (s *Server) artifactUnder(rootURI, rel string) (*artifact.Store, string, error) {
	store, err := s.artifactStore()
	if err != nil {
		return nil, "", err
	}
	root, err := store.KeyOf(rootURI)
	if err != nil {
		return nil, "", err
	}
	return store, path.Join(root, rel), nil
}

// listArtifactsUnder lists the folder rel under the artifact root rootURI
// (see artifactUnder) and returns its children with paths relative to
// rootURI, as the tracking API's ListArtifacts and MLflow 3's
// ListLoggedModelArtifacts answer. rel must already be cleaned by
// artifact.CleanPath.
func (s *Server) listArtifactsUnder(ctx context.Context, rootURI, rel string) ([]artifactFile, error) {
	store, dir, err := s.artifactUnder(rootURI, rel)
	if err != nil {
		return nil, err
	}
	entries, err := store.List(ctx, dir)
	if err != nil {
		return nil, err
	}
	files := make([]artifactFile, len(entries))
	for i, e := range entries {
		files[i] = fileInfoOf(path.Join(rel, e.Name), e)
	}
	return files, nil
}

// sendArtifactUnder answers with the artifact rel under the artifact root
// rootURI (see artifactUnder), as sendArtifact does: what MLflow's
// get-artifact and model-versions/get-artifact endpoints serve. rel must
// already be cleaned by artifact.CleanPath.
func (s *Server) sendArtifactUnder(w http.ResponseWriter, r *http.Request, rootURI, rel string) error {
	store, key, err := s.artifactUnder(rootURI, rel)
	if err != nil {
		return err
	}
	return s.sendArtifact(w, r, store, key)
}

// fileInfoOf returns the wire FileInfo of e, reported under path p.
func fileInfoOf(p string, e artifact.Entry) artifactFile {
	f := artifactFile{Path: p, IsDir: e.IsDir}
	if !e.IsDir {
		size := e.Size
		f.FileSize = &size
	}
	return f
}

// listArtifacts serves the tracking API's GET artifacts/list (ListArtifacts):
// the children of a folder of a run's artifacts, with paths relative to the
// run's artifact root. MLflow pages nothing here, so page_token is accepted
// and ignored, and next_page_token is never set.
func (s *Server) listArtifacts(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RunID     string `json:"run_id"`
		RunUUID   string `json:"run_uuid"`
		Path      string `json:"path"`
		PageToken string `json:"page_token"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	id, err := runIDOf(req.RunID, req.RunUUID)
	if err != nil {
		return err
	}
	rel, err := artifact.CleanPath(req.Path)
	if err != nil {
		return err
	}
	run, err := s.Tracking.GetRun(r.Context(), id)
	if err != nil {
		return err
	}
	files, err := s.listArtifactsUnder(r.Context(), run.Info.ArtifactURI, rel)
	if err != nil {
		return err
	}
	// MLflow's JSON leaves out an empty repeated field, so no files means
	// no "files" key at all.
	return ok(w, struct {
		RootURI string         `json:"root_uri"`
		Files   []artifactFile `json:"files,omitempty"`
	}{run.Info.ArtifactURI, files})
}

// listProxiedArtifacts serves GET mlflow-artifacts/artifacts?path=<dir>
// (ListArtifacts of mlflow_artifacts.proto): the children of a folder of the
// store, each named by its last segment only, as MLflow does.
func (s *Server) listProxiedArtifacts(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Path string `json:"path"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	dir, err := artifact.CleanPath(req.Path)
	if err != nil {
		return err
	}
	store, err := s.artifactStore()
	if err != nil {
		return err
	}
	entries, err := store.List(r.Context(), dir)
	if err != nil {
		return err
	}
	files := make([]artifactFile, len(entries))
	for i, e := range entries {
		files[i] = fileInfoOf(e.Name, e)
	}
	return ok(w, struct {
		Files []artifactFile `json:"files,omitempty"`
	}{files})
}

// artifactAt returns the artifact store and the cleaned artifact path of a
// request to mlflow-artifacts/artifacts/{path...}. A bad path is reported
// before a missing store.
func (s *Server) artifactAt(r *http.Request) (*artifact.Store, string, error) {
	key, err := artifact.CleanPath(r.PathValue("path"))
	if err != nil {
		return nil, "", err
	}
	store, err := s.artifactStore()
	if err != nil {
		return nil, "", err
	}
	return store, key, nil
}

// downloadArtifact serves GET mlflow-artifacts/artifacts/<path>: the
// artifact, sent by sendArtifact.
func (s *Server) downloadArtifact(w http.ResponseWriter, r *http.Request) error {
	store, key, err := s.artifactAt(r)
	if err != nil {
		return err
	}
	return s.sendArtifact(w, r, store, key)
}

// sendArtifact answers with the artifact at key in store, streamed, as MLflow
// sends artifacts: an attachment named after the artifact, with the
// Content-Type MLflow guesses from that name (whatever the request's Accept
// header asks for) and X-Content-Type-Options: nosniff. A missing artifact,
// or a key that names a folder, is 404 RESOURCE_DOES_NOT_EXIST.
func (s *Server) sendArtifact(w http.ResponseWriter, r *http.Request, store *artifact.Store, key string) error {
	obj, err := store.Get(r.Context(), key)
	if err != nil {
		return err
	}
	defer obj.Close()
	h := w.Header()
	h.Set("Content-Type", artifact.ContentType(key))
	h.Set("Content-Length", strconv.FormatInt(obj.Size, 10))
	// An attachment, never rendered inline: an artifact shown on the
	// server's own origin could run scripts there.
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(key)})
	if disposition == "" {
		disposition = "attachment"
	}
	h.Set("Content-Disposition", disposition)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(w, obj); err != nil {
		// The status line is gone: all that is left is to log and let the
		// short body tell the client.
		s.Logger.Warn("artifact download interrupted", "path", key, "err", err)
	}
	return nil
}

// uploadArtifact serves PUT mlflow-artifacts/artifacts/<path>: the request
// body, streamed into the store (it is not subject to MaxBodyBytes). If the
// body breaks off, nothing is stored.
func (s *Server) uploadArtifact(w http.ResponseWriter, r *http.Request) error {
	store, key, err := s.artifactAt(r)
	if err != nil {
		return err
	}
	if err := checkWritableArtifact(key); err != nil {
		return err
	}
	body := &bodyReader{r: r.Body}
	if err := store.Put(r.Context(), key, body); err != nil {
		if body.err != nil {
			return mloop.Errorf(mloop.EBADREQUEST, "Could not read the upload of artifact %q: %v", key, body.err)
		}
		return err
	}
	return ok(w, nil)
}

// reservedArtifactPrefix is the folder of the artifact store that holds
// mloop's content-addressed dataset blobs (dataset.BlobPrefix lives under
// it). The proxied MLflow artifact API may read it but never write or delete
// in it: a dataset version's files must stay what their hashes say.
const reservedArtifactPrefix = "datasets"

// checkWritableArtifact refuses writes and deletes of key when it lies in
// the reserved dataset folder (or is that folder).
func checkWritableArtifact(key string) error {
	if key == reservedArtifactPrefix || strings.HasPrefix(key, reservedArtifactPrefix+"/") {
		return mloop.Errorf(mloop.EFORBIDDEN, "Artifact path %q is reserved for mloop's dataset versions; write artifacts under an experiment's folder", key)
	}
	return nil
}

// bodyReader remembers the error reading a request body, to tell a client
// that broke off an upload from a failing store.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.err = err
	}
	return n, err
}

// deleteArtifact serves DELETE mlflow-artifacts/artifacts/<path>: the
// artifact, or the folder and everything under it. Like MLflow, deleting
// what does not exist succeeds.
func (s *Server) deleteArtifact(w http.ResponseWriter, r *http.Request) error {
	store, key, err := s.artifactAt(r)
	if err != nil {
		return err
	}
	if err := checkWritableArtifact(key); err != nil {
		return err
	}
	if err := store.Delete(r.Context(), key); err != nil && !mloop.IsNotFound(err) {
		return err
	}
	return ok(w, nil)
}

// rejectUnsafeArtifactPaths answers 400 INVALID_PARAMETER_VALUE to a request
// for mlflow-artifacts/artifacts/<path> whose path artifact.CleanPath
// rejects, before the ServeMux sees it. Without it, the mux would answer a
// literal "../" or "//" in the URL with a redirect to the cleaned URL rather
// than with MLflow's error; encoded variants reach the handlers, which
// reject them with the same function.
func (s *Server) rejectUnsafeArtifactPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		for _, prefix := range artifactsPrefixes {
			if rest, found := strings.CutPrefix(p, prefix+"artifacts/"); found {
				if _, err := artifact.CleanPath(rest); err != nil {
					s.writeError(w, r, err)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
