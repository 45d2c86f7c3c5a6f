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
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/client"
	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/serving/payloadlog"
	"github.com/mloop/mloop/internal/serving/router"
)

// ReplicaConfig configures `mloop serve`, a data-plane-only replica.
type ReplicaConfig struct {
	// ControlPlane is the URL of the mloop server whose deployments the
	// replica serves (MLOOP_CONTROL_PLANE, else MLOOP_SERVER).
	ControlPlane string
	// Addr is the address to listen on (MLOOP_SERVE_ADDR).
	Addr string
	// CacheDir holds fetched model files (MLOOP_SERVE_CACHE); empty means
	// a temporary folder removed on Close.
	CacheDir string
	// Artifacts, when set, is the artifact store (a folder, file:// or
	// s3:// URL) payload logs are written to: the same store the server
	// uses (MLOOP_ARTIFACTS). Without it the replica logs no payloads: it
	// has no store of its own.
	Artifacts string
	// PayloadLog turns payload logging off when false, even with Artifacts.
	PayloadLog bool
	// Monitor forwards what the replica serves to the control plane's
	// monitor (MLOOP_MONITOR): windows, drift, data quality and, with
	// feedback posted to the server, live quality (docs/monitoring.md).
	Monitor bool
	// ShutdownTimeout bounds how long in-flight requests may take to finish.
	ShutdownTimeout time.Duration
}

// NewReplicaConfig returns the default configuration of `mloop serve`.
func NewReplicaConfig() ReplicaConfig {
	return ReplicaConfig{
		ControlPlane:    client.DefaultServer,
		Addr:            "127.0.0.1:5152",
		PayloadLog:      true,
		Monitor:         true,
		ShutdownTimeout: 30 * time.Second,
	}
}

// Replica is `mloop serve`, built by hand from its components: a router
// following a remote control plane through the HTTP client, its protocol
// routes, /metrics, /healthz and /readyz. Tests reuse it on 127.0.0.1:0.
type Replica struct {
	Config ReplicaConfig
	Logger *slog.Logger
	// ProcessOutput receives process models' output (nil discards it).
	ProcessOutput io.Writer

	Router   *router.Router
	Payloads *payloadlog.Logger // nil when payloads are not logged
	// Forwarder sends the router's observations to the control plane's
	// monitor; nil when Config.Monitor is false.
	Forwarder  *monitor.Forwarder
	Artifacts  *artifact.Store // nil without Config.Artifacts
	Metrics    *prometheus.Registry
	HTTPServer *http.Server

	httpListener
	tempDir  string // the cache folder made by Open, removed by Close
	payloads context.CancelFunc
}

// NewReplica returns a Replica with the default configuration.
func NewReplica() *Replica {
	return &Replica{Config: NewReplicaConfig(), Logger: slog.Default()}
}

// Open connects to the control plane, loads its deployments and starts
// serving HTTP in the background. A control plane that cannot be reached
// fails Open; a model that fails to load does not (it is reported in the
// deployment's status and retried). Call Close to stop.
func (r *Replica) Open(ctx context.Context) (err error) {
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	cacheDir := r.Config.CacheDir
	if cacheDir == "" {
		if r.tempDir, err = os.MkdirTemp("", "mloop-serve-*"); err != nil {
			return fmt.Errorf("create model cache: %w", err)
		}
		cacheDir = r.tempDir
	}
	r.Metrics = newMetricsRegistry()
	if r.Config.Artifacts != "" && r.Config.PayloadLog {
		if r.Artifacts, err = artifact.Open(ctx, r.Config.Artifacts); err != nil {
			return fmt.Errorf("open artifact store for payload logs: %w", err)
		}
		if err = r.Artifacts.Check(ctx); err != nil {
			return fmt.Errorf("open artifact store %s: %s", redactDSN(r.Config.Artifacts), mloop.ErrorMessage(err))
		}
		r.Payloads, r.payloads = startPayloadLogger(r.Artifacts, r.Logger)
	}
	cp := client.New(r.Config.ControlPlane, nil)
	// A nil *monitor.Forwarder in the interface would not be nil.
	var observer interface{ Observe(*monitor.Observation) }
	if r.Config.Monitor {
		r.Forwarder = monitor.NewForwarder(cp, monitor.ForwarderConfig{Registerer: r.Metrics, Logger: r.Logger})
		if err = r.Forwarder.Open(ctx); err != nil {
			r.Forwarder = nil
			return fmt.Errorf("start forwarding observations: %w", err)
		}
		observer = r.Forwarder
	}
	r.Router = router.New(cp, router.Config{
		CacheDir:      cacheDir,
		Payloads:      r.Payloads,
		Monitor:       observer,
		Registerer:    r.Metrics,
		Logger:        r.Logger,
		ProcessOutput: r.ProcessOutput,
		Version:       versionString(),
	})
	if err = r.listen(r.Config.Addr, "replica"); err != nil {
		return err
	}
	if err = r.Router.Open(ctx); err != nil {
		return fmt.Errorf("follow the control plane at %s: %w", cp.BaseURL(), err)
	}
	r.HTTPServer = newHTTPServer(r.handler(), r.Logger)
	r.serve(r.HTTPServer)
	r.Logger.Info("mloop serve listening", "url", r.URL(), "control_plane", cp.BaseURL(),
		"cache", cacheDir, "payload_log", r.Payloads != nil, "monitor", r.Forwarder != nil, "version", versionString())
	return nil
}

// handler routes /metrics, /healthz and /readyz, and everything else to
// the router (the protocol routes; unknown paths get its 404).
func (r *Replica) handler() http.Handler {
	serving := r.Router.Handler()
	metrics := promhttp.HandlerFor(r.Metrics, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/metrics":
			metrics.ServeHTTP(w, req)
		case "/healthz", "/readyz":
			// The replica listens once Open has applied the state it
			// started with; /v2/health/ready says the same for OIP
			// clients, and /v2/models/NAME/ready each model's readiness.
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
		default:
			serving.ServeHTTP(w, req)
		}
	})
}

// Close stops accepting connections, lets in-flight requests finish (up
// to Config.ShutdownTimeout), stops the router and its models, sends the
// observations not yet forwarded, writes the queued payload records, and
// removes a temporary cache folder.
func (r *Replica) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.Config.ShutdownTimeout)
	defer cancel()
	err := r.shutdown(ctx, r.HTTPServer)
	r.HTTPServer = nil
	if r.Router != nil {
		if rerr := r.Router.Close(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
		r.Router = nil
	}
	if r.Forwarder != nil {
		// After the router: it observes nothing more.
		if ferr := r.Forwarder.Close(ctx); ferr != nil {
			err = errors.Join(err, ferr)
		}
		r.Forwarder = nil
	}
	if r.Payloads != nil {
		if perr := r.Payloads.Close(ctx); perr != nil {
			err = errors.Join(err, perr)
		}
		r.payloads()
		r.Payloads = nil
	}
	if r.Artifacts != nil {
		err = errors.Join(err, r.Artifacts.Close())
		r.Artifacts = nil
	}
	if r.tempDir != "" {
		err = errors.Join(err, os.RemoveAll(r.tempDir))
		r.tempDir = ""
	}
	return err
}

const serveUsage = `Usage: mloop serve --control-plane URL [flags]

Runs a data-plane-only replica: it loads the deployments of the mloop server
at URL, follows their changes (long poll), and serves them on --addr with
the same routes as the server — POST /v2/models/NAME/infer,
/v1/models/NAME:predict, /serving-endpoints/NAME/invocations, the OIP
health and metadata routes — plus GET /metrics, /healthz and /readyz. Run as
many as needed behind any load balancer; canaries are judged and rolled back
by each replica, through the server.

Monitoring: a replica forwards every request its primaries and canaries
answer (inputs, predictions, status, latency, request id) to the server's
monitor, in batches every second (POST /api/v1/monitoring/observations):
the server profiles them into windows, computes drift, joins the feedback
labels posted to it by request id, and judges rollout canaries on them, as
for its own traffic. Forwarding never holds up a request: when the server
cannot keep up or cannot be reached, whole batches are dropped and counted
(mloop_monitor_forward_dropped_total). --monitor=false turns it off.

Payload logs: a replica has no artifact store of its own, so it logs no
payloads unless --artifacts names the store the server writes to (the same
folder on a shared file system, or the same s3:// URL).

Stops gracefully on SIGINT or SIGTERM.

Flags (each falls back to the environment variable in brackets):
`

// runServe runs `mloop serve`.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := NewReplicaConfig()
	fs := flag.NewFlagSet("mloop serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serveUsage); fs.PrintDefaults() }
	fs.StringVar(&cfg.ControlPlane, "control-plane", envOr("MLOOP_CONTROL_PLANE", envOr("MLOOP_SERVER", cfg.ControlPlane)), "`URL` of the mloop server whose deployments to serve [MLOOP_CONTROL_PLANE, else MLOOP_SERVER]")
	fs.StringVar(&cfg.Addr, "addr", envOr("MLOOP_SERVE_ADDR", cfg.Addr), "address to listen on [MLOOP_SERVE_ADDR]")
	fs.StringVar(&cfg.CacheDir, "cache-dir", envOr("MLOOP_SERVE_CACHE", ""), "folder for fetched model files, reused across restarts (default: a temporary folder removed on exit) [MLOOP_SERVE_CACHE]")
	fs.StringVar(&cfg.Artifacts, "artifacts", envOr("MLOOP_ARTIFACTS", ""), "artifact store the server uses (folder, file:// or s3://…), to write payload logs to; without it no payloads are logged [MLOOP_ARTIFACTS]")
	payloadLog, err := envBool("MLOOP_PAYLOAD_LOG", cfg.PayloadLog)
	if err != nil {
		fmt.Fprintf(stderr, "mloop serve: %v\n", err)
		return exitUsage
	}
	fs.BoolVar(&cfg.PayloadLog, "payload-log", payloadLog, "log payloads (inputs, outputs, latency) to --artifacts; --payload-log=false turns it off [MLOOP_PAYLOAD_LOG]")
	monitorOn, err := envBool("MLOOP_MONITOR", cfg.Monitor)
	if err != nil {
		fmt.Fprintf(stderr, "mloop serve: %v\n", err)
		return exitUsage
	}
	fs.BoolVar(&cfg.Monitor, "monitor", monitorOn, "forward what this replica serves to the server's monitor (windows, drift, feedback quality, rollout judgement); --monitor=false turns it off [MLOOP_MONITOR]")
	logLevel := fs.String("log-level", envOr("MLOOP_LOG_LEVEL", "info"), "log level: debug, info, warn, error [MLOOP_LOG_LEVEL]")
	logFormat := fs.String("log-format", envOr("MLOOP_LOG_FORMAT", "text"), "log format: text or json [MLOOP_LOG_FORMAT]")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long in-flight requests may take to finish on shutdown")
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	if strings.TrimSpace(cfg.ControlPlane) == "" {
		fmt.Fprintln(stderr, "mloop serve: missing --control-plane URL: the mloop server whose deployments to serve")
		return exitUsage
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "mloop serve: %v\n", err)
		return exitUsage
	}
	rep := NewReplica()
	rep.Config, rep.Logger, rep.ProcessOutput = cfg, logger, stderr
	if err := rep.Open(ctx); err != nil {
		fmt.Fprintf(stderr, "mloop serve: %s\n", errorText(err))
		if mloop.ErrorCode(err) == mloop.EUNAVAILABLE {
			fmt.Fprintf(stderr, "  is the server running? start one with `mloop server`, or point --control-plane (MLOOP_CONTROL_PLANE) at it (now %s)\n", cfg.ControlPlane)
		}
		return exitFailure
	}
	fmt.Fprintf(stdout, "mloop serve listening on %s, serving the deployments of %s\n", rep.URL(), strings.TrimRight(cfg.ControlPlane, "/"))
	return runUntilDone(ctx, "mloop serve", rep, logger, stderr)
}
