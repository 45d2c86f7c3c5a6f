package httpapi

import (
	"net/http"

	"github.com/mloop/mloop"
)

// Stubs: the artifact API replaces this file with the real handlers.
func (s *Server) listArtifacts(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) listProxiedArtifacts(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) downloadArtifact(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) uploadArtifact(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) deleteArtifact(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
