package httpapi

import (
	"net/http"

	"github.com/mloop/mloop"
)

// Stubs: the logged-model API replaces this file with the real handlers.
func (s *Server) createLoggedModel(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) getLoggedModel(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) finalizeLoggedModel(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) deleteLoggedModel(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) searchLoggedModels(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) setLoggedModelTags(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) deleteLoggedModelTag(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) logLoggedModelParams(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) listLoggedModelArtifacts(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
