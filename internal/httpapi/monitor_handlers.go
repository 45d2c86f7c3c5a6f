package httpapi

// Handlers of mloop's /api/v1 for monitoring (docs/monitoring.md): the
// saved windows of a deployment, its open window, the live quality of its
// model versions, and ground-truth feedback joined with the predictions by
// request id. The work lives in internal/monitor.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/monitor"
)

// MaxFeedbackLabels is the most labels one POST /api/v1/feedback takes.
const MaxFeedbackLabels = 100_000

// monitor returns the monitor, or a NOT_IMPLEMENTED error when the server
// runs without one.
func (s *Server) monitor() (*monitor.Monitor, error) {
	if s.Monitor == nil {
		return nil, mloop.Errorf(mloop.ENOTIMPLEMENTED,
			"This server does not monitor deployments: start it with --monitor (and --serving), or ask the server that serves them.")
	}
	return s.Monitor, nil
}

// timeParam reads an optional time query parameter: an RFC 3339 time, or
// a duration meaning that long before now ("24h").
func timeParam(q map[string][]string, name string, now time.Time) (time.Time, error) {
	vs := q[name]
	if len(vs) == 0 || vs[0] == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, vs[0]); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(vs[0]); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, mloop.Errorf(mloop.EINVALID,
		"Invalid value %q for parameter '%s': want an RFC 3339 time (2026-01-02T15:04:05Z) or a duration before now (24h).", vs[0], name)
}

// boolParam reads an optional boolean query parameter (false when absent).
func boolParam(q map[string][]string, name string) (bool, error) {
	vs := q[name]
	if len(vs) == 0 || vs[0] == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(vs[0])
	if err != nil {
		return false, mloop.Errorf(mloop.EINVALID, "Invalid value %q for parameter '%s': want true or false.", vs[0], name)
	}
	return b, nil
}

// monitoringWindows lists a deployment's saved windows, newest first:
// ?since=&until= (RFC 3339, or a duration before now), model_version=,
// limit=, profiles=true.
func (s *Server) monitoringWindows(w http.ResponseWriter, r *http.Request) error {
	m, err := s.monitor()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	now := time.Now()
	var f monitor.WindowFilter
	if f.Since, err = timeParam(q, "since", now); err != nil {
		return err
	}
	if f.Until, err = timeParam(q, "until", now); err != nil {
		return err
	}
	if f.Limit, err = limitParam(r); err != nil {
		return err
	}
	if f.WithProfiles, err = boolParam(q, "profiles"); err != nil {
		return err
	}
	f.ModelVersion = q.Get("model_version")
	ws, err := m.Windows(r.Context(), r.PathValue("deployment"), f)
	if err != nil {
		return err
	}
	writeList(w, "windows", ws)
	return nil
}

// monitoringCurrent answers the deployment's open window, one summary per
// model version (none when no window is open).
func (s *Server) monitoringCurrent(w http.ResponseWriter, r *http.Request) error {
	m, err := s.monitor()
	if err != nil {
		return err
	}
	ws, err := m.CurrentWindow(r.Context(), r.PathValue("deployment"))
	if err != nil {
		return err
	}
	writeList(w, "windows", ws)
	return nil
}

// ModelVersionQuality is one model version's live quality since the
// monitor started, in GET /api/v1/monitoring/{deployment}/quality.
type ModelVersionQuality struct {
	ModelVersion string `json:"model_version"`
	// Quality is nil when no label joined a prediction of it yet.
	Quality *monitor.Quality `json:"quality"`
}

// qualityScanWindows bounds the saved windows read to find the model
// versions a deployment served.
const qualityScanWindows = 500

// monitoringQuality answers the live quality of each model version the
// deployment served: those of its open window, of its newest saved
// windows and of its current slots.
func (s *Server) monitoringQuality(w http.ResponseWriter, r *http.Request) error {
	m, err := s.monitor()
	if err != nil {
		return err
	}
	name := r.PathValue("deployment")
	var mvs []string
	add := func(mv string) {
		if mv != "" && !slices.Contains(mvs, mv) {
			mvs = append(mvs, mv)
		}
	}
	cur, err := m.CurrentWindow(r.Context(), name)
	if err != nil {
		return err
	}
	for _, ws := range cur {
		add(ws.ModelVersion)
	}
	saved, err := m.Windows(r.Context(), name, monitor.WindowFilter{Limit: qualityScanWindows})
	if err != nil {
		return err
	}
	for _, ws := range saved {
		add(ws.ModelVersion)
	}
	if s.Deployments != nil {
		if d, err := s.Deployments.Get(r.Context(), name); err == nil {
			for _, sl := range d.Slots {
				add(sl.Model + "/" + strconv.FormatInt(sl.Version, 10))
			}
		}
	}
	slices.Sort(mvs)
	out := make([]ModelVersionQuality, len(mvs))
	for i, mv := range mvs {
		out[i] = ModelVersionQuality{ModelVersion: mv, Quality: m.ModelQuality(name, mv)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deployment": name, "model_versions": out})
	return nil
}

// FeedbackLabel is one label on the wire: {"request_id": "…", "label": 1,
// "time": "2026-01-02T15:04:05Z"}. The label is a number (class index, or
// target) or a boolean (class 1 or 0); time is optional.
type FeedbackLabel struct {
	RequestID string          `json:"request_id"`
	Label     json.RawMessage `json:"label"`
	Time      string          `json:"time,omitempty"`
}

// ParseFeedbackLabel turns a wire label into a monitor.Label, with an error
// that says what is wrong with it.
func ParseFeedbackLabel(l FeedbackLabel) (monitor.Label, error) {
	if l.RequestID == "" {
		return monitor.Label{}, fmt.Errorf("missing request_id: give the X-Request-Id of the answered request")
	}
	raw := bytes.TrimSpace(l.Label)
	var v float64
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
		return monitor.Label{}, fmt.Errorf("missing label: give the class index or the target value")
	case bytes.Equal(raw, []byte("true")):
		v = 1
	case bytes.Equal(raw, []byte("false")):
		v = 0
	default:
		if err := json.Unmarshal(raw, &v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return monitor.Label{}, fmt.Errorf("label %s is not a number: give the class index or the target value", raw)
		}
	}
	out := monitor.Label{RequestID: l.RequestID, Value: v}
	if l.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, l.Time)
		if err != nil {
			return monitor.Label{}, fmt.Errorf("time %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", l.Time)
		}
		out.Time = t
	}
	return out, nil
}

// feedbackRequest is the body of POST /api/v1/feedback: one label, or
// {"labels": [...]}.
type feedbackRequest struct {
	FeedbackLabel
	Labels *[]FeedbackLabel `json:"labels"`
}

// postFeedback joins labels with the predictions they label and answers
// the counts by outcome (monitor.FeedbackResult).
func (s *Server) postFeedback(w http.ResponseWriter, r *http.Request) error {
	m, err := s.monitor()
	if err != nil {
		return err
	}
	var req feedbackRequest
	if err := s.decodeJSON(r, &req, false); err != nil {
		return err
	}
	var labels []monitor.Label
	if req.Labels != nil {
		if len(*req.Labels) > MaxFeedbackLabels {
			return mloop.Errorf(mloop.ETOOLARGE, "The request has %d labels; send at most %d per request.", len(*req.Labels), MaxFeedbackLabels)
		}
		labels = make([]monitor.Label, len(*req.Labels))
		for i, l := range *req.Labels {
			if labels[i], err = ParseFeedbackLabel(l); err != nil {
				return mloop.Errorf(mloop.EINVALID, "labels[%d]: %v.", i, err)
			}
		}
	} else {
		l, err := ParseFeedbackLabel(req.FeedbackLabel)
		if err != nil {
			return mloop.Errorf(mloop.EINVALID, "The label: %v (or send {\"labels\": [...]}).", err)
		}
		labels = []monitor.Label{l}
	}
	res, err := m.Feedback(r.Context(), labels)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// ObservationsAnswer is the answer of POST /api/v1/monitoring/observations.
type ObservationsAnswer struct {
	// Accepted is the number of observations handed to the monitor.
	Accepted int `json:"accepted"`
}

// postObservations takes a batch of observations an `mloop serve` replica
// forwarded (monitor.Forwarder; the binary format monitor.DecodeObservations
// reads, at most monitor.MaxObservationsBody bytes) and has the monitor
// observe each as if this server's data plane had served it. Times move
// onto this server's clock (ObservationBatch.Rebase): a replica's clock
// skew cannot put observations in the future.
func (s *Server) postObservations(w http.ResponseWriter, r *http.Request) error {
	m, err := s.monitor()
	if err != nil {
		return err
	}
	body, err := readBody(r, monitor.MaxObservationsBody)
	if err != nil {
		return err
	}
	b, err := monitor.DecodeObservations(bytes.NewReader(body), monitor.MaxObservationsBody)
	if err != nil {
		return err
	}
	b.Rebase(time.Now())
	for _, o := range b.Observations {
		m.Observe(o)
	}
	writeJSON(w, http.StatusOK, ObservationsAnswer{Accepted: len(b.Observations)})
	return nil
}
