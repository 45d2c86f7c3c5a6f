package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/quickstart"
)

const quickstartUsage = `Usage: mloop quickstart [flags]

Plays mloop's whole loop on real data (NOAA's daily weather in Seattle,
2014): starts a server with a fresh data folder, pushes the first months as
dataset versions, runs the pipeline (validate → built-in gbdt training →
evaluate against the champion → gate → register), deploys the champion with
a canary rollout policy, replays May–September as live traffic over HTTP
with feedback labels, and lets monitoring, alert rules, the retraining
trigger and the rollout controller do the rest. It narrates each event and
ends with a summary table.

Scenarios (--scenario):
  retrain  the winter model fails in summer: live accuracy drops, the alert
           retrains on the newest data, the candidate beats the champion on
           the same month, serves as a canary and is promoted (default)
  broken-labels
           the retrained model is worse: an export bug inverted the label in
           its training and test data; it passes the gate offline, fails
           live against the app's true labels, and its canary is rolled back

Afterwards the server keeps running (Ctrl-C stops it) so that the mloop
commands can look around: mloop story weather, mloop monitor weather,
mloop deploy show weather, mloop pipeline runs. --exit stops it instead.

Exit status: 0 the scenario completed; 1 it failed; 2 bad flags.

Flags:
`

// runQuickstart runs `mloop quickstart`.
func runQuickstart(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mloop quickstart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, quickstartUsage); fs.PrintDefaults() }
	dataDir := fs.String("data", "", "data folder of the quickstart's server (default: a new temporary folder); it must be new or empty")
	addr := fs.String("addr", "127.0.0.1:5151", "address of the quickstart's server (another free port is taken when it is busy)")
	scenarioName := fs.String("scenario", string(quickstart.ScenarioRetrain), "retrain or broken-labels")
	window := fs.Duration("window", 3*time.Second, "monitoring window: each replayed month fills one")
	exit := fs.Bool("exit", false, "stop the server at the end instead of leaving it running")
	asJSON := fs.Bool("json", false, "print the summary as JSON (the narration still goes to stderr)")
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	scenario, err := quickstart.ParseScenario(*scenarioName)
	if err != nil {
		fmt.Fprintf(stderr, "mloop quickstart: %s\n", mloop.ErrorMessage(err))
		return exitUsage
	}
	if *window < time.Second {
		fmt.Fprintf(stderr, "mloop quickstart: --window %s: use at least 1s\n", *window)
		return exitUsage
	}
	dir := *dataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mloop-quickstart-"); err != nil {
			fmt.Fprintf(stderr, "mloop quickstart: %v\n", err)
			return exitFailure
		}
	} else if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		fmt.Fprintf(stderr, "mloop quickstart: --data %s is not empty: give a new folder (the quickstart creates its datasets, model and deployment from scratch)\n", dir)
		return exitUsage
	}
	if dir, err = filepath.Abs(dir); err != nil {
		fmt.Fprintf(stderr, "mloop quickstart: %v\n", err)
		return exitFailure
	}
	narration := stdout
	if *asJSON {
		narration = stderr
	}
	m, logFile, err := openQuickstartServer(ctx, dir, *addr, *window)
	if err != nil {
		fmt.Fprintf(stderr, "mloop quickstart: %v\n", err)
		return exitFailure
	}
	defer logFile.Close()
	logPath := logFile.Name()
	fmt.Fprintf(narration, "mloop quickstart: server %s, data in %s (server log: %s)\n", m.URL(), dir, logPath)
	sum, err := quickstart.Run(ctx, quickstart.Options{Server: m.URL(), Dir: filepath.Join(dir, "quickstart"),
		Scenario: scenario, Window: *window, Out: narration})
	if err == nil {
		if *asJSON {
			err = json.NewEncoder(stdout).Encode(sum)
		} else if err = sum.WriteText(stdout); err == nil && sum.Story != nil {
			fmt.Fprintln(stdout)
			err = writeStory(stdout, sum.Story)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "mloop quickstart: %s\n", mloop.ErrorMessage(err))
		_ = m.Close()
		return exitFailure
	}
	if *exit {
		if err := m.Close(); err != nil {
			fmt.Fprintf(stderr, "mloop quickstart: %v\n", err)
			return exitFailure
		}
		return exitOK
	}
	fmt.Fprintf(narration, "\nThe server is still running at %s — try:\n  export MLOOP_SERVER=%s\n  mloop story %s\n  mloop monitor %s\n  mloop deploy show %s\nCtrl-C stops it.\n",
		m.URL(), m.URL(), quickstart.Deployment, quickstart.Deployment, quickstart.Deployment)
	return runUntilDone(ctx, "mloop quickstart", m, m.Logger, stderr)
}

// openQuickstartServer starts the quickstart's server in dir, logging to
// the returned file there (the caller closes it after the server): on
// addr, or on a free port when addr is busy.
func openQuickstartServer(ctx context.Context, dir, addr string, window time.Duration) (*Main, *os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	open := func(addr string) (*Main, error) {
		m := NewMain()
		m.Config.Addr, m.Config.DataDir, m.Config.MonitorWindow = addr, filepath.Join(dir, "server"), window
		m.Logger = slog.New(slog.NewTextHandler(logFile, nil))
		m.ProcessOutput = logFile
		return m, m.Open(ctx)
	}
	m, err := open(addr)
	if err != nil && errors.Is(err, syscall.EADDRINUSE) {
		m, err = open("127.0.0.1:0")
	}
	if err != nil {
		logFile.Close()
		return nil, nil, err
	}
	return m, logFile, nil
}
