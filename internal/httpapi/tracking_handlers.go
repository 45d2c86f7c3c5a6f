package httpapi

import (
	"net/http"

	"github.com/mloop/mloop"
)

// Stubs: the tracking API replaces this file with the real handlers.
func (s *Server) createExperiment(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) getExperiment(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) getExperimentByName(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) searchExperiments(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) updateExperiment(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) deleteExperiment(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) restoreExperiment(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) setExperimentTag(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) deleteExperimentTag(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) createRun(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) getRun(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) updateRun(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) deleteRun(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) restoreRun(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) searchRuns(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) logMetric(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) logParam(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) logBatch(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) logInputs(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) logModel(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) setTag(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) deleteTag(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) logOutputs(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) getMetricHistory(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
func (s *Server) getMetricHistoryBulkInterval(w http.ResponseWriter, r *http.Request) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "not implemented")
}
