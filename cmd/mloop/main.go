// Command mloop is the mloop binary: the server (control plane, MLflow
// compatible tracking and registry API) and its client commands.
//
// This package only wires: Main (server.go) builds every component by hand,
// and end-to-end tests reuse it on 127.0.0.1:0 with a temporary folder.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// Exit codes. They mean the same thing for every command.
const (
	exitOK      = 0 // success
	exitFailure = 1 // the command ran and failed (server error, unreachable store, …)
	exitUsage   = 2 // bad flags or arguments; nothing was done
)

// Version is the release version, set at build time with
// -ldflags "-X main.Version=v1.2.3"; builds from source report the module
// version or "dev".
var Version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// usage is the top-level help.
const usage = `mloop closes the machine-learning loop: tracking, registry, data, pipelines, serving.

Usage:
  mloop <command> [flags]

Commands:
  quickstart  the whole loop on real data in about a minute: data, pipeline, deployment,
            monitoring, alerts, retraining, canary (start here)
  server    run the mloop server (MLflow-compatible tracking and model registry API,
            deployments and the serving data plane)
  data      versioned datasets: push, list, show, pull, schema, validate, drift
  pipeline  run pipelines (mloop.yaml) and follow them: run, runs, show, logs, cancel
  trigger   start pipeline runs on new data, a schedule or events: create, list, pause, …
  event     post an event that triggers listen to (monitoring alerts, any client)
  lineage   what produced a dataset version, artifact or model version, and what used it
  model     registered models: register a local model as a new version
  deploy    deployments: create, update (canary, shadow), promote, rollback, list, show
  serve     run a data-plane-only replica that serves a server's deployments
  predict   send rows to a deployment and print its predictions
  monitor   a deployment's monitoring windows: drift, data quality, live quality
  feedback  push ground-truth labels for served predictions (by request id)
  alert     alert rules on monitoring windows (webhooks, retraining) and their alerts
  story     how a deployment came to serve what it serves: alert → run → model → rollout
  train     train a model on local data with a built-in trainer (gbdt)
  version   print the version

Run 'mloop <command> -h' for a command's flags.
`

// run executes the command in args and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "quickstart":
		return runQuickstart(ctx, rest, stdout, stderr)
	case "server":
		return runServer(ctx, rest, stdout, stderr)
	case "data":
		return runData(ctx, rest, stdout, stderr)
	case "pipeline":
		return runPipeline(ctx, rest, stdout, stderr)
	case "trigger":
		return runTrigger(ctx, rest, stdout, stderr)
	case "event":
		return runEvent(ctx, rest, stdout, stderr)
	case "lineage":
		return runLineage(ctx, rest, stdout, stderr)
	case "model":
		return runModel(ctx, rest, stdout, stderr)
	case "deploy":
		return runDeploy(ctx, rest, stdout, stderr)
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "predict":
		return runPredict(ctx, rest, stdout, stderr, os.Stdin)
	case "monitor":
		return runMonitor(ctx, rest, stdout, stderr)
	case "feedback":
		return runFeedback(ctx, rest, stdout, stderr, os.Stdin)
	case "alert":
		return runAlert(ctx, rest, stdout, stderr)
	case "story":
		return runStory(ctx, rest, stdout, stderr)
	case "train":
		return runTrain(ctx, rest, stdout, stderr)
	case "version":
		return runVersion(rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mloop: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

// versionString returns the version of this binary.
func versionString() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mloop version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print as JSON")
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if *asJSON {
		_ = json.NewEncoder(stdout).Encode(map[string]string{
			"version": versionString(), "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
		})
		return exitOK
	}
	fmt.Fprintf(stdout, "mloop %s (%s %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

// usageExit returns the exit code for a flag parsing error: 0 for -h.
func usageExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}
