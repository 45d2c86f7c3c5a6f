package httpapi

// Handlers of mloop's /api/v1 for registering local models as model
// versions (docs/models-api.md). The checks and the registration itself
// live in internal/serving/modelcheck.

import (
	"mime"
	"net/http"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/modelcheck"
)

// registerModelVersion registers the model folder sent as a tar archive
// (Content-Type application/x-tar) as a new version of the model named in
// the path: 201 with the version and what the check found, 400 with the
// reason when the archive or the model is refused (nothing is stored).
func (s *Server) registerModelVersion(w http.ResponseWriter, r *http.Request) error {
	if s.Tracking == nil || s.Registry == nil || s.Artifacts == nil {
		return mloop.Errorf(mloop.ENOTIMPLEMENTED, "This server does not register models: it runs without tracking, registry or artifact store.")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/x-tar" {
			return mloop.Errorf(mloop.EINVALID, "Content-Type %q is not accepted: send the model folder as a tar archive (application/x-tar).", ct)
		}
	}
	q := r.URL.Query()
	g := &modelcheck.Registrar{Tracking: s.Tracking, Registry: s.Registry, Artifacts: s.Artifacts, Logger: s.Logger}
	v, err := g.Register(r.Context(), modelcheck.RegisterRequest{
		Name: r.PathValue("name"), Flavor: q.Get("flavor"), Description: q.Get("description"),
	}, r.Body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}
