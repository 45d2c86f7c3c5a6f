package router

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/payloadlog"
	"github.com/mloop/mloop/internal/serving/protocol"
)

// maxCapture bounds how much of a process's answer is kept for the shadow
// comparison and the payload log.
const maxCapture = 8 << 20

// captureWriter passes a proxied answer through, names the revision that
// answered in its headers, and keeps its status (and, when asked, its
// body).
type captureWriter struct {
	http.ResponseWriter
	rev     *revision
	id      string
	status  int
	capture bool
	buf     bytes.Buffer
}

func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
		h := c.ResponseWriter.Header()
		h[hdrRevision] = c.rev.revHeader
		h[hdrModelVersion] = c.rev.mvHeader
		h[hdrRequestID] = []string{c.id}
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if c.capture && c.buf.Len()+len(b) <= maxCapture {
		c.buf.Write(b)
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (the reverse proxy's flushes) reach
// the underlying writer.
func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// proxyInfer answers a request with a process revision: OIP requests go to
// /v2/models/NAME/infer of the process, KServe V1 and MLflow bodies to the
// path the client used.
func (r *Router) proxyInfer(w http.ResponseWriter, req *http.Request, p proto, d *deployment, t *table, e *entry, body []byte, start time.Time) {
	rev := e.rev
	var id string
	var batch serving.Batch
	path := t.inferPath
	switch p {
	case protoOIP:
		// The inputs, for the payload log; the process judges the body.
		if oreq, b, err := protocol.DecodeOIPTensors(body, t.maxRows); err == nil {
			id, batch = oreq.ID, b
		} else if oreq != nil {
			id = oreq.ID
		}
	case protoV1:
		path = "/v1/models/" + d.name + ":predict"
	default:
		path = "/invocations"
	}
	id = r.requestID(id, req)
	logged := r.cfg.Payloads != nil && payloadlog.Keep(id, t.sample)
	shadow := e.role == deploy.RolePrimary && t.shadow != nil && p == protoOIP
	cw := &captureWriter{ResponseWriter: w, rev: rev, id: id, capture: logged || shadow}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = nil
	rev.proc.Proxy(cw, req, path)
	status := cw.status
	if status == 0 {
		status = http.StatusOK
	}
	if req.Context().Err() != nil && status >= 500 {
		status = statusClientClosed
	}
	var out []float32
	var perRow int
	var errMsg string
	if status == http.StatusOK && p == protoOIP && cw.capture {
		if vals, n, err := DecodeOIPOutputs(cw.buf.Bytes()); err == nil {
			out, perRow = vals, n
		}
	} else if status != http.StatusOK && cw.capture {
		errMsg = errorMessage(cw.buf.Bytes())
	}
	var shadowBody []byte
	if shadow && status == http.StatusOK {
		shadowBody = body
	}
	if !logged {
		batch = serving.Batch{}
	}
	r.finishProxied(d, t, e, start, id, status, batch, out, perRow, errMsg, shadowBody, cw.buf.Bytes(), logged)
}

// finishProxied records a proxied request like finish. The primary's
// outputs for the shadow are read from its answer by the shadow worker.
func (r *Router) finishProxied(d *deployment, t *table, e *entry, start time.Time, id string, status int,
	batch serving.Batch, out []float32, perRow int, errMsg string, shadowBody, answer []byte, logged bool) {
	now := time.Now()
	latency := now.Sub(start)
	e.rev.window.Observe(now, latency, status >= 500 && status != statusClientClosed)
	if e.m != nil {
		e.m.observe(status, latency)
	}
	if shadowBody != nil && d.shadowFull() {
		d.dropShadow(r)
	} else if shadowBody != nil {
		d.enqueueShadow(r, shadowJob{
			proto: protoOIP, id: id, start: start,
			body:   bytes.Clone(shadowBody),
			answer: bytes.Clone(answer),
		})
	}
	if logged {
		if out == nil {
			perRow = 0
		}
		r.cfg.Payloads.Log(payloadlog.Record{
			Time: start, RequestID: id, Deployment: d.name, Revision: e.rev.revStr,
			ModelVersion: e.rev.modelVersion, LatencyMicros: latency.Microseconds(), Status: status,
			Inputs: batch, Outputs: out, OutputsPerRow: perRow, Error: errMsg,
		})
	}
}

// errorMessage returns the "error" (or MLflow "message") of an error
// answer, else its first bytes.
func errorMessage(b []byte) string {
	var v struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &v) == nil {
		if v.Error != "" {
			return v.Error
		}
		if v.Message != "" {
			return v.Message
		}
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return string(bytes.TrimSpace(b))
}
