package httpapi

// Path prefixes the MLflow API is served under: MLflow's server answers both.
var (
	mlflowPrefixes    = []string{"/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/"}
	mlflow3Prefixes   = []string{"/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/", "/api/3.0/mlflow/", "/ajax-api/3.0/mlflow/"}
	artifactsPrefixes = []string{"/api/2.0/mlflow-artifacts/", "/ajax-api/2.0/mlflow-artifacts/"}
	rootPrefix        = []string{"/"}
	// ajaxPrefix serves the endpoints MLflow adds for its web UI only.
	ajaxPrefix = []string{"/ajax-api/2.0/mlflow/"}
	// apiV1 is mloop's own API (docs/datasets-api.md, docs/pipelines-api.md,
	// docs/models-api.md, docs/deployments-api.md).
	apiV1 = []string{"/api/v1/"}
)

// route is one line of the route table.
type route struct {
	method   string
	prefixes []string
	path     string
	handler  handlerFunc
}

// routes is the whole HTTP API on one screen. Paths and methods follow
// MLflow's service.proto, model_registry.proto and mlflow_artifacts.proto;
// /api/v1 is mloop's own (docs/datasets-api.md, docs/pipelines-api.md).
func (s *Server) routes() []route {
	return []route{
		{"GET", rootPrefix, "healthz", s.healthz},
		{"GET", rootPrefix, "readyz", s.readyz},
		{"GET", rootPrefix, "health", s.healthz},
		{"GET", rootPrefix, "version", s.version},
		{"GET", rootPrefix, "metrics", s.metrics},

		// Experiments.
		{"POST", mlflowPrefixes, "experiments/create", s.createExperiment},
		{"GET", mlflowPrefixes, "experiments/get", s.getExperiment},
		{"GET", mlflowPrefixes, "experiments/get-by-name", s.getExperimentByName},
		{"POST", mlflowPrefixes, "experiments/search", s.searchExperiments},
		{"GET", mlflowPrefixes, "experiments/search", s.searchExperiments},
		{"POST", mlflowPrefixes, "experiments/update", s.updateExperiment},
		{"POST", mlflowPrefixes, "experiments/delete", s.deleteExperiment},
		{"POST", mlflowPrefixes, "experiments/restore", s.restoreExperiment},
		{"POST", mlflowPrefixes, "experiments/set-experiment-tag", s.setExperimentTag},
		{"POST", mlflowPrefixes, "experiments/delete-experiment-tag", s.deleteExperimentTag},

		// Runs.
		{"POST", mlflowPrefixes, "runs/create", s.createRun},
		{"GET", mlflowPrefixes, "runs/get", s.getRun},
		{"POST", mlflowPrefixes, "runs/update", s.updateRun},
		{"POST", mlflowPrefixes, "runs/delete", s.deleteRun},
		{"POST", mlflowPrefixes, "runs/restore", s.restoreRun},
		{"POST", mlflowPrefixes, "runs/search", s.searchRuns},
		{"POST", mlflowPrefixes, "runs/log-metric", s.logMetric},
		{"POST", mlflowPrefixes, "runs/log-parameter", s.logParam},
		{"POST", mlflowPrefixes, "runs/log-batch", s.logBatch},
		{"POST", mlflowPrefixes, "runs/log-inputs", s.logInputs},
		{"POST", mlflowPrefixes, "runs/log-model", s.logModel},
		{"POST", mlflowPrefixes, "runs/set-tag", s.setTag},
		{"POST", mlflowPrefixes, "runs/delete-tag", s.deleteTag},
		{"POST", mlflow3Prefixes, "runs/outputs", s.logOutputs},

		// Metrics.
		{"GET", mlflowPrefixes, "metrics/get-history", s.getMetricHistory},
		{"GET", mlflowPrefixes, "metrics/get-history-bulk-interval", s.getMetricHistoryBulkInterval},

		// Artifacts of runs (listing through the tracking API).
		{"GET", mlflowPrefixes, "artifacts/list", s.listArtifacts},

		// Model registry: registered models.
		{"POST", mlflowPrefixes, "registered-models/create", s.createRegisteredModel},
		{"GET", mlflowPrefixes, "registered-models/get", s.getRegisteredModel},
		{"POST", mlflowPrefixes, "registered-models/rename", s.renameRegisteredModel},
		{"PATCH", mlflowPrefixes, "registered-models/update", s.updateRegisteredModel},
		{"DELETE", mlflowPrefixes, "registered-models/delete", s.deleteRegisteredModel},
		{"GET", mlflowPrefixes, "registered-models/search", s.searchRegisteredModels},
		{"POST", mlflowPrefixes, "registered-models/set-tag", s.setRegisteredModelTag},
		{"DELETE", mlflowPrefixes, "registered-models/delete-tag", s.deleteRegisteredModelTag},
		{"POST", mlflowPrefixes, "registered-models/alias", s.setRegisteredModelAlias},
		{"DELETE", mlflowPrefixes, "registered-models/alias", s.deleteRegisteredModelAlias},
		{"GET", mlflowPrefixes, "registered-models/alias", s.getModelVersionByAlias},
		{"POST", mlflowPrefixes, "registered-models/get-latest-versions", s.getLatestVersions},
		{"GET", mlflowPrefixes, "registered-models/get-latest-versions", s.getLatestVersions},

		// Model registry: model versions.
		{"POST", mlflowPrefixes, "model-versions/create", s.createModelVersion},
		{"GET", mlflowPrefixes, "model-versions/get", s.getModelVersion},
		{"PATCH", mlflowPrefixes, "model-versions/update", s.updateModelVersion},
		{"DELETE", mlflowPrefixes, "model-versions/delete", s.deleteModelVersion},
		{"GET", mlflowPrefixes, "model-versions/search", s.searchModelVersions},
		{"POST", mlflowPrefixes, "model-versions/transition-stage", s.transitionModelVersionStage},
		{"GET", mlflowPrefixes, "model-versions/get-download-uri", s.getModelVersionDownloadURI},
		{"POST", mlflowPrefixes, "model-versions/set-tag", s.setModelVersionTag},
		{"DELETE", mlflowPrefixes, "model-versions/delete-tag", s.deleteModelVersionTag},

		// MLflow 3 logged models.
		{"POST", mlflow3Prefixes, "logged-models", s.createLoggedModel},
		{"GET", mlflow3Prefixes, "logged-models/{model_id}", s.getLoggedModel},
		{"PATCH", mlflow3Prefixes, "logged-models/{model_id}", s.finalizeLoggedModel},
		{"DELETE", mlflow3Prefixes, "logged-models/{model_id}", s.deleteLoggedModel},
		{"POST", mlflow3Prefixes, "logged-models/search", s.searchLoggedModels},
		{"PATCH", mlflow3Prefixes, "logged-models/{model_id}/tags", s.setLoggedModelTags},
		{"DELETE", mlflow3Prefixes, "logged-models/{model_id}/tags/{tag_key}", s.deleteLoggedModelTag},
		{"POST", mlflow3Prefixes, "logged-models/{model_id}/params", s.logLoggedModelParams},
		{"GET", mlflow3Prefixes, "logged-models/{model_id}/artifacts/directories", s.listLoggedModelArtifacts},

		// Endpoints of MLflow's web UI, outside its protobuf services.
		{"GET", ajaxPrefix, "metrics/get-history-bulk", s.getMetricHistoryBulk},
		{"POST", ajaxPrefix, "experiments/search-datasets", s.searchDatasets},
		{"POST", ajaxPrefix, "runs/create-promptlab-run", s.createPromptlabRun},
		{"GET", ajaxPrefix, "gateway-proxy", s.gatewayProxy},
		{"POST", ajaxPrefix, "gateway-proxy", s.gatewayProxy},
		{"POST", ajaxPrefix, "upload-artifact", s.uploadRunArtifact},
		{"GET", rootPrefix, "get-artifact", s.getRunArtifact},
		{"GET", rootPrefix, "model-versions/get-artifact", s.getModelVersionArtifact},

		// Proxied artifacts (mlflow-artifacts:/ URIs).
		{"GET", artifactsPrefixes, "artifacts", s.listProxiedArtifacts},
		{"GET", artifactsPrefixes, "artifacts/{path...}", s.downloadArtifact},
		{"PUT", artifactsPrefixes, "artifacts/{path...}", s.uploadArtifact},
		{"DELETE", artifactsPrefixes, "artifacts/{path...}", s.deleteArtifact},

		// mloop: content-addressed blobs of dataset files.
		{"PUT", apiV1, "blobs/sha256/{hex}", s.putBlob},
		{"GET", apiV1, "blobs/sha256/{hex}", s.getBlob},
		{"HEAD", apiV1, "blobs/sha256/{hex}", s.headBlob},
		{"POST", apiV1, "blobs/missing", s.missingBlobs},

		// mloop: dataset versions.
		{"GET", apiV1, "datasets", s.listDatasets},
		{"POST", apiV1, "datasets/gc", s.collectDatasetBlobs},
		{"POST", apiV1, "datasets/{name}/versions", s.createDatasetVersion},
		{"GET", apiV1, "datasets/{name}/versions", s.listDatasetVersions},
		{"GET", apiV1, "datasets/{name}/versions/{ref}", s.getDatasetVersion},
		{"GET", apiV1, "datasets/{name}/versions/{ref}/runs", s.datasetVersionRuns},
		{"PUT", apiV1, "datasets/{name}/schema", s.putDatasetSchema},
		{"GET", apiV1, "datasets/{name}/schema", s.getDatasetSchema},

		// mloop: pipeline runs, triggers, events and lineage (docs/pipelines-api.md).
		{"POST", apiV1, "pipeline-runs", s.submitPipelineRun},
		{"GET", apiV1, "pipeline-runs", s.listPipelineRuns},
		{"GET", apiV1, "pipeline-runs/{id}", s.getPipelineRun},
		{"POST", apiV1, "pipeline-runs/{id}/cancel", s.cancelPipelineRun},
		{"GET", apiV1, "pipeline-runs/{id}/logs", s.pipelineRunLogs},
		{"POST", apiV1, "triggers", s.createTrigger},
		{"GET", apiV1, "triggers", s.listTriggers},
		{"GET", apiV1, "triggers/{name}", s.getTrigger},
		{"DELETE", apiV1, "triggers/{name}", s.deleteTrigger},
		{"POST", apiV1, "triggers/{name}/pause", s.pauseTrigger},
		{"POST", apiV1, "triggers/{name}/resume", s.resumeTrigger},
		{"POST", apiV1, "triggers/{name}/fire", s.fireTrigger},
		{"GET", apiV1, "triggers/{name}/events", s.triggerEvents},
		{"POST", apiV1, "events", s.postEvent},
		{"GET", apiV1, "lineage", s.lineage},

		// mloop: registering local models as model versions (docs/models-api.md).
		{"POST", apiV1, "models/{name}/versions", s.registerModelVersion},
		{"GET", apiV1, "models/{name}/versions/{version}/files", s.modelVersionFiles},

		// mloop: deployments and the serving state (docs/deployments-api.md).
		{"POST", apiV1, "deployments", s.createDeployment},
		{"GET", apiV1, "deployments", s.listDeployments},
		{"GET", apiV1, "deployments/{name}", s.getDeployment},
		{"PATCH", apiV1, "deployments/{name}", s.updateDeployment},
		{"DELETE", apiV1, "deployments/{name}", s.deleteDeployment},
		{"POST", apiV1, "deployments/{name}/promote", s.promoteDeployment},
		{"POST", apiV1, "deployments/{name}/rollback", s.rollbackDeployment},
		{"GET", apiV1, "deployments/{name}/events", s.deploymentEvents},
		{"GET", apiV1, "deployments/{name}/history", s.deploymentHistory},
		{"GET", apiV1, "deployments/{name}/story", s.deploymentStory},
		{"GET", apiV1, "serving/state", s.servingState},

		// mloop: monitoring and feedback (docs/monitoring.md).
		{"GET", apiV1, "monitoring/{deployment}/windows", s.monitoringWindows},
		{"GET", apiV1, "monitoring/{deployment}/current", s.monitoringCurrent},
		{"GET", apiV1, "monitoring/{deployment}/quality", s.monitoringQuality},
		{"POST", apiV1, "monitoring/observations", s.postObservations},
		{"POST", apiV1, "feedback", s.postFeedback},

		// mloop: alert rules and alerts (docs/alerts.md).
		{"GET", apiV1, "alerts/rules", s.listAlertRules},
		{"POST", apiV1, "alerts/rules", s.createAlertRules},
		{"GET", apiV1, "alerts/rules/{name}", s.getAlertRule},
		{"PUT", apiV1, "alerts/rules/{name}", s.putAlertRule},
		{"DELETE", apiV1, "alerts/rules/{name}", s.deleteAlertRule},
		{"GET", apiV1, "alerts", s.listAlerts},
		{"GET", apiV1, "alerts/{id}", s.getAlert},
	}
}
