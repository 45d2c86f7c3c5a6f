package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
)

// blobPath returns the path of a blob below the base URL, or an EINVALID
// error when hex is not a SHA-256 in lower-case hex.
func blobPath(hex string) (string, error) {
	if !isSHA256Hex(hex) {
		return "", mloop.Errorf(mloop.EINVALID, "invalid blob digest %q: want 64 lower-case hex digits", hex)
	}
	return "/api/v1/blobs/sha256/" + hex, nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// datasetPath returns /api/v1/datasets/{name} followed by the escaped
// segments.
func datasetPath(name string, segments ...string) string {
	var b strings.Builder
	b.WriteString("/api/v1/datasets/")
	b.WriteString(url.PathEscape(name))
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// MissingBlobs returns the digests (lower-case hex SHA-256) among digests
// that the server does not hold.
func (c *Client) MissingBlobs(ctx context.Context, digests []string) ([]string, error) {
	if len(digests) == 0 {
		return nil, nil
	}
	var out struct {
		Missing []string `json:"missing"`
	}
	if _, err := c.callJSON(ctx, http.MethodPost, "/api/v1/blobs/missing", nil,
		map[string][]string{"digests": digests}, &out); err != nil {
		return nil, fmt.Errorf("ask for missing blobs: %w", err)
	}
	return out.Missing, nil
}

// PutBlob uploads size bytes from body as the blob whose SHA-256 is hex,
// streaming: pass an *os.File and nothing is buffered in memory. It reports
// whether the server created the blob (false: it already had it). A body
// whose bytes do not hash to hex is rejected by the server (EINVALID) and
// nothing is stored.
func (c *Client) PutBlob(ctx context.Context, hex string, body io.Reader, size int64) (created bool, err error) {
	p, err := blobPath(hex)
	if err != nil {
		return false, err
	}
	if size < 0 {
		return false, mloop.Errorf(mloop.EINVALID, "put blob %s: size must be known", hex)
	}
	// net/http closes a request body that is an io.Closer; a caller's file
	// stays the caller's to close.
	resp, err := c.send(ctx, request{method: http.MethodPut, path: p, body: io.NopCloser(body), size: size,
		contentType: "application/octet-stream"})
	if err != nil {
		return false, fmt.Errorf("upload blob %s: %w", short(hex), err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusCreated, nil
}

// GetBlob opens the blob whose SHA-256 is hex and returns its bytes and size
// (-1 when the server does not say). The caller closes the reader; the bytes
// are as the server sent them, so callers that need them verified hash them.
func (c *Client) GetBlob(ctx context.Context, hex string) (io.ReadCloser, int64, error) {
	p, err := blobPath(hex)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: p})
	if err != nil {
		return nil, 0, fmt.Errorf("download blob %s: %w", short(hex), err)
	}
	return resp.Body, resp.ContentLength, nil
}

// HasBlob reports whether the server holds the blob whose SHA-256 is hex.
func (c *Client) HasBlob(ctx context.Context, hex string) (bool, error) {
	p, err := blobPath(hex)
	if err != nil {
		return false, err
	}
	resp, err := c.send(ctx, request{method: http.MethodHead, path: p})
	if mloop.IsNotFound(err) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("look up blob %s: %w", short(hex), err)
	}
	resp.Body.Close()
	return true, nil
}

// CreateVersion commits a version of dataset name from blobs already on the
// server. It returns the version and whether it was created: false means a
// version with the same manifest digest existed and is returned instead.
func (c *Client) CreateVersion(ctx context.Context, name string, req dataset.CreateRequest) (*dataset.Version, bool, error) {
	var out struct {
		Version *dataset.Version `json:"version"`
		Created bool             `json:"created"`
	}
	if _, err := c.callJSON(ctx, http.MethodPost, datasetPath(name, "versions"), nil, req, &out); err != nil {
		return nil, false, fmt.Errorf("create version of dataset %q: %w", name, err)
	}
	if out.Version == nil {
		return nil, false, fmt.Errorf("create version of dataset %q: the answer holds no version", name)
	}
	return out.Version, out.Created, nil
}

// ListDatasets returns every dataset.
func (c *Client) ListDatasets(ctx context.Context) ([]dataset.Summary, error) {
	var out struct {
		Datasets []dataset.Summary `json:"datasets"`
	}
	if _, err := c.callJSON(ctx, http.MethodGet, "/api/v1/datasets", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list datasets: %w", err)
	}
	return out.Datasets, nil
}

// ListVersions returns every version of dataset name, newest first, without
// their profiles, following the server's pages. An unknown dataset is
// ENOTFOUND.
func (c *Client) ListVersions(ctx context.Context, name string) ([]*dataset.Version, error) {
	var all []*dataset.Version
	q := url.Values{}
	for {
		var out struct {
			Versions      []*dataset.Version `json:"versions"`
			NextPageToken string             `json:"next_page_token"`
		}
		if _, err := c.callJSON(ctx, http.MethodGet, datasetPath(name, "versions"), q, nil, &out); err != nil {
			return nil, fmt.Errorf("list versions of dataset %q: %w", name, err)
		}
		all = append(all, out.Versions...)
		if out.NextPageToken == "" || out.NextPageToken == q.Get("page_token") {
			return all, nil
		}
		q.Set("page_token", out.NextPageToken)
	}
}

// GetVersion returns version ref (N, latest or sha256:<prefix>) of dataset
// name, with its profile when withProfile is set. An unknown dataset or
// version is ENOTFOUND.
func (c *Client) GetVersion(ctx context.Context, name, ref string, withProfile bool) (*dataset.Version, error) {
	var q url.Values
	if !withProfile {
		q = url.Values{"profile": {"false"}}
	}
	var v dataset.Version
	if _, err := c.callJSON(ctx, http.MethodGet, datasetPath(name, "versions", ref), q, nil, &v); err != nil {
		return nil, fmt.Errorf("get %s@%s: %w", name, ref, err)
	}
	return &v, nil
}

// GetSchema returns the schema stored for dataset name, as YAML. A dataset
// without a stored schema, or an unknown dataset, is ENOTFOUND.
func (c *Client) GetSchema(ctx context.Context, name string) ([]byte, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: datasetPath(name, "schema")})
	if err != nil {
		return nil, fmt.Errorf("get schema of dataset %q: %w", name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("get schema of dataset %q: %w", name, err)
	}
	return b, nil
}

// SetSchema stores yaml as the schema of dataset name; the server checks it
// (EINVALID when it does not parse).
func (c *Client) SetSchema(ctx context.Context, name string, yaml []byte) error {
	resp, err := c.send(ctx, request{method: http.MethodPut, path: datasetPath(name, "schema"),
		body: bytes.NewReader(yaml), size: int64(len(yaml)), contentType: "application/yaml"})
	if err != nil {
		return fmt.Errorf("set schema of dataset %q: %w", name, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}

// VersionRuns returns the MLflow runs that logged version ref of dataset
// name as an input (lineage).
func (c *Client) VersionRuns(ctx context.Context, name, ref string) ([]dataset.LineageRun, error) {
	var out struct {
		Runs []dataset.LineageRun `json:"runs"`
	}
	if _, err := c.callJSON(ctx, http.MethodGet, datasetPath(name, "versions", ref, "runs"), nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list runs of %s@%s: %w", name, ref, err)
	}
	return out.Runs, nil
}

// short abbreviates a hex digest for messages.
func short(hex string) string {
	if len(hex) > 12 {
		return hex[:12] + "…"
	}
	return hex
}

// GC asks the server to delete the dataset blobs that no version references
// and that were written at least olderThan ago (POST /api/v1/datasets/gc).
func (c *Client) GC(ctx context.Context, olderThan time.Duration) (dataset.GCResult, error) {
	var out dataset.GCResult
	in := map[string]string{"older_than": olderThan.String()}
	if _, err := c.callJSON(ctx, http.MethodPost, "/api/v1/datasets/gc", nil, in, &out); err != nil {
		return out, fmt.Errorf("collect dataset blobs: %w", err)
	}
	return out, nil
}
