package httpapi

// Handlers of mloop's /api/v1 for dataset versions and the content-addressed
// blobs that hold their files. The wire format is documented in
// docs/datasets-api.md; errors have the MLflow shape and status mapping.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
)

// datasets returns the dataset service, or a NOT_IMPLEMENTED error when the
// server runs without one.
func (s *Server) datasets() (*dataset.Service, error) {
	if s.Datasets == nil {
		return nil, mloop.Errorf(mloop.ENOTIMPLEMENTED, "This server does not serve dataset versions.")
	}
	return s.Datasets, nil
}

// decodeJSON reads a JSON object of at most s.MaxBodyBytes from r's body
// into dst. An empty body leaves dst alone when allowEmpty is set and is an
// EINVALID error otherwise; malformed JSON is EBADREQUEST and a field of the
// wrong type EINVALID naming the field. Unknown fields are ignored.
func (s *Server) decodeJSON(r *http.Request, dst any, allowEmpty bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, s.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return mloop.Errorf(mloop.ETOOLARGE, "Request body exceeds the limit of %d bytes.", s.MaxBodyBytes)
		}
		return mloop.Errorf(mloop.EBADREQUEST, "Could not read the request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return nil
		}
		return mloop.Errorf(mloop.EINVALID, "The request body is empty: send a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return mloop.Errorf(mloop.EINVALID, "The request body must be a JSON object.")
			}
			return mloop.Errorf(mloop.EINVALID, "Invalid value for field '%s': want %s, got JSON %s.", te.Field, te.Type, te.Value)
		}
		var me *mloop.Error
		if errors.As(err, &me) {
			return me // a type's own decoder said what is wrong
		}
		return mloop.Errorf(mloop.EBADREQUEST, "Malformed JSON in request body: %v", err)
	}
	if dec.More() {
		return mloop.Errorf(mloop.EBADREQUEST, "Malformed JSON in request body: data after the object.")
	}
	return nil
}

// putBlob stores the request body as the blob its path names, streaming:
// 201 when stored, 200 when the blob already existed (the body is then
// discarded), 400 when the bytes hash to another digest (nothing stored).
func (s *Server) putBlob(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.datasets()
	if err != nil {
		return err
	}
	hex := r.PathValue("hex")
	created, size, err := ds.Blobs.Put(r.Context(), hex, r.Body)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{"digest": "sha256:" + hex, "size": size, "created": created})
	return nil
}

// blobETag is the entity tag of a blob: its digest, which never changes.
func blobETag(hex string) string { return `"sha256:` + hex + `"` }

// getBlob streams a blob with its Content-Length.
func (s *Server) getBlob(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.datasets()
	if err != nil {
		return err
	}
	hex := r.PathValue("hex")
	obj, err := ds.Blobs.Open(r.Context(), hex)
	if err != nil {
		return err
	}
	defer obj.Close()
	h := w.Header()
	h.Set("ETag", blobETag(hex))
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	if r.Header.Get("If-None-Match") == blobETag(hex) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(obj.Size, 10))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, obj); err != nil {
		// The status is sent: all that is left is to log and drop the connection.
		s.Logger.Warn("blob download interrupted", "blob", hex, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// headBlob answers whether a blob exists, with its Content-Length.
func (s *Server) headBlob(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.datasets()
	if err != nil {
		return err
	}
	hex := r.PathValue("hex")
	size, err := ds.Blobs.Size(r.Context(), hex)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("ETag", blobETag(hex))
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	return nil
}

// missingBlobs answers which of the digests sent are not stored, so that a
// client uploads only those.
func (s *Server) missingBlobs(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.datasets()
	if err != nil {
		return err
	}
	var req struct {
		Digests []string `json:"digests"`
	}
	if err := s.decodeJSON(r, &req, false); err != nil {
		return err
	}
	for i, d := range req.Digests {
		req.Digests[i] = strings.TrimPrefix(d, "sha256:")
	}
	missing, err := ds.Blobs.Missing(r.Context(), req.Digests)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string][]string{"missing": missing})
	return nil
}

// createDatasetVersion commits a version from stored blobs: 201 with the new
// version, or 200 with the existing version of the same digest.
func (s *Server) createDatasetVersion(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.datasets()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := dataset.ValidateName(name); err != nil {
		return err
	}
	var req dataset.CreateRequest
	if err := s.decodeJSON(r, &req, false); err != nil {
		return err
	}
	v, created, err := ds.CreateVersion(r.Context(), name, req)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{"version": v, "created": created})
	return nil
}

// listDatasets lists every dataset with its latest version.
func (s *Server) listDatasets(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.datasets()
	if err != nil {
		return err
	}
	sums, err := ds.ListDatasets(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"datasets": sums})
	return nil
}

// listDatasetVersions lists a dataset's versions, newest first, without
// profiles, a page at a time (max_results, page_token).
func (s *Server) listDatasetVersions(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.datasets()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	maxResults := 0
	if v := q.Get("max_results"); v != "" {
		if maxResults, err = strconv.Atoi(v); err != nil {
			return mloop.Errorf(mloop.EINVALID, "Invalid max_results %q: want a positive integer.", v)
		}
		if maxResults == 0 {
			return mloop.Errorf(mloop.EINVALID, "Invalid max_results 0: want a positive integer.")
		}
	}
	vs, next, err := ds.ListVersions(r.Context(), r.PathValue("name"), maxResults, q.Get("page_token"))
	if err != nil {
		return err
	}
	out := map[string]any{"versions": vs}
	if next != "" {
		out["next_page_token"] = next
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// versionRef reads the {name} and {ref} path segments as a reference.
func versionRef(r *http.Request) (dataset.Ref, error) {
	return dataset.ParseSelector(r.PathValue("name"), r.PathValue("ref"))
}

// getDatasetVersion returns one version, with its profile unless
// ?profile=false.
func (s *Server) getDatasetVersion(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.datasets()
	if err != nil {
		return err
	}
	ref, err := versionRef(r)
	if err != nil {
		return err
	}
	withProfile := true
	switch p := r.URL.Query().Get("profile"); p {
	case "", "true", "1":
	case "false", "0":
		withProfile = false
	default:
		return mloop.Errorf(mloop.EINVALID, "Invalid profile=%q: want true or false.", p)
	}
	v, err := ds.GetVersion(r.Context(), ref, withProfile)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// datasetVersionRuns lists the MLflow runs that logged a version (lineage).
func (s *Server) datasetVersionRuns(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.datasets()
	if err != nil {
		return err
	}
	ref, err := versionRef(r)
	if err != nil {
		return err
	}
	runs, err := ds.VersionRuns(r.Context(), ref)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
	return nil
}

// putDatasetSchema stores the body, YAML text, as a dataset's schema.
func (s *Server) putDatasetSchema(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.datasets()
	if err != nil {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || strings.HasPrefix(mt, "multipart/") {
			return mloop.Errorf(mloop.EINVALID, "Send the schema as the request body, with Content-Type application/yaml, not %q.", ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, s.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return mloop.Errorf(mloop.ETOOLARGE, "The schema exceeds the limit of %d bytes.", s.MaxBodyBytes)
		}
		return mloop.Errorf(mloop.EBADREQUEST, "Could not read the request body: %v", err)
	}
	name := r.PathValue("name")
	if err := ds.SetSchema(r.Context(), name, body); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"dataset": name})
	return nil
}

// getDatasetSchema returns a dataset's schema as YAML text.
func (s *Server) getDatasetSchema(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.datasets()
	if err != nil {
		return err
	}
	text, err := ds.GetSchema(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(text)))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(text)
	return err
}

// collectDatasetBlobs deletes the blobs no version references that are
// older than the grace period ({"older_than": "24h"}, a Go duration; 24h
// when absent).
func (s *Server) collectDatasetBlobs(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.datasets()
	if err != nil {
		return err
	}
	var req struct {
		OlderThan string `json:"older_than"`
	}
	if err := s.decodeJSON(r, &req, true); err != nil {
		return err
	}
	grace := dataset.DefaultGCGrace
	if req.OlderThan != "" {
		if grace, err = time.ParseDuration(req.OlderThan); err != nil {
			return mloop.Errorf(mloop.EINVALID, "Invalid older_than %q: want a duration such as 24h or 90m.", req.OlderThan)
		}
	}
	res, err := ds.GC(r.Context(), grace)
	if err != nil {
		return fmt.Errorf("collect dataset blobs: %w", err)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
