package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/mloop/mloop"
)

// DefaultServer is the address of a local `mloop server` started with its
// defaults.
const DefaultServer = "http://127.0.0.1:5151"

// Client talks to one mloop server. It is safe for concurrent use.
type Client struct {
	base string
	http *http.Client
}

// New returns a client for the server at baseURL (such as
// http://127.0.0.1:5151; a missing scheme means http://). A nil httpClient
// means one with a transport tuned for a few parallel uploads and no overall
// timeout, since uploads of large files take as long as they take; bound
// calls with their context instead.
func New(baseURL string, httpClient *http.Client) *Client {
	base := strings.TrimRight(strings.TrimSpace(baseURL), "/")
	if base == "" {
		base = DefaultServer
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	if httpClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 8
		// Blobs are content-addressed and already compressed or columnar:
		// asking for gzip would only cost CPU on both sides.
		tr.DisableCompression = true
		tr.WriteBufferSize = 256 << 10
		tr.ReadBufferSize = 256 << 10
		httpClient = &http.Client{Transport: tr}
	}
	return &Client{base: base, http: httpClient}
}

// BaseURL returns the server's base URL as the client uses it.
func (c *Client) BaseURL() string { return c.base }

// request is one HTTP call.
type request struct {
	method      string
	path        string // below the base URL, already escaped
	query       url.Values
	body        io.Reader
	size        int64 // Content-Length of body; -1 unknown
	contentType string
}

// send performs r and returns the response when its status is 2xx; any other
// status is decoded into an *mloop.Error and the body closed.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, r.body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	if r.body != nil {
		req.ContentLength = r.size
		if r.size == 0 {
			// Tell net/http the body is empty rather than unknown.
			req.Body = http.NoBody
		}
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s %s: %w", r.method, r.path, ctxErr)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &mloop.Error{Code: mloop.EUNAVAILABLE,
			Message: fmt.Sprintf("cannot reach the mloop server at %s: %v", c.base, err)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(r.method, r.path, resp)
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// errorKinds maps the MLflow error_code of an answer back to mloop's kind,
// the inverse of the table in httpapi.
var errorKinds = map[string]string{
	"RESOURCE_DOES_NOT_EXIST": mloop.ENOTFOUND,
	"RESOURCE_ALREADY_EXISTS": mloop.EEXISTS,
	"INVALID_PARAMETER_VALUE": mloop.EINVALID,
	"INVALID_STATE":           mloop.ECONFLICT,
	"BAD_REQUEST":             mloop.EBADREQUEST,
	"RESOURCE_LIMIT_EXCEEDED": mloop.ETOOLARGE,
	"UNAUTHENTICATED":         mloop.EUNAUTHENTICATED,
	"PERMISSION_DENIED":       mloop.EFORBIDDEN,
	"TEMPORARILY_UNAVAILABLE": mloop.EUNAVAILABLE,
	"INTERNAL_ERROR":          mloop.EINTERNAL,
	"NOT_IMPLEMENTED":         mloop.ENOTIMPLEMENTED,
}

// decodeError turns a non-2xx answer into an *mloop.Error.
func decodeError(method, path string, resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body struct {
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
	}
	if json.Unmarshal(raw, &body) == nil && body.ErrorCode != "" {
		if body.ErrorCode == "ENDPOINT_NOT_FOUND" {
			return &mloop.Error{Code: mloop.ENOTIMPLEMENTED,
				Message: fmt.Sprintf("the server does not know %s %s: is it an older mloop? (%s)", method, path, body.Message)}
		}
		kind, ok := errorKinds[body.ErrorCode]
		if !ok {
			kind = kindOfStatus(resp.StatusCode)
		}
		return &mloop.Error{Code: kind, Message: body.Message}
	}
	msg := strings.TrimSpace(string(raw))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &mloop.Error{Code: kindOfStatus(resp.StatusCode),
		Message: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, msg)}
}

// kindOfStatus is the error kind of an HTTP status without an error body.
func kindOfStatus(status int) string {
	switch {
	case status == http.StatusNotFound:
		return mloop.ENOTFOUND
	case status == http.StatusConflict:
		return mloop.ECONFLICT
	case status == http.StatusRequestEntityTooLarge:
		return mloop.ETOOLARGE
	case status == http.StatusUnauthorized:
		return mloop.EUNAUTHENTICATED
	case status == http.StatusForbidden:
		return mloop.EFORBIDDEN
	case status == http.StatusNotImplemented:
		return mloop.ENOTIMPLEMENTED
	case status == http.StatusServiceUnavailable, status == http.StatusBadGateway, status == http.StatusGatewayTimeout:
		return mloop.EUNAVAILABLE
	case status >= 400 && status < 500:
		return mloop.EINVALID
	}
	return mloop.EINTERNAL
}

// callJSON sends in (when non-nil) as a JSON body and decodes the answer into
// out (when non-nil). It returns the answer's status.
func (c *Client) callJSON(ctx context.Context, method, path string, query url.Values, in, out any) (int, error) {
	r := request{method: method, path: path, query: query}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		r.body, r.size, r.contentType = bytes.NewReader(b), int64(len(b)), "application/json"
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return 0, fmt.Errorf("%s %s: %w", method, path, ctxErr)
		}
		return 0, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return resp.StatusCode, nil
}
