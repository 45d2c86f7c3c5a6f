package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
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
// answered in its headers, and keeps its final status (and, when asked,
// the beginning of its body: up to maxCapture bytes, contiguous).
type captureWriter struct {
	http.ResponseWriter
	rev     *revision
	id      string
	status  int
	capture bool
	// truncated is set when the body went beyond maxCapture: buf holds
	// only its beginning.
	truncated bool
	buf       bytes.Buffer
}

func (c *captureWriter) WriteHeader(status int) {
	if status >= 100 && status < 200 {
		// An informational answer (103 Early Hints): passed on, not the
		// status of the answer.
		c.ResponseWriter.WriteHeader(status)
		return
	}
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
	if c.capture && !c.truncated {
		if c.buf.Len()+len(b) <= maxCapture {
			c.buf.Write(b)
		} else {
			c.truncated = true
		}
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (the reverse proxy's flushes) reach
// the underlying writer.
func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// sharedBody is a request body in a pooled buffer that several holders
// read: the handler, the transport of a proxied request (through a
// bodyReader, which it may read and close after the handler returned:
// golang/go#51907) and a shadow copy. The buffer goes back to the pool
// when the last holder releases it.
type sharedBody struct {
	bp   *[]byte
	refs atomic.Int32
}

// newSharedBody returns bp shared by refs holders.
func newSharedBody(bp *[]byte, refs int32) *sharedBody {
	b := &sharedBody{bp: bp}
	b.refs.Store(refs)
	return b
}

// bytes returns the body; valid until the caller releases it.
func (b *sharedBody) bytes() []byte { return *b.bp }

// release drops one holder's use of the body.
func (b *sharedBody) release() {
	if b.refs.Add(-1) == 0 {
		putBuf(b.bp)
	}
}

// reader returns a request body reading b, which holds one use of b until
// it is closed.
func (b *sharedBody) reader() *bodyReader {
	b.refs.Add(1)
	return &bodyReader{b: b}
}

// errBodyClosed is what a bodyReader's Read returns after Close.
var errBodyClosed = errors.New("read on a closed request body")

// bodyReader reads a sharedBody as the body of an outgoing request. Read
// and Close exclude each other, so that once Close has returned no Read
// touches the buffer, which may then go back to the pool.
type bodyReader struct {
	mu     sync.Mutex
	b      *sharedBody
	off    int
	closed bool
}

func (r *bodyReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, errBodyClosed
	}
	buf := r.b.bytes()
	if r.off >= len(buf) {
		return 0, io.EOF
	}
	n := copy(p, buf[r.off:])
	r.off += n
	return n, nil
}

func (r *bodyReader) Close() error {
	r.mu.Lock()
	was := r.closed
	r.closed = true
	r.mu.Unlock()
	if !was {
		r.b.release()
	}
	return nil
}

// setBody makes b the body of req, an outgoing request, and returns its
// reader (nil for an empty body), which the caller closes once the
// request is done: a transport that still reads it then gets an error
// instead of a buffer that may have gone back to the pool.
func setBody(req *http.Request, b *sharedBody) *bodyReader {
	req.GetBody = nil
	req.ContentLength = int64(len(b.bytes()))
	if req.ContentLength == 0 {
		req.Body = http.NoBody
		return nil
	}
	rd := b.reader()
	req.Body = rd
	return rd
}

// proxyInfer answers a request with a process revision: OIP requests go to
// /v2/models/NAME/infer of the process, KServe V1 and MLflow bodies to the
// path the client used. It takes bp over.
func (r *Router) proxyInfer(w http.ResponseWriter, req *http.Request, p proto, d *deployment, t *table, e *entry, bp *[]byte, start time.Time) {
	rev := e.rev
	body := newSharedBody(bp, 1)
	defer body.release()
	var rawID string
	path := t.inferPath
	switch p {
	case protoOIP:
		rawID = protocol.OIPRequestID(body.bytes())
	case protoV1:
		path = "/v1/models/" + d.name + ":predict"
	default:
		path = "/invocations"
	}
	id := r.requestID(rawID, req)
	logged := r.cfg.Payloads != nil && payloadlog.Keep(id, t.sample)
	monitored := r.cfg.Monitor != nil && e.role != deploy.RoleShadow && p == protoOIP
	var batch serving.Batch
	if (logged || monitored) && p == protoOIP {
		// The inputs, for the payload log; the process judges the body.
		if _, b, err := protocol.DecodeOIPTensors(body.bytes(), t.maxRows); err == nil {
			batch = b
		}
	}
	shadow := e.role == deploy.RolePrimary && t.shadow != nil && p == protoOIP
	cw := &captureWriter{ResponseWriter: w, rev: rev, id: id, capture: logged || shadow || monitored}
	if rd := setBody(req, body); rd != nil {
		defer rd.Close()
	}
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
	if status == http.StatusOK && p == protoOIP && (logged || monitored) && !cw.truncated {
		if vals, n, err := DecodeOIPOutputs(cw.buf.Bytes()); err == nil {
			out, perRow = vals, n
		}
	} else if status != http.StatusOK && cw.capture {
		errMsg = errorMessage(cw.buf.Bytes())
	}
	// The shadow compares with the primary's whole answer only.
	var answer []byte
	if shadow && status == http.StatusOK && !cw.truncated {
		answer = cw.buf.Bytes()
	}
	r.finishProxied(d, t, e, start, id, status, batch, out, perRow, errMsg, body, answer, logged)
}

// finishProxied records a proxied request like finish. The payload log
// gets batch and out only when logged says it keeps the request. With an answer,
// a shadow copy takes a use of body and the answer (which the shadow
// worker reads the primary's outputs from).
func (r *Router) finishProxied(d *deployment, t *table, e *entry, start time.Time, id string, status int,
	batch serving.Batch, out []float32, perRow int, errMsg string, body *sharedBody, answer []byte, logged bool) {
	now := time.Now()
	latency := now.Sub(start)
	// The monitor first, as in finish.
	if r.cfg.Monitor != nil {
		var features []serving.Feature
		if batch.Rows > 0 {
			features = e.rev.procFeatures(batch.Cols)
		} else if e.rev.info != nil && len(e.rev.info.Features) > 0 {
			features = e.rev.info.Features
		} else if f := e.rev.monFeatures.Load(); f != nil {
			features = *f
		}
		r.observe(d, e, now, latency, id, status, features, batch, out, perRow)
	}
	e.rev.window.Observe(now, latency, status >= 500 && status != statusClientClosed)
	if e.m != nil {
		e.m.observe(status, latency)
	}
	if answer != nil {
		size := int64(cap(*body.bp)) + int64(cap(answer))
		if d.shadowFull() || !d.reserveShadow(r, size) {
			d.dropShadow(r)
		} else {
			body.refs.Add(1)
			if !d.enqueueShadow(r, shadowJob{proto: protoOIP, id: id, start: start, size: size, body: body, answer: answer}) {
				body.release()
			}
		}
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
