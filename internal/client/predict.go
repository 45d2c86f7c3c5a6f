package client

// Prediction requests to a deployment, for `mloop predict`: the request
// body's protocol told from its shape, CSV turned into MLflow's
// dataframe_split, and answers of the three protocols read back as one
// line per row.

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/deploy"
)

// Prediction protocols a deployment speaks.
const (
	// ProtocolOIP is the Open Inference Protocol (KServe V2):
	// POST /v2/models/{name}/infer.
	ProtocolOIP = "oip"
	// ProtocolKServeV1 is KServe V1: POST /v1/models/{name}:predict.
	ProtocolKServeV1 = "kserve-v1"
	// ProtocolMLflow is MLflow's scoring format:
	// POST /serving-endpoints/{name}/invocations.
	ProtocolMLflow = "mlflow"
)

// PredictRequest is one prediction request to a deployment.
type PredictRequest struct {
	// Deployment is the deployment's name.
	Deployment string
	// Protocol is ProtocolOIP, ProtocolKServeV1 or ProtocolMLflow.
	Protocol string
	// Body is the request body in that protocol.
	Body []byte
	// Revision, when set, pins the request to a revision: a number, or
	// primary, canary or shadow (header X-Mloop-Revision).
	Revision string
}

// PredictResult is a deployment's answer.
type PredictResult struct {
	// Body is the answer's body in the request's protocol.
	Body []byte
	// Revision and ModelVersion say who answered (from the
	// X-Mloop-Revision and X-Mloop-Model-Version headers); RequestID is
	// the X-Request-Id of the answer.
	Revision     string
	ModelVersion string
	RequestID    string
}

// predictPath returns the path of the deployment's prediction endpoint in
// protocol.
func predictPath(protocol, name string) (string, error) {
	n := url.PathEscape(name)
	switch protocol {
	case ProtocolOIP:
		return "/v2/models/" + n + "/infer", nil
	case ProtocolKServeV1:
		return "/v1/models/" + n + ":predict", nil
	case ProtocolMLflow:
		return "/serving-endpoints/" + n + "/invocations", nil
	}
	return "", mloop.Errorf(mloop.EINVALID, "unknown prediction protocol %q: use %s, %s or %s", protocol, ProtocolOIP, ProtocolKServeV1, ProtocolMLflow)
}

// maxPredictAnswer bounds the size of a prediction answer read.
const maxPredictAnswer = 256 << 20

// Predict sends a prediction request and returns the answer. An answer
// other than 2xx is an error carrying the server's message (a 400 names
// the input at fault) and the kind of its status.
func (c *Client) Predict(ctx context.Context, req PredictRequest) (*PredictResult, error) {
	p, err := predictPath(req.Protocol, req.Deployment)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+p, bytes.NewReader(req.Body))
	if err != nil {
		return nil, fmt.Errorf("predict %s: %w", req.Deployment, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	if req.Revision != "" {
		hr.Header.Set(deploy.RevisionHeader, req.Revision)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("predict %s: %w", req.Deployment, ctxErr)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &mloop.Error{Code: mloop.EUNAVAILABLE, Message: fmt.Sprintf(unreachablePrefix+" at %s: %v", c.base, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPredictAnswer))
	if err != nil {
		return nil, fmt.Errorf("predict %s: read answer: %w", req.Deployment, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, predictError(resp, body)
	}
	return &PredictResult{
		Body:         body,
		Revision:     resp.Header.Get(deploy.RevisionHeader),
		ModelVersion: resp.Header.Get(deploy.ModelVersionHeader),
		RequestID:    resp.Header.Get("X-Request-Id"),
	}, nil
}

// predictError turns a failed prediction answer into an *mloop.Error: the
// message of the protocol's error body ({"error": …} for OIP and KServe,
// {"error_code": …, "message": …} for MLflow), the kind of the status.
func predictError(resp *http.Response, body []byte) error {
	var e struct {
		Error     any    `json:"error"`
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
	}
	msg := ""
	if json.Unmarshal(body, &e) == nil {
		switch v := e.Error.(type) {
		case string:
			msg = v
		case nil:
		default:
			b, _ := json.Marshal(v)
			msg = string(b)
		}
		if msg == "" {
			msg = e.Message
		}
	}
	kind := kindOfStatus(resp.StatusCode)
	if e.ErrorCode == "ENDPOINT_NOT_FOUND" {
		kind = mloop.ENOTFOUND
	} else if k, ok := errorKinds[e.ErrorCode]; ok {
		kind = k
	}
	if msg == "" {
		msg = strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &mloop.Error{Code: kind, Message: fmt.Sprintf("%s: %s", resp.Status, msg)}
}

// ModelReady reports whether the server's data plane answers GET
// /v2/models/{name}/ready with 200. A server that serves no models is an
// ENOTIMPLEMENTED error; any other answer is false.
func (c *Client) ModelReady(ctx context.Context, name string) (bool, error) {
	p := "/v2/models/" + url.PathEscape(name) + "/ready"
	resp, err := c.send(ctx, request{method: http.MethodGet, path: p})
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return false, ctx.Err()
		case mloop.ErrorCode(err) == mloop.ENOTIMPLEMENTED: // no data plane
			return false, err
		case IsUnreachable(err):
			return false, err
		}
		return false, nil // not there yet, loading, or failed: not ready
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// unreachablePrefix starts the message of the error every call returns
// when the server cannot be reached (send writes the same words).
const unreachablePrefix = "cannot reach the mloop server"

// IsUnreachable reports whether err says the server could not be reached
// at all (rather than answering, even with a 503).
func IsUnreachable(err error) bool {
	return mloop.ErrorCode(err) == mloop.EUNAVAILABLE && strings.HasPrefix(mloop.ErrorMessage(err), unreachablePrefix)
}

// DetectProtocol tells the protocol of a JSON prediction request body from
// its fields: "inputs" holding tensors with "name" and "shape" is the Open
// Inference Protocol; "instances" is KServe V1; "dataframe_split",
// "dataframe_records", or "inputs" without shapes is MLflow. Python's NaN
// and Infinity literals are accepted. Anything else is EINVALID with what
// to send instead.
func DetectProtocol(body []byte) (string, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(PythonJSON(body), &top); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return "", mloop.Errorf(mloop.EINVALID, "the request is JSON but not an object: send an object such as {\"inputs\": […]}, {\"instances\": […]} or {\"dataframe_split\": {…}}")
		}
		return "", mloop.Errorf(mloop.EINVALID, "the request is not valid JSON: %v", err)
	}
	switch {
	case has(top, "dataframe_split"), has(top, "dataframe_records"):
		return ProtocolMLflow, nil
	case has(top, "instances"):
		return ProtocolKServeV1, nil
	case has(top, "inputs"):
		var tensors []map[string]json.RawMessage
		if json.Unmarshal(top["inputs"], &tensors) == nil && len(tensors) > 0 && has(tensors[0], "name") && has(tensors[0], "shape") {
			return ProtocolOIP, nil
		}
		return ProtocolMLflow, nil
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, strconv.Quote(k))
	}
	return "", mloop.Errorf(mloop.EINVALID, "cannot tell the protocol of a request with fields [%s]: send Open Inference Protocol {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}, KServe V1 {\"instances\": […]}, or MLflow {\"dataframe_split\": {\"columns\", \"data\"}}, {\"dataframe_records\": […]} or {\"inputs\": …}", strings.Join(keys, ", "))
}

// has reports whether m holds key with a value other than null.
func has(m map[string]json.RawMessage, key string) bool {
	v, ok := m[key]
	return ok && string(bytes.TrimSpace(v)) != "null"
}

// PythonJSON returns b with the NaN, Infinity and -Infinity literals that
// Python's json module writes (outside strings) replaced by null, so that
// encoding/json reads it. b itself is not modified; it is returned as is
// when it holds none.
func PythonJSON(b []byte) []byte {
	var out []byte
	inString, escaped := false, false
	last := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
			continue
		}
		n := 0
		switch {
		case c == 'N' && bytes.HasPrefix(b[i:], []byte("NaN")):
			n = 3
		case c == 'I' && bytes.HasPrefix(b[i:], []byte("Infinity")):
			n = 8
		case c == '-' && bytes.HasPrefix(b[i:], []byte("-Infinity")):
			n = 9
		}
		if n == 0 {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(b))
		}
		out = append(out, b[last:i]...)
		out = append(out, "null"...)
		i += n - 1
		last = i + 1
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// missingCells are the CSV cells read as a missing value.
var missingCells = map[string]bool{"": true, "NA": true, "N/A": true, "NaN": true, "nan": true, "NAN": true, "null": true, "NULL": true, "None": true}

// CSVToMLflow turns a CSV table with a header row into an MLflow
// dataframe_split request: numbers stay numbers, empty cells and NA, NaN,
// null or None are missing (null), other cells are strings (the server
// names them if the model wants a number). An empty table, a missing
// header or ragged rows are EINVALID.
func CSVToMLflow(r io.Reader) ([]byte, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, mloop.Errorf(mloop.EINVALID, "the CSV input is empty: give a header row with the feature names, then one row per prediction")
	}
	if err != nil {
		return nil, mloop.Errorf(mloop.EINVALID, "the CSV input cannot be read: %v", err)
	}
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if h == "" {
			return nil, mloop.Errorf(mloop.EINVALID, "the CSV header's column %d has no name: the first row names the features", i+1)
		}
		if seen[h] {
			return nil, mloop.Errorf(mloop.EINVALID, "the CSV header names column %q twice", h)
		}
		seen[h] = true
		header[i] = h
	}
	var data [][]any
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, mloop.Errorf(mloop.EINVALID, "the CSV input cannot be read: %v", err)
		}
		row := make([]any, len(rec))
		for j, cell := range rec {
			cell = strings.TrimSpace(cell)
			if missingCells[cell] {
				continue // nil: missing
			}
			if v, err := strconv.ParseFloat(cell, 64); err == nil && !math.IsInf(v, 0) && !math.IsNaN(v) {
				row[j] = json.Number(strconv.FormatFloat(v, 'g', -1, 64))
				continue
			}
			row[j] = cell
		}
		data = append(data, row)
	}
	if len(data) == 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "the CSV input has a header but no rows: add one row per prediction")
	}
	return json.Marshal(map[string]any{"dataframe_split": map[string]any{"columns": header, "data": data}})
}

// PredictionRows reads a prediction answer of protocol into one string per
// row: the row's prediction ("0.25"), its values ("[0.1,0.7,0.2]") or, for
// several OIP outputs, name=value pairs.
func PredictionRows(protocol string, body []byte) ([]string, error) {
	body = PythonJSON(body)
	switch protocol {
	case ProtocolOIP:
		return oipRows(body)
	case ProtocolKServeV1, ProtocolMLflow:
		var out struct {
			Predictions json.RawMessage `json:"predictions"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, mloop.Errorf(mloop.EINVALID, "the answer is not a prediction response: %v", err)
		}
		var rows []json.RawMessage
		if err := json.Unmarshal(out.Predictions, &rows); err != nil || out.Predictions == nil {
			return nil, mloop.Errorf(mloop.EINVALID, "the answer has no \"predictions\" list")
		}
		lines := make([]string, len(rows))
		for i, r := range rows {
			lines[i] = compactJSON(r)
		}
		return lines, nil
	}
	return nil, mloop.Errorf(mloop.EINVALID, "unknown prediction protocol %q", protocol)
}

// oipRows reads an OIP inference response's outputs row by row.
func oipRows(body []byte) ([]string, error) {
	var out struct {
		Outputs []struct {
			Name  string            `json:"name"`
			Shape []int64           `json:"shape"`
			Data  []json.RawMessage `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, mloop.Errorf(mloop.EINVALID, "the answer is not an inference response: %v", err)
	}
	if len(out.Outputs) == 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "the answer has no outputs")
	}
	rows := -1
	cols := make([][]string, len(out.Outputs))
	for k, o := range out.Outputs {
		data := flattenOIP(o.Data)
		if len(o.Shape) == 0 || o.Shape[0] < 0 {
			return nil, mloop.Errorf(mloop.EINVALID, "output %q has no shape [rows, …]", o.Name)
		}
		n, size := o.Shape[0], int64(len(data))
		per := int64(1)
		for _, d := range o.Shape[1:] {
			if d < 1 || d > size {
				return nil, mloop.Errorf(mloop.EINVALID, "output %q has a bad shape %v for %d values", o.Name, o.Shape, size)
			}
			if per *= d; per > size {
				return nil, mloop.Errorf(mloop.EINVALID, "output %q has shape %v but %d values", o.Name, o.Shape, size)
			}
		}
		if n > size || n*per != size {
			return nil, mloop.Errorf(mloop.EINVALID, "output %q has shape %v but %d values", o.Name, o.Shape, size)
		}
		if rows >= 0 && int(n) != rows {
			return nil, mloop.Errorf(mloop.EINVALID, "outputs disagree on the number of rows (%d and %d)", rows, n)
		}
		rows = int(n)
		cols[k] = make([]string, rows)
		for i := range rows {
			vals := data[int64(i)*per : int64(i+1)*per]
			if len(o.Shape) == 1 {
				cols[k][i] = compactJSON(vals[0])
				continue
			}
			parts := make([]string, len(vals))
			for j, v := range vals {
				parts[j] = compactJSON(v)
			}
			cols[k][i] = "[" + strings.Join(parts, ",") + "]"
		}
	}
	lines := make([]string, rows)
	for i := range rows {
		if len(out.Outputs) == 1 {
			lines[i] = cols[0][i]
			continue
		}
		parts := make([]string, len(out.Outputs))
		for k, o := range out.Outputs {
			parts[k] = o.Name + "=" + cols[k][i]
		}
		lines[i] = strings.Join(parts, " ")
	}
	return lines, nil
}

// flattenOIP flattens nested data lists (OIP allows data as nested lists
// in the tensor's shape) into row-major values.
func flattenOIP(data []json.RawMessage) []json.RawMessage {
	var out []json.RawMessage
	for _, d := range data {
		t := bytes.TrimSpace(d)
		if len(t) > 0 && t[0] == '[' {
			var inner []json.RawMessage
			if json.Unmarshal(t, &inner) == nil {
				out = append(out, flattenOIP(inner)...)
				continue
			}
		}
		out = append(out, d)
	}
	return out
}

// compactJSON returns the JSON value v without insignificant space.
func compactJSON(v json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	return b.String()
}
