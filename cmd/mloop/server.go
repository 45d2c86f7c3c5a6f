package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/alert"
	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/httpapi"
	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/payloadlog"
	"github.com/mloop/mloop/internal/serving/router"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

// Config is the server's configuration. NewConfig fills the defaults; flags
// and MLOOP_* environment variables adjust it.
type Config struct {
	// Addr is the address to listen on (MLOOP_ADDR).
	Addr string
	// DataDir is the folder for the default SQLite file and artifacts (MLOOP_DATA).
	DataDir string
	// DB is a SQLite file path or a postgres:// URL; empty means DataDir/mloop.db (MLOOP_DB).
	DB string
	// Artifacts is a folder, file:// or s3:// URL; empty means DataDir/artifacts (MLOOP_ARTIFACTS).
	Artifacts string
	// DefaultArtifactRoot is the root of new experiments' artifact locations
	// (MLOOP_DEFAULT_ARTIFACT_ROOT). The default, mlflow-artifacts:/, has
	// clients upload through this server into Artifacts; a file:// or s3://
	// URI has them write there directly, as MLflow's --default-artifact-root.
	DefaultArtifactRoot string
	// AllowFileURISources lets model versions be registered from file: URIs
	// of other machines, as MLflow's server does when its environment sets
	// MLFLOW_ALLOW_FILE_URI_AS_MODEL_VERSION_SOURCE (read here too).
	AllowFileURISources bool
	// DeploymentsTarget is the URL of the MLflow AI gateway that the web
	// UI's gateway-proxy endpoint forwards to (MLFLOW_DEPLOYMENTS_TARGET, as
	// MLflow's server reads it); empty means none.
	DeploymentsTarget string
	// WorkDir holds pipeline steps' working files: outputs being written,
	// logs, materialized dataset versions (MLOOP_WORK_DIR); empty means
	// DataDir/pipelines.
	WorkDir string
	// Serving runs the serving data plane in the server (MLOOP_SERVING):
	// the protocol routes answer at the server's address. When false the
	// server is a control plane only and mloop serve replicas serve.
	Serving bool
	// PayloadLog logs served requests (inputs, outputs, latency) to the
	// artifact store (MLOOP_PAYLOAD_LOG).
	PayloadLog bool
	// Monitor watches what the data plane serves (MLOOP_MONITOR): windows
	// of input and prediction profiles, drift against the training data,
	// data quality and feedback quality (docs/monitoring.md). Only with
	// Serving.
	Monitor bool
	// MonitorWindow is the length of a monitoring window
	// (MLOOP_MONITOR_WINDOW; default 1h).
	MonitorWindow time.Duration
	// ServingDir caches the model files the data plane loads
	// (MLOOP_SERVING_DIR); empty means DataDir/serving.
	ServingDir string
	// LogLevel is debug, info, warn or error (MLOOP_LOG_LEVEL).
	LogLevel string
	// LogFormat is text or json (MLOOP_LOG_FORMAT).
	LogFormat string
	// ShutdownTimeout bounds how long in-flight requests may take to finish.
	ShutdownTimeout time.Duration
}

// NewConfig returns the default configuration.
func NewConfig() Config {
	return Config{
		Addr:                "127.0.0.1:5151",
		DefaultArtifactRoot: tracking.DefaultArtifactRoot,
		DataDir:             "./mloop-data",
		LogLevel:            "info",
		LogFormat:           "text",
		Serving:             true,
		PayloadLog:          true,
		Monitor:             true,
		MonitorWindow:       time.Hour,
		ShutdownTimeout:     30 * time.Second,
	}
}

// dbDSN returns the database to open.
func (c Config) dbDSN() string {
	if c.DB != "" {
		return c.DB
	}
	return filepath.Join(c.DataDir, "mloop.db")
}

// artifactsURL returns the artifact store to open.
func (c Config) artifactsURL() string {
	if c.Artifacts != "" {
		return c.Artifacts
	}
	return filepath.Join(c.DataDir, "artifacts")
}

// workDir returns the pipelines' working folder.
func (c Config) workDir() string {
	if c.WorkDir != "" {
		return c.WorkDir
	}
	return filepath.Join(c.DataDir, "pipelines")
}

// servingDir returns the data plane's model cache.
func (c Config) servingDir() string {
	if c.ServingDir != "" {
		return c.ServingDir
	}
	return filepath.Join(c.DataDir, "serving")
}

// privateDirs returns the local folders the server writes to: its data
// folder, the SQLite file's folder and a local artifact store, which a
// project folder may contain (pipeline steps' writes there are not theirs).
func (c Config) privateDirs() []string {
	dirs := []string{c.DataDir, c.servingDir()}
	if db := c.dbDSN(); !strings.Contains(db, "://") {
		dirs = append(dirs, filepath.Dir(db))
	}
	if p, local := artifact.LocalPath(c.artifactsURL()); local {
		dirs = append(dirs, p)
	}
	return dirs
}

// Main is the whole server, built by hand from its components. Tests reuse it:
// set Config (Addr "127.0.0.1:0", a temp DataDir), call Open, use URL, Close.
type Main struct {
	Config Config
	Logger *slog.Logger

	DB         *sqlstore.DB
	Artifacts  *artifact.Store
	HTTPServer *http.Server
	// Pipelines runs pipelines and triggers (its controllers run from Open
	// to Close).
	Pipelines *pipeline.Service
	// Deployments is the serving control plane (it follows aliases from
	// Open to Close).
	Deployments *deploy.Service
	// Router is the serving data plane; nil when Config.Serving is false.
	Router *router.Router
	// Payloads logs served requests to the artifact store; nil when
	// Config.PayloadLog or Config.Serving is false.
	Payloads *payloadlog.Logger
	// Monitor watches the deployments this server serves; nil when
	// Config.Monitor or Config.Serving is false.
	Monitor *monitor.Monitor
	// Alerts evaluates alert rules on the monitor's closed windows and
	// runs their actions; nil when Monitor is nil.
	Alerts *alert.Engine
	// Metrics is exported at GET /metrics.
	Metrics *prometheus.Registry
	// ProcessOutput receives the output of process models; nil discards it.
	ProcessOutput io.Writer

	httpListener
	// stopping is closed when Close begins, to end long-lived answers.
	stopping chan struct{}
	// stopPayloads ends the payload logger's writer after Close flushed it.
	stopPayloads context.CancelFunc
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{Config: NewConfig(), Logger: slog.Default()}
}

// Open opens the stores, builds the services and starts serving HTTP in the
// background. Call Close to stop.
func (m *Main) Open(ctx context.Context) (err error) {
	if m.Logger == nil {
		m.Logger = slog.Default()
	}
	defer func() {
		if err != nil {
			if m.Payloads != nil {
				m.Payloads.Close(context.Background())
				m.stopPayloads()
				m.Payloads = nil
			}
			if m.Monitor != nil {
				m.Monitor.Close(context.Background())
				m.Monitor = nil
			}
			if m.Alerts != nil {
				m.Alerts.Close(context.Background())
				m.Alerts = nil
			}
			m.closeStores()
		}
	}()
	if m.Config.DB == "" || m.Config.Artifacts == "" {
		if err := os.MkdirAll(m.Config.DataDir, 0o755); err != nil {
			return fmt.Errorf("create data folder: %w", err)
		}
	}
	m.DB = sqlstore.NewDB(m.Config.dbDSN())
	m.DB.Logger = m.Logger
	if err = m.DB.Open(ctx); err != nil {
		m.DB = nil
		return fmt.Errorf("open metadata store: %w", err)
	}
	if m.Artifacts, err = artifact.Open(ctx, m.Config.artifactsURL()); err != nil {
		return fmt.Errorf("open artifact store: %w", err)
	}
	if err = m.Artifacts.Check(ctx); err != nil {
		return fmt.Errorf("open artifact store %s: %s", redactDSN(m.Config.artifactsURL()), mloop.ErrorMessage(err))
	}

	trackingStore := sqlstore.NewTrackingStore(m.DB)
	trackingSvc := tracking.NewService(trackingStore)
	trackingSvc.ArtifactRoot = m.Config.DefaultArtifactRoot
	loggedModels := tracking.NewLoggedModels(sqlstore.NewLoggedModelStore(m.DB), trackingSvc)
	registrySvc := registry.NewService(sqlstore.NewRegistryStore(m.DB), trackingSvc, loggedModels)
	registrySvc.AllowFileURISources = m.Config.AllowFileURISources
	datasetSvc := dataset.NewService(sqlstore.NewDatasetStore(m.DB), dataset.NewBlobs(m.Artifacts), trackingStore)
	datasetSvc.Logger = m.Logger
	m.Pipelines = pipeline.NewService(sqlstore.NewPipelineStore(m.DB), trackingSvc, registrySvc, datasetSvc,
		m.Artifacts, m.Config.workDir())
	m.Pipelines.Logger = m.Logger
	m.Pipelines.PrivateDirs = m.Config.privateDirs()
	m.Deployments = deploy.NewService(sqlstore.NewDeploymentStore(m.DB), registrySvc, m.Artifacts)
	m.Deployments.Logger = m.Logger
	registrySvc.AliasChanged = m.Deployments.AliasesChanged
	m.Metrics = newMetricsRegistry()
	if m.Config.Serving {
		if m.Config.PayloadLog {
			m.Payloads, m.stopPayloads = startPayloadLogger(m.Artifacts, m.Logger)
		}
		// A nil *monitor.Monitor in the interface would not be nil.
		var observer interface{ Observe(*monitor.Observation) }
		if m.Config.Monitor {
			// The alert engine judges each window the monitor closes; it
			// opens first so that no window closes before it listens.
			m.Alerts = alert.NewEngine(sqlstore.NewAlertStore(m.DB), m.Pipelines,
				alert.Config{Registerer: m.Metrics, Logger: m.Logger})
			if err = m.Alerts.Open(ctx); err != nil {
				m.Alerts = nil
				return fmt.Errorf("start alerting: %w", err)
			}
			m.Monitor = monitor.New(sqlstore.NewMonitorStore(m.DB),
				&monitor.LineageReferences{Lineage: m.Pipelines, Datasets: datasetSvc},
				monitor.Config{Window: m.Config.MonitorWindow, Registerer: m.Metrics, Logger: m.Logger,
					OnWindow: m.Alerts.OnWindow})
			if err = m.Monitor.Open(ctx); err != nil {
				m.Monitor = nil
				return fmt.Errorf("start monitoring: %w", err)
			}
			observer = m.Monitor
			m.Deployments.Health = m.Monitor
		}
		m.Router = router.New(m.Deployments, router.Config{
			Monitor:       observer,
			CacheDir:      m.Config.servingDir(),
			Payloads:      m.Payloads,
			Registerer:    m.Metrics,
			Logger:        m.Logger,
			ProcessOutput: m.ProcessOutput,
			Version:       versionString(),
		})
	}
	m.stopping = make(chan struct{})
	api := &httpapi.Server{
		Tracking:     trackingSvc,
		LoggedModels: loggedModels,
		Registry:     registrySvc,
		Datasets:     datasetSvc,
		Pipelines:    m.Pipelines,
		Deployments:  m.Deployments,
		Metrics:      promhttp.HandlerFor(m.Metrics, promhttp.HandlerOpts{}),
		Done:         m.stopping,
		Artifacts:    m.Artifacts,
		Ready:        m.DB.Ping,
		Logger:       m.Logger,
		Version:      versionString(),

		DeploymentsTarget: m.Config.DeploymentsTarget,
	}
	if m.Router != nil {
		api.Serving = m.Router.Handler()
		api.ServingStatus = m.Router.Status
	}
	if m.Monitor != nil {
		api.Monitor = m.Monitor
	}
	if m.Alerts != nil {
		api.Alerts = m.Alerts
	}
	api.Story = newStory(m.Deployments, m.Pipelines, registrySvc, m.Alerts)
	m.HTTPServer = newHTTPServer(api.Handler(), m.Logger)
	if err = m.listen(m.Config.Addr, "server"); err != nil {
		return err
	}
	// Steps log to MLflow through this server: it must know its own URL
	// before the controllers start (connections wait in the listen queue
	// until Serve below).
	m.Pipelines.TrackingURI = m.URL()
	if err = m.Pipelines.Open(ctx); err != nil {
		m.ln.Close()
		m.Pipelines = nil
		return fmt.Errorf("start pipelines: %w", err)
	}
	if err = m.Deployments.Open(ctx); err != nil {
		m.ln.Close()
		m.Pipelines.Close()
		m.Pipelines = nil
		return fmt.Errorf("start deployments: %w", err)
	}
	m.serve(m.HTTPServer)
	if m.Router != nil {
		// The data plane follows the control plane in process; it loads
		// the deployments while the API already answers.
		if err = m.Router.Open(ctx); err != nil {
			m.Close()
			return fmt.Errorf("start serving: %w", err)
		}
	}
	m.Logger.Info("mloop server listening", "url", m.URL(), "db", redactDSN(m.Config.dbDSN()),
		"artifacts", redactDSN(m.Config.artifactsURL()), "serving", m.Router != nil,
		"payload_log", m.Payloads != nil, "monitor", m.Monitor != nil, "version", versionString())
	return nil
}

// Close stops accepting connections, lets in-flight requests finish (up to
// Config.ShutdownTimeout; followed logs and serving-state long polls end at
// once), stops the data plane and its models, saves the monitor's open
// windows (the alert engine judging the last ones), stops the alert
// engine, writes the queued payload records, stops the pipeline
// controllers and the alias follower, then closes the stores.
func (m *Main) Close() error {
	var err error
	if m.stopping != nil {
		close(m.stopping)
		m.stopping = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
	defer cancel()
	err = m.shutdown(ctx, m.HTTPServer)
	m.HTTPServer = nil
	if m.Router != nil {
		if rerr := m.Router.Close(ctx); rerr != nil {
			err = errors.Join(err, fmt.Errorf("stop serving: %w", rerr))
		}
		m.Router = nil
	}
	if m.Monitor != nil {
		// After the data plane (nothing more to observe), before the
		// stores: the open windows are saved.
		if merr := m.Monitor.Close(ctx); merr != nil {
			err = errors.Join(err, fmt.Errorf("stop monitoring: %w", merr))
		}
		m.Monitor = nil
	}
	if m.Alerts != nil {
		// After the monitor, whose last windows it judges: deliveries in
		// flight finish their attempt, queued ones are recorded as dropped.
		if aerr := m.Alerts.Close(ctx); aerr != nil {
			err = errors.Join(err, fmt.Errorf("stop alerting: %w", aerr))
		}
		m.Alerts = nil
	}
	if m.Payloads != nil {
		if perr := m.Payloads.Close(ctx); perr != nil {
			err = errors.Join(err, fmt.Errorf("write payload logs: %w", perr))
		}
		m.stopPayloads()
		m.Payloads = nil
	}
	if m.Pipelines != nil {
		if perr := m.Pipelines.Close(); perr != nil {
			err = errors.Join(err, fmt.Errorf("stop pipelines: %w", perr))
		}
		m.Pipelines = nil
	}
	if m.Deployments != nil {
		if derr := m.Deployments.Close(); derr != nil {
			err = errors.Join(err, fmt.Errorf("stop deployments: %w", derr))
		}
		m.Deployments = nil
	}
	return errors.Join(err, m.closeStores())
}

func (m *Main) closeStores() error {
	var err error
	if m.Artifacts != nil {
		err = m.Artifacts.Close()
		m.Artifacts = nil
	}
	if m.DB != nil {
		err = errors.Join(err, m.DB.Close())
		m.DB = nil
	}
	return err
}

// redactDSN hides a password in a URL for logs.
func redactDSN(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if at := strings.Index(s[i+3:], "@"); at >= 0 {
			cred := s[i+3 : i+3+at]
			if user, _, ok := strings.Cut(cred, ":"); ok {
				return s[:i+3] + user + ":xxxxx" + s[i+3+at:]
			}
		}
	}
	return s
}

// envOr returns the environment variable key, or def when it is unset.
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// envBool reads the boolean environment variable key as MLflow reads its
// own: true, false, 1 or 0 in any case; def when it is unset or empty.
func envBool(key string, def bool) (bool, error) {
	switch v := os.Getenv(key); strings.ToLower(v) {
	case "":
		return def, nil
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	default:
		return false, fmt.Errorf("invalid %s=%q: use true, false, 1 or 0", key, v)
	}
}

// newLogger builds the process logger from the level and format names.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid --log-format %q: use text or json", format)
}

const serverUsage = `Usage: mloop server [flags]

Runs the mloop server: the MLflow-compatible tracking and model registry REST
API (point MLFLOW_TRACKING_URI at it), the proxied artifact API, mloop's
dataset versions, pipeline runs, triggers, lineage and deployments under
/api/v1, /healthz, /readyz and /metrics, the controllers that run pipelines
and fire triggers, and (unless --serving=false) the deployments themselves:
POST /v2/models/NAME/infer, /v1/models/NAME:predict and
/serving-endpoints/NAME/invocations. Stops
gracefully on SIGINT or SIGTERM (running steps are stopped and retried when
the server starts again).

Flags (each falls back to the environment variable in brackets):
`

func runServer(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := NewConfig()
	fs := flag.NewFlagSet("mloop server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serverUsage); fs.PrintDefaults() }
	fs.StringVar(&cfg.Addr, "addr", envOr("MLOOP_ADDR", cfg.Addr), "address to listen on [MLOOP_ADDR]")
	fs.StringVar(&cfg.DataDir, "data", envOr("MLOOP_DATA", cfg.DataDir), "data folder for the default database and artifacts [MLOOP_DATA]")
	fs.StringVar(&cfg.DB, "db", envOr("MLOOP_DB", ""), "metadata database: a SQLite file, or postgres://user@host/db (default DATA/mloop.db) [MLOOP_DB]")
	fs.StringVar(&cfg.Artifacts, "artifacts", envOr("MLOOP_ARTIFACTS", ""), "artifact store: a folder, or s3://bucket/prefix?endpoint=…&region=… (default DATA/artifacts) [MLOOP_ARTIFACTS]")
	fs.StringVar(&cfg.DefaultArtifactRoot, "default-artifact-root", envOr("MLOOP_DEFAULT_ARTIFACT_ROOT", cfg.DefaultArtifactRoot), "root URI of new experiments' artifact locations: mlflow-artifacts:/ proxies uploads through this server; file:// or s3:// has clients write there directly [MLOOP_DEFAULT_ARTIFACT_ROOT]")
	fs.StringVar(&cfg.WorkDir, "work-dir", envOr("MLOOP_WORK_DIR", ""), "folder for pipeline steps' working files and logs (default DATA/pipelines) [MLOOP_WORK_DIR]")
	fs.StringVar(&cfg.LogLevel, "log-level", envOr("MLOOP_LOG_LEVEL", cfg.LogLevel), "log level: debug (one line per request), info, warn, error [MLOOP_LOG_LEVEL]")
	fs.StringVar(&cfg.LogFormat, "log-format", envOr("MLOOP_LOG_FORMAT", cfg.LogFormat), "log format: text or json [MLOOP_LOG_FORMAT]")
	allowFileURIs, err := envBool(registry.AllowFileURISourcesEnv, cfg.AllowFileURISources)
	if err != nil {
		fmt.Fprintf(stderr, "mloop server: %v\n", err)
		return exitUsage
	}
	fs.BoolVar(&cfg.AllowFileURISources, "allow-file-uri-sources", allowFileURIs, "allow file:// URIs of other machines as model version sources ["+registry.AllowFileURISourcesEnv+"]")
	fs.StringVar(&cfg.DeploymentsTarget, "deployments-target", envOr("MLFLOW_DEPLOYMENTS_TARGET", ""), "URL of the MLflow AI gateway the web UI's gateway-proxy forwards to [MLFLOW_DEPLOYMENTS_TARGET]")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long in-flight requests may take to finish on shutdown")
	serving, err := envBool("MLOOP_SERVING", cfg.Serving)
	if err != nil {
		fmt.Fprintf(stderr, "mloop server: %v\n", err)
		return exitUsage
	}
	fs.BoolVar(&cfg.Serving, "serving", serving, "serve deployments at this address (/v2/…, /v1/models/…, /serving-endpoints/…); --serving=false runs the control plane only, for mloop serve replicas [MLOOP_SERVING]")
	payloadLog, err := envBool("MLOOP_PAYLOAD_LOG", cfg.PayloadLog)
	if err != nil {
		fmt.Fprintf(stderr, "mloop server: %v\n", err)
		return exitUsage
	}
	fs.BoolVar(&cfg.PayloadLog, "payload-log", payloadLog, "log served requests (inputs, outputs, latency; sampled per deployment) to the artifact store under payloads/ [MLOOP_PAYLOAD_LOG]")
	monitorOn, err := envBool("MLOOP_MONITOR", cfg.Monitor)
	if err != nil {
		fmt.Fprintf(stderr, "mloop server: %v\n", err)
		return exitUsage
	}
	fs.BoolVar(&cfg.Monitor, "monitor", monitorOn, "monitor served deployments: windows of input and prediction profiles, drift against the training data, data quality, feedback quality, and alert rules on each window (see mloop monitor, mloop feedback, mloop alert) [MLOOP_MONITOR]")
	window := cfg.MonitorWindow
	if v := os.Getenv("MLOOP_MONITOR_WINDOW"); v != "" {
		if window, err = time.ParseDuration(v); err != nil || window <= 0 {
			fmt.Fprintf(stderr, "mloop server: invalid MLOOP_MONITOR_WINDOW=%q: use a positive duration such as 1h or 15m\n", v)
			return exitUsage
		}
	}
	fs.DurationVar(&cfg.MonitorWindow, "monitor-window", window, "length of a monitoring window [MLOOP_MONITOR_WINDOW]")
	fs.StringVar(&cfg.ServingDir, "serving-dir", envOr("MLOOP_SERVING_DIR", ""), "folder caching the model files the data plane loads (default DATA/serving) [MLOOP_SERVING_DIR]")
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	if cfg.MonitorWindow <= 0 {
		fmt.Fprintf(stderr, "mloop server: invalid --monitor-window %s: use a positive duration such as 1h or 15m\n", cfg.MonitorWindow)
		return exitUsage
	}
	logger, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		fmt.Fprintf(stderr, "mloop server: %v\n", err)
		return exitUsage
	}
	m := NewMain()
	m.Config, m.Logger, m.ProcessOutput = cfg, logger, stderr
	if err := m.Open(ctx); err != nil {
		fmt.Fprintf(stderr, "mloop server: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "mloop server listening on %s — set MLFLOW_TRACKING_URI=%s\n", m.URL(), m.URL())
	return runUntilDone(ctx, "mloop server", m, logger, stderr)
}
