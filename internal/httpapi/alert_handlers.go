package httpapi

// Handlers of mloop's /api/v1 for alerting (docs/alerts.md): alert rules,
// written as JSON (one rule) or as a YAML rules document, and the alerts
// they recorded with their deliveries. Rules are always answered with
// their webhook secrets redacted. The work lives in internal/alert.

import (
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/alert"
)

// AlertDetail is one alert with its delivery attempts, oldest first, the
// answer of GET /api/v1/alerts/{id}.
type AlertDetail struct {
	Alert      *alert.Alert      `json:"alert"`
	Deliveries []*alert.Delivery `json:"deliveries"`
}

// alerts returns the alert engine, or a NOT_IMPLEMENTED error when the
// server runs without one.
func (s *Server) alerts() (*alert.Engine, error) {
	if s.Alerts == nil {
		return nil, mloop.Errorf(mloop.ENOTIMPLEMENTED,
			"This server does not evaluate alert rules: alerting runs with monitoring; start the server with --monitor (and --serving).")
	}
	return s.Alerts, nil
}

// readBody reads the whole request body, at most limit bytes.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, mloop.Errorf(mloop.ETOOLARGE, "Request body exceeds the limit of %d bytes.", limit)
		}
		return nil, mloop.Errorf(mloop.EBADREQUEST, "Could not read the request body: %v", err)
	}
	return body, nil
}

// isYAML reports whether a Content-Type names YAML.
func isYAML(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch mt {
	case "application/yaml", "text/yaml", "application/x-yaml", "text/x-yaml":
		return true
	}
	return false
}

// redactedRules returns the rules with their secrets redacted.
func redactedRules(rs []*alert.Rule) []*alert.Rule {
	out := make([]*alert.Rule, len(rs))
	for i, r := range rs {
		out[i] = r.Redacted()
	}
	return out
}

// listAlertRules answers every rule by name: {"rules": […]}.
func (s *Server) listAlertRules(w http.ResponseWriter, r *http.Request) error {
	e, err := s.alerts()
	if err != nil {
		return err
	}
	rs, err := e.ListRules(r.Context())
	if err != nil {
		return err
	}
	writeList(w, "rules", redactedRules(rs))
	return nil
}

// createAlertRules creates one rule from a JSON body (201 with the rule;
// an existing name is RESOURCE_ALREADY_EXISTS), or, with Content-Type
// application/yaml or text/yaml, creates or replaces every rule of a
// rules document (200 with {"rules": […]}). A document with any bad rule
// changes nothing; its error names the line and column.
func (s *Server) createAlertRules(w http.ResponseWriter, r *http.Request) error {
	e, err := s.alerts()
	if err != nil {
		return err
	}
	body, err := readBody(r, min(s.MaxBodyBytes, alert.MaxRulesDocument+1))
	if err != nil {
		return err
	}
	if isYAML(r.Header.Get("Content-Type")) {
		rules, err := alert.ParseRules(body)
		if err != nil {
			return err
		}
		out := make([]*alert.Rule, 0, len(rules))
		for _, rule := range rules {
			put, err := e.PutRule(r.Context(), rule)
			if err != nil {
				return err
			}
			out = append(out, put.Redacted())
		}
		writeList(w, "rules", out)
		return nil
	}
	rule, err := alert.ParseRule(body)
	if err != nil {
		return err
	}
	created, err := e.CreateRule(r.Context(), rule)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, created.Redacted())
	return nil
}

// getAlertRule answers one rule.
func (s *Server) getAlertRule(w http.ResponseWriter, r *http.Request) error {
	e, err := s.alerts()
	if err != nil {
		return err
	}
	rule, err := e.GetRule(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rule.Redacted())
	return nil
}

// putAlertRule creates or replaces the rule named in the path from a JSON
// body, whose name must be the same, and answers it.
func (s *Server) putAlertRule(w http.ResponseWriter, r *http.Request) error {
	e, err := s.alerts()
	if err != nil {
		return err
	}
	body, err := readBody(r, min(s.MaxBodyBytes, alert.MaxRulesDocument+1))
	if err != nil {
		return err
	}
	rule, err := alert.ParseRule(body)
	if err != nil {
		return err
	}
	if name := r.PathValue("name"); rule.Name != name {
		return mloop.Errorf(mloop.EINVALID,
			"The rule in the body is named %q but the path names %q: send the rule to /api/v1/alerts/rules/%s.", rule.Name, name, rule.Name)
	}
	put, err := e.PutRule(r.Context(), rule)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, put.Redacted())
	return nil
}

// deleteAlertRule deletes a rule and its states; its alerts stay.
func (s *Server) deleteAlertRule(w http.ResponseWriter, r *http.Request) error {
	e, err := s.alerts()
	if err != nil {
		return err
	}
	if err := e.DeleteRule(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{})
	return nil
}

// listAlerts answers the alerts, newest first: ?rule=&deployment=
// &state=firing|resolved&limit=.
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) error {
	e, err := s.alerts()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := alert.AlertFilter{Rule: q.Get("rule"), Deployment: q.Get("deployment")}
	switch st := alert.State(q.Get("state")); st {
	case "", alert.StateFiring, alert.StateResolved:
		f.State = st
	default:
		return mloop.Errorf(mloop.EINVALID, "Invalid value %q for parameter 'state': want firing or resolved.", st)
	}
	if f.Limit, err = limitParam(r); err != nil {
		return err
	}
	as, err := e.Alerts(r.Context(), f)
	if err != nil {
		return err
	}
	writeList(w, "alerts", as)
	return nil
}

// getAlert answers one alert with its deliveries.
func (s *Server) getAlert(w http.ResponseWriter, r *http.Request) error {
	e, err := s.alerts()
	if err != nil {
		return err
	}
	a, ds, err := e.Alert(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []*alert.Delivery{}
	}
	writeJSON(w, http.StatusOK, AlertDetail{Alert: a, Deliveries: ds})
	return nil
}
