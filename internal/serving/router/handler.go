package router

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/payloadlog"
	"github.com/mloop/mloop/internal/serving/protocol"
)

// proto is the protocol of an inference request.
type proto uint8

const (
	protoOIP proto = iota
	protoV1
	protoMLflow
)

// Header names, canonical, for direct map access.
const (
	hdrContentType  = "Content-Type"
	hdrRequestID    = "X-Request-Id"
	hdrRevision     = deploy.RevisionHeader
	hdrModelVersion = deploy.ModelVersionHeader
	maxRequestID    = 128
)

// jsonType is the Content-Type header value of every answer; it is shared
// and never modified.
var jsonType = []string{"application/json"}

// Handler serves /v2/…, /v1/models/… and /serving-endpoints/{name}/invocations.
func (r *Router) Handler() http.Handler { return r.mux }

// routes returns the data plane's route table.
func (r *Router) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2", r.serverMetadata)
	mux.HandleFunc("GET /v2/health/live", r.live)
	mux.HandleFunc("GET /v2/health/ready", r.readyAll)
	mux.HandleFunc("GET /v2/models/{name}", r.modelMetadata)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}", r.modelMetadata)
	mux.HandleFunc("GET /v2/models/{name}/ready", r.modelReady)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}/ready", r.modelReady)
	mux.HandleFunc("POST /v2/models/{name}/infer", r.inferOIP)
	mux.HandleFunc("POST /v2/models/{name}/versions/{version}/infer", r.inferOIP)
	mux.HandleFunc("POST /v1/models/{name}", r.predictV1)
	mux.HandleFunc("GET /v1/models/{name}", r.statusV1)
	mux.HandleFunc("POST /serving-endpoints/{name}/invocations", r.invocations)
	return mux
}

func (r *Router) inferOIP(w http.ResponseWriter, req *http.Request) {
	r.infer(w, req, protoOIP, req.PathValue("name"), req.PathValue("version"))
}

func (r *Router) predictV1(w http.ResponseWriter, req *http.Request) {
	name, ok := strings.CutSuffix(req.PathValue("name"), ":predict")
	if !ok {
		writeError(w, protoV1, http.StatusNotFound, "unknown KServe V1 verb: use POST /v1/models/NAME:predict")
		return
	}
	r.infer(w, req, protoV1, name, "")
}

func (r *Router) invocations(w http.ResponseWriter, req *http.Request) {
	r.infer(w, req, protoMLflow, req.PathValue("name"), "")
}

// bufPool holds request body buffers.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

// maxPooledBuf is the largest buffer kept in bufPool.
const maxPooledBuf = 1 << 20

func putBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledBuf {
		*bp = (*bp)[:0]
		bufPool.Put(bp)
	}
}

// readBody reads req's body into a pooled buffer, at most MaxBodyBytes.
func (r *Router) readBody(req *http.Request) (*[]byte, int, string) {
	limit := r.cfg.MaxBodyBytes
	if req.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, tooLarge(limit)
	}
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	if n := req.ContentLength; n >= 0 && int64(cap(b)) < n+1 {
		b = make([]byte, 0, n+1) // +1: the read that returns EOF needs room
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := req.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			*bp = b
			putBuf(bp)
			return nil, http.StatusRequestEntityTooLarge, tooLarge(limit)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			*bp = b
			putBuf(bp)
			return nil, http.StatusBadRequest, "read the request body: " + err.Error()
		}
	}
	*bp = b
	return bp, 0, ""
}

func tooLarge(limit int64) string {
	return "the request body is larger than " + strconv.FormatInt(limit, 10) + " bytes; send smaller batches"
}

// infer answers one inference request.
func (r *Router) infer(w http.ResponseWriter, req *http.Request, p proto, name, version string) {
	start := time.Now()
	if r.closed.Load() {
		writeClosed(w, p)
		return
	}
	d := r.lookup(name)
	if d == nil {
		if r.closed.Load() {
			writeClosed(w, p)
			return
		}
		writeError(w, p, http.StatusNotFound, errNotDeployed(name))
		return
	}
	bp, status, msg := r.readBody(req)
	if bp == nil {
		writeError(w, p, status, msg)
		return
	}
	if !r.serve(w, req, p, d, version, bp, start) {
		putBuf(bp)
	}
}

// serve answers an inference request whose body was read into bp, and
// reports whether it handed bp on (to a shadow copy, or to the body of a
// proxied request); otherwise the caller returns bp to the pool.
func (r *Router) serve(w http.ResponseWriter, req *http.Request, p proto, d *deployment, version string, bp *[]byte, start time.Time) bool {
	pin := ""
	if v := req.Header[hdrRevision]; len(v) > 0 {
		pin = strings.ToLower(strings.TrimSpace(v[0]))
	}
	var t *table
	var e *entry
	for attempt := 0; ; attempt++ {
		t = d.table.Load()
		if t.deleted {
			if r.closed.Load() {
				writeClosed(w, p)
				return false
			}
			writeError(w, p, http.StatusNotFound, errNotDeployed(d.name))
			return false
		}
		if t.primary == nil {
			w.Header()["Retry-After"] = retryAfter
			if t.loadErr != "" {
				writeError(w, p, http.StatusServiceUnavailable, "deployment "+strconv.Quote(d.name)+" is unavailable: "+t.loadErr)
			} else {
				writeError(w, p, http.StatusServiceUnavailable, "deployment "+strconv.Quote(d.name)+" is loading; retry shortly")
			}
			return false
		}
		var status int
		var msg string
		if e, status, msg = t.pick(version, pin, true); e == nil {
			writeError(w, p, status, msg)
			return false
		}
		if e.rev.acquire() {
			break
		}
		// The revision is being drained: the table has changed.
		if attempt == 3 {
			w.Header()["Retry-After"] = retryAfter
			writeError(w, p, http.StatusServiceUnavailable, "deployment "+strconv.Quote(d.name)+" is switching revisions; retry shortly")
			return false
		}
	}
	defer e.rev.release()
	if e.rev.proc != nil {
		r.proxyInfer(w, req, p, d, t, e, bp, start)
		return true
	}
	return r.predict(w, req, p, d, t, e, bp, start)
}

var retryAfter = []string{"1"}

// writeClosed answers a request that came while the router closes.
func writeClosed(w http.ResponseWriter, p proto) {
	w.Header()["Retry-After"] = retryAfter
	writeError(w, p, http.StatusServiceUnavailable, "the server is shutting down; retry on another replica")
}

// predict answers a request with a native runtime, and reports whether it
// handed bp on to a shadow copy.
func (r *Router) predict(w http.ResponseWriter, req *http.Request, p proto, d *deployment, t *table, e *entry, bp *[]byte, start time.Time) bool {
	rev := e.rev
	body := *bp
	var (
		rawID string
		batch serving.Batch
		err   error
	)
	switch p {
	case protoOIP:
		var oreq *protocol.OIPRequest
		oreq, batch, err = protocol.DecodeOIP(body, rev.features, t.maxRows)
		if oreq != nil {
			rawID = oreq.ID
			if err == nil {
				err = checkOutputs(oreq.Outputs)
			}
		}
	case protoV1:
		batch, err = protocol.DecodeKServeV1(body, rev.features, t.maxRows)
	default:
		batch, err = protocol.DecodeMLflow(body, rev.features, t.maxRows)
	}
	id := r.requestID(rawID, req)
	h := w.Header()
	h[hdrRevision] = rev.revHeader
	h[hdrModelVersion] = rev.mvHeader
	h[hdrRequestID] = []string{id}
	if err != nil {
		status := http.StatusBadRequest
		if mloop.ErrorCode(err) == mloop.ETOOLARGE {
			status = http.StatusRequestEntityTooLarge
		}
		msg := mloop.ErrorMessage(err)
		writeError(w, p, status, msg)
		r.finish(d, t, e, start, id, status, serving.Batch{}, nil, msg, nil, p)
		return false
	}
	out := make([]float32, batch.Rows*rev.outputs)
	if err := rev.model.Predict(req.Context(), batch, out); err != nil {
		status, msg := http.StatusInternalServerError, "model "+rev.modelVersion+" failed to predict: "+mloop.ErrorMessage(err)
		switch {
		case req.Context().Err() != nil:
			status, msg = statusClientClosed, "the client went away"
		case mloop.ErrorCode(err) == mloop.EUNAVAILABLE:
			status = http.StatusServiceUnavailable
		case mloop.ErrorCode(err) == mloop.EINVALID:
			status = http.StatusBadRequest
		}
		if status >= 500 {
			r.log.Warn("predict", "deployment", d.name, "revision", rev.key.revision, "err", err)
		}
		writeError(w, p, status, msg)
		r.finish(d, t, e, start, id, status, batch, nil, msg, nil, p)
		return false
	}
	h[hdrContentType] = jsonType
	switch p {
	case protoOIP:
		// The answer echoes the request's own id, whole; the headers and
		// records carry it cut to maxRequestID.
		echo := id
		if rawID != "" {
			echo = rawID
		}
		rp := bufPool.Get().(*[]byte)
		*rp = protocol.AppendOIP((*rp)[:0], t.name, rev.versionStr(), echo, rev.outputs, out, batch.Rows)
		w.Write(*rp)
		putBuf(rp)
	case protoV1:
		w.Write(protocol.EncodeKServeV1(out, batch.Rows, rev.outputs))
	default:
		w.Write(protocol.EncodeMLflow(out, batch.Rows, rev.outputs))
	}
	// A process shadow takes OIP bodies only: the others' answers could
	// not be compared.
	var shadowBody *[]byte
	if e.role == deploy.RolePrimary && t.shadow != nil && (p == protoOIP || t.shadow.rev.proc == nil) {
		shadowBody = bp
	}
	return r.finish(d, t, e, start, id, http.StatusOK, batch, out, "", shadowBody, p)
}

// statusClientClosed is recorded (never sent) for a request whose client
// went away before the answer: nginx's 499.
const statusClientClosed = 499

// checkOutputs rejects requested outputs other than the one a native model
// has.
func checkOutputs(names []string) error {
	for _, n := range names {
		if n != protocol.OutputName {
			return mloop.Errorf(mloop.EINVALID, "output %s does not exist; the model has one output, %q", strconv.Quote(n), protocol.OutputName)
		}
	}
	return nil
}

// finish records an answered request: its revision's window, metrics, the
// monitor, the shadow copy (shadowBody is set for a primary's successful
// answer when the deployment has a shadow that takes it) and the payload
// log. Log
// takes ownership of batch.Values and out; the shadow copy takes out when
// Log does not, and shadowBody (finish reports whether it did).
func (r *Router) finish(d *deployment, t *table, e *entry, start time.Time, id string, status int,
	batch serving.Batch, out []float32, errMsg string, shadowBody *[]byte, p proto) bool {
	now := time.Now()
	latency := now.Sub(start)
	failed := status >= 500 && status != statusClientClosed
	// The monitor first: the window below may trip a canary at once, and
	// the answer should not be held up by more work after that.
	r.observe(d, e, now, latency, id, status, e.rev.features, batch, out, e.rev.outputs)
	e.rev.window.Observe(now, latency, failed)
	if e.m != nil {
		e.m.observe(status, latency)
	}
	logged := r.cfg.Payloads != nil && payloadlog.Keep(id, t.sample)
	kept := false
	if shadowBody != nil {
		size := int64(cap(*shadowBody)) + 4*int64(len(out))
		if d.shadowFull() || !d.reserveShadow(r, size) {
			d.dropShadow(r)
		} else {
			o := out
			if logged {
				o = slices.Clone(out)
			}
			kept = d.enqueueShadow(r, shadowJob{
				proto: p, id: id, start: start, size: size,
				body: newSharedBody(shadowBody, 1),
				out:  o, perRow: e.rev.outputs,
				objective: e.rev.objective,
			})
		}
	}
	if logged {
		perRow := e.rev.outputs
		if out == nil {
			perRow = 0
		}
		r.cfg.Payloads.Log(payloadlog.Record{
			Time: start, RequestID: id, Deployment: d.name, Revision: e.rev.revStr,
			ModelVersion: e.rev.modelVersion, LatencyMicros: latency.Microseconds(), Status: status,
			Inputs: batch, Outputs: out, OutputsPerRow: perRow, Error: errMsg,
		})
	}
	return kept
}

// requestID returns the request's id: the protocol's, else the
// X-Request-Id header's, else a generated one; at most maxRequestID bytes.
func (r *Router) requestID(id string, req *http.Request) string {
	if id != "" {
		return cutID(id)
	}
	if v := req.Header[hdrRequestID]; len(v) > 0 && v[0] != "" {
		return cutID(v[0])
	}
	return r.ids.next()
}

// cutID cuts a client's id to maxRequestID bytes, on a character
// boundary.
func cutID(id string) string {
	if len(id) <= maxRequestID {
		return id
	}
	i := maxRequestID
	for i > 0 && !utf8.RuneStart(id[i]) {
		i--
	}
	return id[:i]
}

// idSource generates request ids: a random prefix per router and a
// counter.
type idSource struct {
	prefix [12]byte
	n      atomic.Uint64
}

func (s *idSource) init() {
	var b [6]byte
	rand.Read(b[:])
	hex.Encode(s.prefix[:], b[:])
}

func (s *idSource) next() string {
	var b [32]byte
	buf := append(b[:0], s.prefix[:]...)
	buf = append(buf, '-')
	buf = strconv.AppendUint(buf, s.n.Add(1), 36)
	return string(buf)
}

// writeError answers an error in the protocol's form: {"error": msg}, or
// MLflow's {"error_code": …, "message": msg}.
func writeError(w http.ResponseWriter, p proto, status int, msg string) {
	var body []byte
	if p == protoMLflow {
		body, _ = json.Marshal(struct {
			Code    string `json:"error_code"`
			Message string `json:"message"`
		}{mlflowCode(status), msg})
	} else {
		body, _ = json.Marshal(struct {
			Error string `json:"error"`
		}{msg})
	}
	if status == statusClientClosed {
		return
	}
	w.Header()[hdrContentType] = jsonType
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// mlflowCode returns MLflow's error_code for an HTTP status.
func mlflowCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "BAD_REQUEST"
	case http.StatusNotFound:
		return "RESOURCE_DOES_NOT_EXIST"
	case http.StatusRequestEntityTooLarge:
		return "RESOURCE_LIMIT_EXCEEDED"
	case http.StatusServiceUnavailable:
		return "TEMPORARILY_UNAVAILABLE"
	}
	return "INTERNAL_ERROR"
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, protoOIP, http.StatusInternalServerError, "Internal error.")
		return
	}
	w.Header()[hdrContentType] = jsonType
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
