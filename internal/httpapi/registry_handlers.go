package httpapi

import (
	"net/http"

	"github.com/mloop/mloop"
)

// Stubs: the registry API replaces this file with the real handlers.
func (s *Server) createRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) getRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) renameRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) updateRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) deleteRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) searchRegisteredModels(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) setRegisteredModelTag(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) deleteRegisteredModelTag(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) setRegisteredModelAlias(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) deleteRegisteredModelAlias(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) getModelVersionByAlias(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) getLatestVersions(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) createModelVersion(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) getModelVersion(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) updateModelVersion(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) deleteModelVersion(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) searchModelVersions(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) transitionModelVersionStage(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) getModelVersionDownloadURI(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) setModelVersionTag(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) deleteModelVersionTag(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
