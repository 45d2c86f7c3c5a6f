package router

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/serving/payloadlog"
	"github.com/mloop/mloop/internal/serving/protocol"
)

// shadowTimeout bounds one shadow run.
const shadowTimeout = 30 * time.Second

// shadowJob is a copy of a request the primary answered, for the shadow.
type shadowJob struct {
	proto proto
	id    string
	start time.Time
	// body is the request body, of which the job holds one use.
	body *sharedBody
	// size is what the job counts against the deployment's
	// ShadowQueueBytes.
	size int64
	// The primary's outputs: out and perRow from a native primary, or its
	// OIP answer from a process primary.
	out       []float32
	perRow    int
	objective string
	answer    []byte
}

// startShadow starts d's shadow workers once.
func (d *deployment) startShadow(r *Router) {
	d.shadowOnce.Do(func() {
		for range r.cfg.ShadowWorkers {
			r.shadowWG.Add(1)
			go r.shadowWorker(d)
		}
	})
}

// shadowFull reports whether d's shadow queue is full, so that a copy
// would be dropped (the caller then skips making it).
func (d *deployment) shadowFull() bool { return len(d.shadowQ) == cap(d.shadowQ) }

// reserveShadow counts size bytes against d's ShadowQueueBytes, unless
// they would go over it: then it reports false and counts nothing.
func (d *deployment) reserveShadow(r *Router, size int64) bool {
	if d.shadowBytes.Add(size) > r.cfg.ShadowQueueBytes {
		d.shadowBytes.Add(-size)
		return false
	}
	return true
}

// enqueueShadow queues a copy (whose size is reserved) for the shadow, or
// drops and counts it when the queue is full. It never blocks, and
// reports whether the copy was queued (else its reservation is undone;
// the caller keeps its body).
func (d *deployment) enqueueShadow(r *Router, j shadowJob) bool {
	select {
	case d.shadowQ <- j:
		return true
	default:
		d.shadowBytes.Add(-j.size)
		d.dropShadow(r)
		return false
	}
}

// dropShadow counts a copy not sent to the shadow.
func (d *deployment) dropShadow(r *Router) {
	d.shadowDropped.Add(1)
	if d.droppedMetric != nil {
		d.droppedMetric.Inc()
	}
}

// shadowWorker runs d's queued copies until the deployment goes away.
func (r *Router) shadowWorker(d *deployment) {
	defer r.shadowWG.Done()
	for {
		select {
		case <-d.shadowCtx.Done():
			return
		case j := <-d.shadowQ:
			r.runShadow(d, j)
			j.body.release()
			d.shadowBytes.Add(-j.size)
		}
	}
}

// memWriter is an in-memory http.ResponseWriter for requests to a shadow
// process: it keeps the final status and up to maxCapture bytes of the
// body (truncated is set beyond).
type memWriter struct {
	header    http.Header
	status    int
	buf       bytes.Buffer
	truncated bool
}

func (m *memWriter) Header() http.Header { return m.header }
func (m *memWriter) WriteHeader(status int) {
	if m.status == 0 && (status < 100 || status >= 200) {
		m.status = status
	}
}
func (m *memWriter) Write(b []byte) (int, error) {
	if m.status == 0 {
		m.status = http.StatusOK
	}
	if !m.truncated {
		if m.buf.Len()+len(b) <= maxCapture {
			m.buf.Write(b)
		} else {
			m.truncated = true
		}
	}
	return len(b), nil
}
func (m *memWriter) Flush() {}

// runShadow runs one copy on d's current shadow and records the
// comparison with the primary's answer.
func (r *Router) runShadow(d *deployment, j shadowJob) {
	t := d.table.Load()
	if t.deleted || t.shadow == nil {
		return
	}
	e := t.shadow
	rev := e.rev
	if rev.proc != nil && j.proto != protoOIP {
		return // queued for a native shadow that a process one replaced
	}
	if !rev.acquire() {
		return
	}
	defer rev.release()
	ctx, cancel := context.WithTimeout(d.shadowCtx, shadowTimeout)
	defer cancel()

	start := time.Now()
	status := http.StatusOK
	var (
		batch  serving.Batch
		out    []float32
		perRow int
		err    error
		errMsg string
	)
	logged := r.cfg.Payloads != nil && payloadlog.Keep(j.id, t.sample)
	body := j.body.bytes()
	if rev.proc != nil {
		mw := &memWriter{header: make(http.Header)}
		req, rerr := http.NewRequestWithContext(ctx, http.MethodPost, t.inferPath, nil)
		if rerr != nil {
			return
		}
		rd := setBody(req, j.body)
		req.Header[hdrContentType] = jsonType
		req.Header[hdrRequestID] = []string{j.id}
		rev.proc.Proxy(mw, req, t.inferPath)
		if rd != nil {
			rd.Close()
		}
		status = mw.status
		if status == 0 {
			status = http.StatusOK
		}
		switch {
		case status == http.StatusOK && mw.truncated:
			status, errMsg = http.StatusBadGateway, "the shadow's answer is larger than "+strconv.Itoa(maxCapture)+" bytes; it cannot be compared"
		case status == http.StatusOK:
			out, perRow, err = DecodeOIPOutputs(mw.buf.Bytes())
			if err != nil {
				status, errMsg = http.StatusBadGateway, "the shadow's answer is not an inference response: "+mloop.ErrorMessage(err)
			}
		default:
			errMsg = errorMessage(mw.buf.Bytes())
		}
		if logged {
			if _, b, derr := protocol.DecodeOIPTensors(body, t.maxRows); derr == nil {
				batch = b
			}
		}
	} else {
		switch j.proto {
		case protoOIP:
			var oreq *protocol.OIPRequest
			oreq, batch, err = protocol.DecodeOIP(body, rev.features, t.maxRows)
			if err == nil {
				err = checkOutputs(oreq.Outputs)
			}
		case protoV1:
			batch, err = protocol.DecodeKServeV1(body, rev.features, t.maxRows)
		default:
			batch, err = protocol.DecodeMLflow(body, rev.features, t.maxRows)
		}
		if err != nil {
			status, errMsg = http.StatusBadRequest, mloop.ErrorMessage(err)
		} else {
			perRow = rev.outputs
			out = make([]float32, batch.Rows*perRow)
			if err = rev.model.Predict(ctx, batch, out); err != nil {
				status, errMsg, out = http.StatusInternalServerError, "model "+rev.modelVersion+" failed to predict: "+mloop.ErrorMessage(err), nil
			}
		}
	}
	now := time.Now()
	latency := now.Sub(start)
	failed := status >= 400 // the primary took this request: any refusal is the shadow's
	rev.window.Observe(now, latency, failed)

	// Compare with the primary.
	primary, primaryPerRow := j.out, j.perRow
	if j.answer != nil {
		var perr error
		if primary, primaryPerRow, perr = DecodeOIPOutputs(j.answer); perr != nil {
			primary = nil
		}
	}
	objective := j.objective
	if objective == "" {
		objective = rev.objective
	}
	var rows, agreed int
	var sumAbs float64
	compared := false
	if !failed && primary != nil && primaryPerRow == perRow && len(primary) == len(out) && perRow > 0 {
		rows, agreed, sumAbs = Agreement(objective, perRow, primary, out)
		compared = true
	} else if !failed {
		failed = true
		errMsg = "the shadow's outputs cannot be compared with the primary's (different shapes)"
	}
	rev.shadowMu.Lock()
	if compared {
		rev.compared += int64(rows)
		rev.agreed += int64(agreed)
		rev.sumAbsDiff += sumAbs
		rev.diffValues += int64(rows * perRow)
	}
	if failed {
		rev.shadowErrs++
	}
	rev.shadowMu.Unlock()
	if e.m != nil {
		e.m.observe(status, latency)
		e.m.observeShadow(latency, rows, agreed, failed)
	}
	if logged {
		if failed {
			out = nil
		}
		outPerRow := perRow
		if out == nil {
			outPerRow = 0
		}
		r.cfg.Payloads.Log(payloadlog.Record{
			Time: j.start, RequestID: j.id, Deployment: d.name, Revision: rev.revStr,
			ModelVersion: rev.modelVersion, LatencyMicros: latency.Microseconds(), Status: status,
			Inputs: batch, Outputs: out, OutputsPerRow: outPerRow, Error: errMsg,
		})
	}
}
