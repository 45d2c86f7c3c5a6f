package router

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/mloop/mloop/internal/serving/protocol"
)

// serverMetadata answers GET /v2.
func (r *Router) serverMetadata(w http.ResponseWriter, req *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"name": "mloop", "version": r.cfg.Version, "extensions": []string{}})
}

// live answers GET /v2/health/live.
func (r *Router) live(w http.ResponseWriter, req *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"live": true})
}

// readyAll answers GET /v2/health/ready: 200 once the first Sync has
// returned (every deployment loaded or failed to) and until Close, else
// 503. It is the replica's readiness, for a load balancer: a deployment
// that is loading or failed does not make the replica unready, since the
// others are served; each deployment's own readiness is
// /v2/models/NAME/ready.
func (r *Router) readyAll(w http.ResponseWriter, req *http.Request) {
	ready := r.synced.Load() && !r.closed.Load()
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]bool{"ready": ready})
}

// find returns the table and entry a metadata or ready request is about,
// or answers the error itself and returns nil.
func (r *Router) find(w http.ResponseWriter, req *http.Request, p proto, name, version string) (*table, *entry) {
	if r.closed.Load() {
		writeClosed(w, p)
		return nil, nil
	}
	d := r.lookup(name)
	if d == nil {
		if r.closed.Load() {
			writeClosed(w, p)
			return nil, nil
		}
		writeError(w, p, http.StatusNotFound, errNotDeployed(name))
		return nil, nil
	}
	t := d.table.Load()
	switch {
	case t.deleted && r.closed.Load():
		writeClosed(w, p)
		return nil, nil
	case t.deleted:
		writeError(w, p, http.StatusNotFound, errNotDeployed(name))
		return nil, nil
	case t.primary == nil && t.loadErr != "":
		w.Header()["Retry-After"] = retryAfter
		writeError(w, p, http.StatusServiceUnavailable, "deployment "+strconv.Quote(name)+" is unavailable: "+t.loadErr)
		return nil, nil
	case t.primary == nil:
		w.Header()["Retry-After"] = retryAfter
		writeError(w, p, http.StatusServiceUnavailable, "deployment "+strconv.Quote(name)+" is loading; retry shortly")
		return nil, nil
	}
	pin := ""
	if v := req.Header[hdrRevision]; len(v) > 0 {
		pin = strings.ToLower(strings.TrimSpace(v[0]))
	}
	e, status, msg := t.pick(version, pin, false)
	if e == nil {
		writeError(w, p, status, msg)
		return nil, nil
	}
	return t, e
}

// tensorMeta describes an input or output tensor in OIP model metadata.
type tensorMeta struct {
	Name     string `json:"name"`
	Datatype string `json:"datatype"`
	Shape    []int  `json:"shape"`
}

// modelMeta is the OIP model metadata response.
type modelMeta struct {
	Name       string         `json:"name"`
	Versions   []string       `json:"versions"`
	Platform   string         `json:"platform"`
	Inputs     []tensorMeta   `json:"inputs"`
	Outputs    []tensorMeta   `json:"outputs"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// modelMetadata answers GET /v2/models/{name}[/versions/{version}]: the
// OIP metadata of the revision a request would reach (the primary, the
// pinned revision, or the slot serving the version). Native models list
// one FP32 input of shape [-1] per feature (a single [-1, features] input
// is accepted too) and the output "predict"; process models answer for
// themselves.
func (r *Router) modelMetadata(w http.ResponseWriter, req *http.Request) {
	name, version := req.PathValue("name"), req.PathValue("version")
	t, e := r.find(w, req, protoOIP, name, version)
	if e == nil {
		return
	}
	rev := e.rev
	if rev.proc != nil {
		setRevisionHeaders(w, rev)
		if !rev.acquire() {
			writeError(w, protoOIP, http.StatusServiceUnavailable, "deployment "+strconv.Quote(name)+" is switching revisions; retry shortly")
			return
		}
		defer rev.release()
		rev.proc.Proxy(w, req, "/v2/models/"+name)
		return
	}
	var versions []string
	for _, x := range t.entries {
		v := x.rev.versionStr()
		dup := false
		for _, s := range versions {
			dup = dup || s == v
		}
		if !dup {
			versions = append(versions, v)
		}
	}
	m := modelMeta{
		Name:     name,
		Versions: versions,
		Platform: rev.flavor,
		Parameters: map[string]any{
			"revision":      rev.key.revision,
			"role":          e.role,
			"model_version": rev.modelVersion,
			"objective":     rev.objective,
		},
	}
	for _, f := range rev.features {
		m.Inputs = append(m.Inputs, tensorMeta{Name: f.Name, Datatype: "FP32", Shape: []int{-1}})
	}
	out := tensorMeta{Name: protocol.OutputName, Datatype: "FP32", Shape: []int{-1}}
	if rev.outputs > 1 {
		out.Shape = []int{-1, rev.outputs}
	}
	m.Outputs = []tensorMeta{out}
	setRevisionHeaders(w, rev)
	writeJSON(w, http.StatusOK, m)
}

// modelReady answers GET /v2/models/{name}[/versions/{version}]/ready.
func (r *Router) modelReady(w http.ResponseWriter, req *http.Request) {
	name, version := req.PathValue("name"), req.PathValue("version")
	_, e := r.find(w, req, protoOIP, name, version)
	if e == nil {
		return
	}
	setRevisionHeaders(w, e.rev)
	ready := e.rev.ready()
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"name": name, "ready": ready})
}

// statusV1 answers KServe V1's GET /v1/models/{name}.
func (r *Router) statusV1(w http.ResponseWriter, req *http.Request) {
	name := req.PathValue("name")
	_, e := r.find(w, req, protoV1, name, "")
	if e == nil {
		return
	}
	setRevisionHeaders(w, e.rev)
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "ready": e.rev.ready()})
}

// setRevisionHeaders names the revision that answers.
func setRevisionHeaders(w http.ResponseWriter, rev *revision) {
	h := w.Header()
	h[hdrRevision] = rev.revHeader
	h[hdrModelVersion] = rev.mvHeader
}
