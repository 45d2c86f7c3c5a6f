package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/client"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/router"
)

const deployUsage = `Usage: mloop deploy <command> [arguments] [flags]

Deployments: named endpoints serving a model version, with an optional
canary (a share of traffic) and shadow (a copy of traffic, answers
compared and discarded). REF is MODEL@VERSION (flights@3) or MODEL@ALIAS
(flights@champion, followed when the alias moves). Every change is atomic
and recorded as an event.

Commands:
  create NAME --model REF [--canary REF --canary-percent N] [--shadow REF]
              [--rollout [--rollout-percent N] [--rollout-window D] …]
                  create a deployment and wait until it serves; with
                  --rollout, moves of the alias in --model REF go through
                  a canary promoted or rolled back on live figures
  update NAME [--model REF] [--canary REF] [--canary-percent N] [--no-canary]
              [--shadow REF] [--no-shadow] [--rollout …] [--no-rollout] …
                  change what a deployment serves (only the flags given)
  promote NAME    make the canary the primary, with all traffic
  rollback NAME   remove the canary; without one, return the primary to
                  the model version it served before
  delete NAME     delete a deployment
  list            list the deployments
  show NAME       a deployment's slots, serving status and recent events
  events NAME     a deployment's events, newest first

Predict with ` + "`mloop predict NAME --input FILE`" + `, or at the server's address:
POST /v2/models/NAME/infer, /v1/models/NAME:predict, /serving-endpoints/NAME/invocations.

Every command takes --server (default $MLOOP_SERVER, else ` + client.DefaultServer + `)
and --json (machine-readable output on stdout).

Exit status: 0 success; 1 the command failed; 2 bad usage, nothing done.

Run 'mloop deploy <command> -h' for a command's flags.
`

// runDeploy dispatches `mloop deploy <command>`.
func runDeploy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, deployUsage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	d := &dataCmd{name: "mloop deploy " + cmd, stdout: stdout, stderr: stderr}
	switch cmd {
	case "create":
		return d.deployCreate(ctx, rest)
	case "update":
		return d.deployUpdate(ctx, rest)
	case "promote":
		return d.deployPromote(ctx, rest)
	case "rollback":
		return d.deployRollback(ctx, rest)
	case "delete", "rm":
		d.name = "mloop deploy delete"
		return d.deployDelete(ctx, rest)
	case "list", "ls":
		d.name = "mloop deploy list"
		return d.deployList(ctx, rest)
	case "show":
		return d.deployShow(ctx, rest)
	case "events":
		return d.deployEvents(ctx, rest)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, deployUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mloop deploy: unknown command %q\n\n%s", cmd, deployUsage)
		return exitUsage
	}
}

// deployFlags are the flags of create and update.
type deployFlags struct {
	model, canary, shadow string
	canaryPercent         int
	noCanary, noShadow    bool
	batchSize             int
	batchDelay            time.Duration
	payloadSample         float64
	maxBatchRows          int
	rbWindow              time.Duration
	rbMinRequests         int
	rbMaxErrorIncrease    float64
	rbMaxLatencyRatio     float64
	rbMinLatencyIncrease  time.Duration
	noAutoRollback        bool
	rollout, noRollout    bool
	roPercent             int
	roWindow, roMaxWait   time.Duration
	roMinRequests         int
	roMinLabels           int
	roMetric              string
	roMaxDegradation      float64
	roMaxErrorIncrease    float64
	roMaxLatencyRatio     float64
	roMinLatencyIncrease  time.Duration
	wait                  bool
	waitTimeout           time.Duration

	set map[string]bool // flags given on the command line
}

// register adds the flags to fs; update adds --no-canary and --no-shadow.
func (f *deployFlags) register(fs *flag.FlagSet, update bool) {
	fs.StringVar(&f.model, "model", "", "primary model `REF`: MODEL@VERSION or MODEL@ALIAS")
	fs.StringVar(&f.canary, "canary", "", "canary model `REF`, taking --canary-percent of traffic")
	fs.IntVar(&f.canaryPercent, "canary-percent", 0, "percent of traffic the canary takes, 1 to 100")
	fs.StringVar(&f.shadow, "shadow", "", "shadow model `REF`: gets a copy of traffic, its answers compared with the primary's and discarded")
	if update {
		fs.BoolVar(&f.noCanary, "no-canary", false, "remove the canary (all traffic to the primary)")
		fs.BoolVar(&f.noShadow, "no-shadow", false, "remove the shadow")
	}
	fs.IntVar(&f.batchSize, "batch-size", 0, "adaptive batching: most rows predicted together (0: off)")
	fs.DurationVar(&f.batchDelay, "batch-delay", 0, "adaptive batching: longest a request waits for others, such as 2ms")
	fs.Float64Var(&f.payloadSample, "payload-sample", 1, "share of requests logged with inputs and outputs, 0 to 1")
	fs.IntVar(&f.maxBatchRows, "max-batch-rows", 0, fmt.Sprintf("most rows one request may carry (default %d)", deploy.DefaultMaxBatchRows))
	fs.DurationVar(&f.rbWindow, "rollback-window", 0, fmt.Sprintf("automatic rollback: how far back canary requests count (default %s)", deploy.DefaultRollbackWindow))
	fs.IntVar(&f.rbMinRequests, "rollback-min-requests", 0, fmt.Sprintf("automatic rollback: canary requests needed before it is judged (default %d)", deploy.DefaultRollbackMinRequests))
	fs.Float64Var(&f.rbMaxErrorIncrease, "rollback-max-error-rate-increase", 0, fmt.Sprintf("automatic rollback: canary error rate above the primary's beyond which it is rolled back (default %g)", deploy.DefaultMaxErrorRateIncrease))
	fs.DurationVar(&f.rbMinLatencyIncrease, "rollback-min-latency-increase", 0, fmt.Sprintf("automatic rollback: the smallest canary p99 increase over the primary's that counts (default %v; raise it for thin traffic)", deploy.DefaultMinLatencyIncrease))
	fs.Float64Var(&f.rbMaxLatencyRatio, "rollback-max-latency-ratio", 0, fmt.Sprintf("automatic rollback: canary p99 latency over the primary's beyond which it is rolled back (default %g)", float64(deploy.DefaultMaxLatencyRatio)))
	fs.BoolVar(&f.noAutoRollback, "no-auto-rollback", false, "never roll a canary back automatically")
	fs.BoolVar(&f.rollout, "rollout", false, "automatic rollout: when the alias the primary follows moves, serve the new version as a canary, judge it after --rollout-window and promote it or roll it back (and set the alias back); the other --rollout-… flags imply it")
	fs.IntVar(&f.roPercent, "rollout-percent", 0, fmt.Sprintf("automatic rollout: percent of traffic the canary takes, 1 to 99 (default %d)", deploy.DefaultRolloutPercent))
	fs.DurationVar(&f.roWindow, "rollout-window", 0, fmt.Sprintf("automatic rollout: how long the canary serves before it is judged (default %s)", deploy.DefaultRolloutWindow))
	fs.IntVar(&f.roMinRequests, "rollout-min-requests", 0, fmt.Sprintf("automatic rollout: canary requests needed to judge it (default %d)", deploy.DefaultRolloutMinRequests))
	fs.DurationVar(&f.roMaxWait, "rollout-max-wait", 0, fmt.Sprintf("automatic rollout: a canary still lacking evidence after this long is rolled back (default %d× the window)", deploy.DefaultRolloutMaxWaitFactor))
	fs.Float64Var(&f.roMaxErrorIncrease, "rollout-max-error-rate-increase", 0, fmt.Sprintf("automatic rollout: canary error rate above the primary's beyond which it is rolled back (default %g)", deploy.DefaultRolloutMaxErrorRateIncrease))
	fs.DurationVar(&f.roMinLatencyIncrease, "rollout-min-latency-increase", 0, fmt.Sprintf("automatic rollout: the smallest canary p99 increase over the primary's that counts (default %v; raise it for thin traffic)", deploy.RolloutMinLatencyIncrease))
	fs.Float64Var(&f.roMaxLatencyRatio, "rollout-max-latency-ratio", 0, fmt.Sprintf("automatic rollout: canary p99 latency over the primary's beyond which it is rolled back (default %g)", float64(deploy.DefaultRolloutMaxLatencyRatio)))
	fs.StringVar(&f.roMetric, "rollout-metric", "", "automatic rollout: live-quality `METRIC` (from feedback labels) compared with the primary's: accuracy, roc_auc, f1, log_loss, rmse, mae, r2, … (default: none)")
	fs.IntVar(&f.roMinLabels, "rollout-min-labels", 0, fmt.Sprintf("automatic rollout: feedback labels each side needs when --rollout-metric is set (default %d)", deploy.DefaultRolloutMinLabels))
	fs.Float64Var(&f.roMaxDegradation, "rollout-max-degradation", 0, fmt.Sprintf("automatic rollout: how much worse than the primary's the canary's metric may be, absolute (default %g)", deploy.DefaultRolloutMaxDegradation))
	if update {
		fs.BoolVar(&f.noRollout, "no-rollout", false, "remove the automatic rollout policy (alias moves swap the primary at once again)")
	}
	addWaitFlags(fs, f)
}

// given records which flags fs saw on the command line.
func (f *deployFlags) given(fs *flag.FlagSet) {
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
}

// parseDeployFlags parses the arguments of create (update false) or
// update: the deployment's name and the flags, checked. ok is false with
// the exit code when they are wrong.
func (d *dataCmd) parseDeployFlags(usage string, args []string, update bool) (f deployFlags, name string, code int, ok bool) {
	fs := d.flags(usage)
	f.register(fs, update)
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return f, "", code, false
	}
	f.given(fs)
	if err := f.check(); err != nil {
		return f, "", d.usageError("%v", err), false
	}
	return f, pos[0], exitOK, true
}

// check validates the values given, with a usage message for the first
// bad one.
func (f *deployFlags) check() error {
	switch {
	case f.set["canary-percent"] && (f.canaryPercent < 1 || f.canaryPercent > 100):
		return fmt.Errorf("invalid --canary-percent %d: use 1 to 100 (or promote the canary: it then serves all traffic as the primary)", f.canaryPercent)
	case f.set["payload-sample"] && (f.payloadSample < 0 || f.payloadSample > 1):
		return fmt.Errorf("invalid --payload-sample %g: use a share from 0 (log nothing) to 1 (log every request)", f.payloadSample)
	case f.batchSize < 0 || f.batchDelay < 0 || f.maxBatchRows < 0:
		return errors.New("--batch-size, --batch-delay and --max-batch-rows cannot be negative")
	case f.rbWindow < 0 || f.rbMinRequests < 0 || f.rbMaxErrorIncrease < 0 || f.rbMaxLatencyRatio < 0 || f.rbMinLatencyIncrease < 0:
		return errors.New("the --rollback-… flags cannot be negative")
	case f.noCanary && (f.set["canary"] || f.set["canary-percent"]):
		return errors.New("--no-canary cannot be combined with --canary or --canary-percent")
	case f.noShadow && f.set["shadow"]:
		return errors.New("--no-shadow cannot be combined with --shadow")
	case f.set["rollout-percent"] && (f.roPercent < 1 || f.roPercent > 99):
		return fmt.Errorf("invalid --rollout-percent %d: use 1 to 99", f.roPercent)
	case f.roWindow < 0 || f.roMaxWait < 0 || f.roMinRequests < 0 || f.roMinLabels < 0 || f.roMaxDegradation < 0 ||
		f.roMaxErrorIncrease < 0 || f.roMaxLatencyRatio < 0 || f.roMinLatencyIncrease < 0:
		return errors.New("the --rollout-… flags cannot be negative")
	case f.noRollout && f.rolloutGiven():
		return errors.New("--no-rollout cannot be combined with --rollout or a --rollout-… flag")
	case f.waitTimeout <= 0:
		return fmt.Errorf("invalid --wait-timeout %s: want a positive duration", f.waitTimeout)
	}
	return nil
}

// parseRefFlag parses a model reference flag.
func parseRefFlag(flagName, v string) (deploy.Ref, error) {
	r, err := deploy.ParseRef(v)
	if err != nil {
		return deploy.Ref{}, fmt.Errorf("invalid --%s: %s", flagName, mloop.ErrorMessage(err))
	}
	return r, nil
}

// rollbackPolicy returns p with the given --rollback-… flags applied.
func (f *deployFlags) rollbackPolicy(p deploy.RollbackPolicy) deploy.RollbackPolicy {
	if f.set["rollback-window"] {
		p.Window = deploy.Duration(f.rbWindow)
	}
	if f.set["rollback-min-requests"] {
		p.MinRequests = f.rbMinRequests
	}
	if f.set["rollback-max-error-rate-increase"] {
		p.MaxErrorRateIncrease = f.rbMaxErrorIncrease
	}
	if f.set["rollback-max-latency-ratio"] {
		p.MaxLatencyRatio = f.rbMaxLatencyRatio
	}
	if f.set["rollback-min-latency-increase"] {
		p.MinLatencyIncrease = deploy.Duration(f.rbMinLatencyIncrease)
	}
	if f.set["no-auto-rollback"] {
		p.Disabled = f.noAutoRollback
	}
	return p
}

// rollbackGiven reports whether any flag of the rollback policy was given.
func (f *deployFlags) rollbackGiven() bool {
	for _, n := range []string{"rollback-window", "rollback-min-requests", "rollback-max-error-rate-increase", "rollback-max-latency-ratio",
		"rollback-min-latency-increase", "no-auto-rollback"} {
		if f.set[n] {
			return true
		}
	}
	return false
}

// rolloutFlags are the flags of the rollout policy.
var rolloutFlags = []string{"rollout", "rollout-percent", "rollout-window", "rollout-min-requests", "rollout-max-wait",
	"rollout-max-error-rate-increase", "rollout-max-latency-ratio", "rollout-min-latency-increase", "rollout-metric", "rollout-min-labels", "rollout-max-degradation"}

// rolloutGiven reports whether --rollout or a --rollout-… flag was given
// (--rollout=false alone is not).
func (f *deployFlags) rolloutGiven() bool {
	for _, n := range rolloutFlags {
		if f.set[n] && (n != "rollout" || f.rollout) {
			return true
		}
	}
	return false
}

// rolloutPolicy returns cur (nil: a new policy with the defaults) with the
// given --rollout-… flags applied.
func (f *deployFlags) rolloutPolicy(cur *deploy.RolloutPolicy) *deploy.RolloutPolicy {
	var p deploy.RolloutPolicy
	if cur != nil {
		p = *cur
	}
	if f.set["rollout-percent"] {
		p.CanaryPercent = f.roPercent
	}
	if f.set["rollout-window"] {
		p.Window = deploy.Duration(f.roWindow)
	}
	if f.set["rollout-min-requests"] {
		p.MinRequests = f.roMinRequests
	}
	if f.set["rollout-max-wait"] {
		p.MaxWait = deploy.Duration(f.roMaxWait)
	}
	if f.set["rollout-max-error-rate-increase"] {
		p.MaxErrorRateIncrease = f.roMaxErrorIncrease
	}
	if f.set["rollout-max-latency-ratio"] {
		p.MaxLatencyRatio = f.roMaxLatencyRatio
	}
	if f.set["rollout-min-latency-increase"] {
		p.MinLatencyIncrease = deploy.Duration(f.roMinLatencyIncrease)
	}
	if f.set["rollout-metric"] {
		p.Metric = f.roMetric
	}
	if f.set["rollout-min-labels"] {
		p.MinLabels = f.roMinLabels
	}
	if f.set["rollout-max-degradation"] {
		p.MaxDegradation = f.roMaxDegradation
	}
	return &p
}

// batching returns b with --batch-size and --batch-delay applied.
func (f *deployFlags) batching(b deploy.Batching) deploy.Batching {
	if f.set["batch-size"] {
		b.MaxBatchSize = f.batchSize
	}
	if f.set["batch-delay"] {
		b.MaxDelay = deploy.Duration(f.batchDelay)
	}
	return b
}

const deployCreateUsage = `Usage: mloop deploy create NAME --model REF [flags]

Creates deployment NAME serving the model REF (MODEL@VERSION, or
MODEL@ALIAS to follow an alias), optionally with a canary taking
--canary-percent of traffic and a shadow getting a copy of it. The server
checks every reference first: nothing is created when one does not resolve.

With --rollout (or any --rollout-… flag) and --model MODEL@ALIAS, a move of
the alias does not swap the primary: the new version serves as a canary
taking --rollout-percent of traffic, is judged after --rollout-window on
its error rate, p99 latency and (with --rollout-metric) live quality from
feedback, then promoted, or rolled back with the alias set back.

By default the command then waits until the server's data plane serves the
deployment (GET /v2/models/NAME/ready answers 200), printing progress; a
model that fails to load is reported with the reason.
`

// deployCreate runs `mloop deploy create NAME`.
func (d *dataCmd) deployCreate(ctx context.Context, args []string) int {
	f, name, code, ok := d.parseDeployFlags(deployCreateUsage, args, false)
	if !ok {
		return code
	}
	if f.model == "" {
		return d.usageError("missing --model REF: the model version to serve, such as flights@3 or flights@champion")
	}
	spec := deploy.Spec{MaxBatchRows: f.maxBatchRows}
	var err error
	if spec.Model, err = parseRefFlag("model", f.model); err != nil {
		return d.usageError("%v", err)
	}
	if f.canary != "" {
		r, err := parseRefFlag("canary", f.canary)
		if err != nil {
			return d.usageError("%v", err)
		}
		if !f.set["canary-percent"] {
			return d.usageError("--canary needs --canary-percent N: the percent of traffic (1 to 100) the canary takes")
		}
		spec.Canary, spec.CanaryPercent = &r, f.canaryPercent
	} else if f.set["canary-percent"] {
		return d.usageError("--canary-percent needs --canary REF: the model version that takes that share")
	}
	if f.shadow != "" {
		r, err := parseRefFlag("shadow", f.shadow)
		if err != nil {
			return d.usageError("%v", err)
		}
		spec.Shadow = &r
	}
	spec.Batching = f.batching(deploy.Batching{})
	if f.set["payload-sample"] {
		spec.PayloadSample = &f.payloadSample
	}
	spec.Rollback = f.rollbackPolicy(deploy.RollbackPolicy{})
	if f.rolloutGiven() {
		if spec.Model.Alias == "" {
			return d.usageError("--rollout needs --model MODEL@ALIAS (such as %s@champion): the rollout policy sends the releases of the alias the primary follows through a canary", spec.Model.Model)
		}
		spec.Rollout = f.rolloutPolicy(nil)
	}
	dep, err := d.client.CreateDeployment(ctx, name, spec)
	if err != nil {
		d.fail(err)
		if mloop.ErrorCode(err) == mloop.EEXISTS {
			fmt.Fprintf(d.stderr, "  change it with `mloop deploy update %s …`, or choose another name\n", name)
		}
		if mloop.IsNotFound(err) {
			fmt.Fprintln(d.stderr, "  register the model first with `mloop model register NAME PATH`")
		}
		return exitFailure
	}
	return d.afterChange(ctx, "created", dep, f)
}

// afterChange reports the change done (verb: created, updated) with the
// deployment's slots, waits for it when asked, then prints the deployment
// (--json) or how to use it.
func (d *dataCmd) afterChange(ctx context.Context, verb string, dep *deploy.Deployment, f deployFlags) int {
	if !d.json {
		fmt.Fprintf(d.stdout, "%s deployment %s (generation %d)\n", verb, dep.Name, dep.Generation)
		d.writeSlots(dep, "  ")
	}
	if f.wait {
		if code := d.waitServed(ctx, dep, f.waitTimeout); code != exitOK {
			return code
		}
	}
	if d.json {
		return d.writeJSON(dep)
	}
	if f.wait {
		fmt.Fprintf(d.stdout, "predict with `mloop predict %s --input FILE`, or POST %s/v2/models/%s/infer\n", dep.Name, d.client.BaseURL(), dep.Name)
	}
	return exitOK
}

// waitServed waits until the server's data plane serves dep's generation:
// its status reports it ready (or, from a server that reports no status,
// /v2/models/NAME/ready answers 200). Progress goes to stderr.
func (d *dataCmd) waitServed(ctx context.Context, dep *deploy.Deployment, timeout time.Duration) int {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	progress := func(s string) {
		if s != last {
			fmt.Fprintf(d.stderr, "%s: %s\n", d.name, s)
			last = s
		}
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ready, err := d.client.ModelReady(ctx, dep.Name)
		if err != nil && ctx.Err() == nil {
			if mloop.ErrorCode(err) == mloop.ENOTIMPLEMENTED {
				progress("the server does not serve models (control plane only): not waiting; start `mloop serve --control-plane " + d.client.BaseURL() + "` replicas to serve it")
				return exitOK
			}
			return d.fail(err)
		}
		info, err := d.client.GetDeployment(ctx, dep.Name)
		if err != nil && ctx.Err() == nil {
			return d.fail(err)
		}
		if info != nil && info.Serving != nil {
			st := info.Serving
			if st.Generation >= dep.Generation && st.Ready && ready {
				progress(fmt.Sprintf("deployment %s serves generation %d", dep.Name, st.Generation))
				return exitOK
			}
			for _, r := range st.Revisions {
				// A revision of this change that failed to load (the data
				// plane may still report the previous generation, which
				// it keeps serving).
				if r.State == "failed" && hasRevision(dep, r.Revision) {
					msg := r.Error
					if msg == "" {
						msg = fmt.Sprintf("revision %d (%s/%d) failed to load", r.Revision, r.Model, r.Version)
					}
					fmt.Fprintf(d.stderr, "%s: %s\n", d.name, msg)
					fmt.Fprintf(d.stderr, "  the change is made and the server keeps retrying; see `mloop deploy show %s`, fix it with `mloop deploy update %s …` or `mloop deploy rollback %s`\n", dep.Name, dep.Name, dep.Name)
					return exitFailure
				}
			}
			progress(servingProgress(dep, st))
		} else if ready && (info == nil || info.Serving == nil) && dep.Generation == 1 {
			// A server that reports no status: readiness is all there is.
			progress(fmt.Sprintf("deployment %s is ready", dep.Name))
			return exitOK
		} else {
			progress(fmt.Sprintf("waiting for the server to load deployment %s (generation %d)", dep.Name, dep.Generation))
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				fmt.Fprintf(d.stderr, "%s: deployment %s is not served after %s: see `mloop deploy show %s` (the change itself is made; --wait=false does not wait)\n", d.name, dep.Name, timeout, dep.Name)
				return exitFailure
			}
			return d.fail(ctx.Err())
		case <-tick.C:
		}
	}
}

// hasRevision reports whether dep serves revision rev.
func hasRevision(dep *deploy.Deployment, rev int64) bool {
	for _, s := range dep.Slots {
		if s.Revision == rev {
			return true
		}
	}
	return false
}

// servingProgress says what the data plane is doing with dep.
func servingProgress(dep *deploy.Deployment, st *router.DeploymentStatus) string {
	var parts []string
	for _, r := range st.Revisions {
		parts = append(parts, fmt.Sprintf("%s revision %d (%s/%d) %s", r.Role, r.Revision, r.Model, r.Version, r.State))
	}
	s := fmt.Sprintf("waiting for generation %d of %s (serving %d)", dep.Generation, dep.Name, st.Generation)
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	return s
}

const deployUpdateUsage = `Usage: mloop deploy update NAME [flags]

Changes what deployment NAME serves, atomically. Only the flags given
change anything: --canary REF --canary-percent N adds or replaces the
canary, --no-canary removes it, --shadow REF / --no-shadow likewise, --model
REF replaces the primary (the new version gets a new revision; requests in
flight finish on the old one). By default the command waits until the
server's data plane serves the change.
`

// deployUpdate runs `mloop deploy update NAME`.
func (d *dataCmd) deployUpdate(ctx context.Context, args []string) int {
	f, name, code, ok := d.parseDeployFlags(deployUpdateUsage, args, true)
	if !ok {
		return code
	}
	var u deploy.Update
	changes := 0
	refFlag := func(flagName, v string) (*deploy.Ref, bool) {
		if !f.set[flagName] {
			return nil, true
		}
		r, err := parseRefFlag(flagName, v)
		if err != nil {
			d.usageError("%v", err)
			return nil, false
		}
		changes++
		return &r, true
	}
	var ok2 bool
	if u.Model, ok2 = refFlag("model", f.model); !ok2 {
		return exitUsage
	}
	if u.Canary, ok2 = refFlag("canary", f.canary); !ok2 {
		return exitUsage
	}
	if u.Shadow, ok2 = refFlag("shadow", f.shadow); !ok2 {
		return exitUsage
	}
	if f.noCanary {
		u.Canary = &deploy.Ref{}
		changes++
	}
	if f.noShadow {
		u.Shadow = &deploy.Ref{}
		changes++
	}
	if f.set["canary-percent"] {
		u.CanaryPercent = &f.canaryPercent
		changes++
	}
	if f.set["payload-sample"] {
		u.PayloadSample = &f.payloadSample
		changes++
	}
	if f.set["max-batch-rows"] {
		u.MaxBatchRows = &f.maxBatchRows
		changes++
	}
	if f.noRollout {
		u.Rollout = &deploy.RolloutPolicy{Disabled: true}
		changes++
	}
	if f.set["batch-size"] || f.set["batch-delay"] || f.rollbackGiven() || f.rolloutGiven() {
		// Batching and the rollback policy are replaced whole: start from
		// the current ones so that the flags not given keep their value.
		cur, err := d.client.GetDeployment(ctx, name)
		if err != nil {
			return d.failDeployment(err)
		}
		if f.set["batch-size"] || f.set["batch-delay"] {
			b := f.batching(cur.Deployment.Spec.Batching)
			u.Batching = &b
			changes++
		}
		if f.rollbackGiven() {
			p := f.rollbackPolicy(cur.Deployment.Spec.Rollback)
			u.Rollback = &p
			changes++
		}
		if f.rolloutGiven() {
			u.Rollout = f.rolloutPolicy(cur.Deployment.Spec.Rollout)
			changes++
		}
	}
	if changes == 0 {
		return d.usageError("nothing to change: give --model, --canary, --canary-percent, --no-canary, --shadow, --no-shadow, --batch-size, --batch-delay, --payload-sample, --max-batch-rows, a --rollback-… flag, --rollout, a --rollout-… flag or --no-rollout")
	}
	dep, err := d.client.UpdateDeployment(ctx, name, u)
	if err != nil {
		return d.failDeployment(err)
	}
	return d.afterChange(ctx, "updated", dep, f)
}

// failDeployment reports an error about a deployment, with what to do
// next for the common ones (the server's own messages say it for a
// refused change).
func (d *dataCmd) failDeployment(err error) int {
	d.fail(err)
	if mloop.IsNotFound(err) {
		fmt.Fprintln(d.stderr, "  `mloop deploy list` lists the deployments; `mloop model register` adds model versions")
	}
	return exitFailure
}

// addWaitFlags adds --wait and --wait-timeout, which every change takes.
func addWaitFlags(fs *flag.FlagSet, f *deployFlags) {
	fs.BoolVar(&f.wait, "wait", true, "wait until this server serves the change (--wait=false returns at once)")
	fs.DurationVar(&f.waitTimeout, "wait-timeout", 5*time.Minute, "how long --wait waits")
}

// deployPromote runs `mloop deploy promote NAME`.
func (d *dataCmd) deployPromote(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop deploy promote NAME [flags]\n\nMakes the canary the primary with all traffic, atomically. The canary's\nrevision keeps serving: nothing is reloaded.\n")
	var f deployFlags
	addWaitFlags(fs, &f)
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	dep, err := d.client.PromoteDeployment(ctx, pos[0])
	if err != nil {
		return d.failDeployment(err)
	}
	return d.writeAllToPrimary(ctx, "promoted the canary of", dep, f)
}

// writeAllToPrimary reports a change after which the primary serves all
// traffic (done: what was done to the deployment, before its name), or
// prints the deployment with --json.
// With --wait (the default) it first waits until this server serves the
// change, so that the next request is answered by the new primary.
func (d *dataCmd) writeAllToPrimary(ctx context.Context, done string, dep *deploy.Deployment, f deployFlags) int {
	if f.wait {
		if code := d.waitServed(ctx, dep, f.waitTimeout); code != exitOK {
			return code
		}
	}
	if d.json {
		return d.writeJSON(dep)
	}
	fmt.Fprintf(d.stdout, "%s %s (generation %d): %s serves all traffic\n", done, dep.Name, dep.Generation, slotSummary(dep.Slot(deploy.RolePrimary)))
	d.writeSlots(dep, "  ")
	return exitOK
}

// deployRollback runs `mloop deploy rollback NAME`.
func (d *dataCmd) deployRollback(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop deploy rollback NAME [flags]\n\nRolls deployment NAME back, atomically: with a canary, the canary is removed\nand the primary takes all traffic; without one, the primary returns to the\nmodel version it served before (a primary following an alias is then pinned).\n")
	reason := fs.String("reason", "", "why, recorded in the event (default: rolled back by $USER)")
	var f deployFlags
	addWaitFlags(fs, &f)
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	if *reason == "" {
		*reason = "rolled back by " + dash(currentUser())
	}
	dep, err := d.client.RollbackDeployment(ctx, pos[0], deploy.RollbackRequest{Reason: *reason})
	if err != nil {
		d.failDeployment(err)
		if mloop.ErrorCode(err) == mloop.ECONFLICT {
			fmt.Fprintf(d.stderr, "  `mloop deploy show %s` shows what it serves; `mloop deploy update %s --model REF` serves another version\n", pos[0], pos[0])
		}
		return exitFailure
	}
	return d.writeAllToPrimary(ctx, "rolled back", dep, f)
}

// deployDelete runs `mloop deploy delete NAME`.
func (d *dataCmd) deployDelete(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop deploy delete NAME [flags]\n\nDeletes deployment NAME: data planes stop serving it once its requests in\nflight have finished. Its events are kept.\n")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	if err := d.client.DeleteDeployment(ctx, pos[0]); err != nil {
		return d.failDeployment(err)
	}
	if d.json {
		return d.writeJSON(map[string]string{"deleted": pos[0]})
	}
	fmt.Fprintf(d.stdout, "deleted deployment %s\n", pos[0])
	return exitOK
}

// deployList runs `mloop deploy list`.
func (d *dataCmd) deployList(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop deploy list [flags]\n\nLists the deployments by name.\n")
	if _, code, ok := d.parse(fs, args, 0, 0); !ok {
		return code
	}
	deps, err := d.client.ListDeployments(ctx)
	if err != nil {
		return d.fail(err)
	}
	if d.json {
		return writeList(d, "deployments", deps)
	}
	if len(deps) == 0 {
		fmt.Fprintln(d.stdout, "no deployments yet: create one with `mloop deploy create NAME --model MODEL@VERSION`")
		return exitOK
	}
	tw := tabwriter.NewWriter(d.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPRIMARY\tCANARY\tSHADOW\tGENERATION\tUPDATED")
	for _, dep := range deps {
		canary := "-"
		if s := dep.Slot(deploy.RoleCanary); s != nil {
			canary = fmt.Sprintf("%s %d%%", slotVersion(s), s.Percent)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", dep.Name, slotVersion(dep.Slot(deploy.RolePrimary)), canary,
			slotVersion(dep.Slot(deploy.RoleShadow)), dep.Generation, formatTime(time.UnixMilli(dep.UpdatedAt)))
	}
	return d.flush(tw)
}

// slotVersion names a slot's model version and, when the slot follows an
// alias, the alias: "flights/3", "flights/3 (@champion)"; "-" for none.
func slotVersion(s *deploy.Slot) string {
	if s == nil {
		return "-"
	}
	v := s.Model + "/" + strconv.FormatInt(s.Version, 10)
	if s.Ref.Alias != "" {
		v += " (@" + s.Ref.Alias + ")"
	}
	return v
}

// slotSummary describes a slot in a sentence: "revision 2 (flights/4)".
func slotSummary(s *deploy.Slot) string {
	if s == nil {
		return "nothing"
	}
	return fmt.Sprintf("revision %d (%s)", s.Revision, slotVersion(s))
}

// writeSlots prints a deployment's slots as a table, each line indented.
func (d *dataCmd) writeSlots(dep *deploy.Deployment, indent string) {
	tw := tabwriter.NewWriter(d.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%sROLE\tREVISION\tMODEL VERSION\tREF\tFLAVOR\tTRAFFIC\n", indent)
	for _, s := range dep.Slots {
		traffic := fmt.Sprintf("%d%%", s.Percent)
		if s.Role == deploy.RoleShadow {
			traffic = "copy"
		}
		fmt.Fprintf(tw, "%s%s\t%d\t%s/%d\t%s\t%s\t%s\n", indent, s.Role, s.Revision, s.Model, s.Version, s.Ref, dash(s.Flavor), traffic)
	}
	tw.Flush()
}

// deployShow runs `mloop deploy show NAME`.
func (d *dataCmd) deployShow(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop deploy show NAME [flags]\n\nShows a deployment: what it serves (slots, revisions, model versions and\ntraffic), its settings, what this server's data plane serves of it (per\nrevision: state, requests, errors, latency, shadow agreement over the\nrollback window) and its latest events.\n")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	info, err := d.client.GetDeployment(ctx, pos[0])
	if err != nil {
		return d.failDeployment(err)
	}
	if d.json {
		if info.Events == nil {
			info.Events = []*deploy.Event{}
		}
		return d.writeJSON(info)
	}
	dep := info.Deployment
	w := d.stdout
	fmt.Fprintf(w, "deployment: %s\n", dep.Name)
	fmt.Fprintf(w, "generation: %d (updated %s, created %s)\n", dep.Generation, formatTime(time.UnixMilli(dep.UpdatedAt)), formatTime(time.UnixMilli(dep.CreatedAt)))
	fmt.Fprintf(w, "spec:       %s\n", specSummary(dep.Spec))
	fmt.Fprintf(w, "rollback:   %s\n", rollbackSummary(dep.Spec.Rollback))
	fmt.Fprintf(w, "rollout:    %s\n", rolloutSummary(dep.Spec))
	fmt.Fprintln(w, "\nslots:")
	d.writeSlots(dep, "  ")
	if c := dep.Slot(deploy.RoleCanary); c != nil && c.Rollout && dep.Spec.Rollout != nil {
		p := dep.Spec.Rollout.WithDefaults()
		start := time.UnixMilli(c.Since)
		fmt.Fprintf(w, "  rollout canary revision %d (%s/%d) started %s; judged at %s once it has %d requests (rolled back at %s without them)\n",
			c.Revision, c.Model, c.Version, formatTime(start), formatTime(start.Add(time.Duration(p.Window))), p.MinRequests,
			formatTime(start.Add(time.Duration(p.MaxWait))))
	}

	fmt.Fprintln(w)
	if st := info.Serving; st == nil {
		fmt.Fprintln(w, "serving on this server: not loaded (the server runs the control plane only, or has not loaded it yet)")
	} else {
		state := "not ready"
		if st.Ready {
			state = "ready"
		}
		fmt.Fprintf(w, "serving on this server: %s, generation %d\n", state, st.Generation)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  REVISION\tROLE\tMODEL VERSION\tSTATE\tREQUESTS\tERRORS\tP50\tP99\tIN FLIGHT\tAGREEMENT")
		for _, r := range st.Revisions {
			agreement := "-"
			if r.Compared > 0 {
				agreement = fmt.Sprintf("%.1f%% of %d (mean |diff| %.3g)", 100*r.Agreement, r.Compared, r.MeanAbsDiff)
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s/%d\t%s\t%d\t%d\t%s\t%s\t%d\t%s\n", r.Revision, r.Role, r.Model, r.Version, r.State,
				r.Requests, r.Errors, formatMillis(r.P50Millis), formatMillis(r.P99Millis), r.InFlight, agreement)
		}
		tw.Flush()
		for _, r := range st.Revisions {
			if r.Error != "" {
				fmt.Fprintf(w, "  %s\n", r.Error)
			}
		}
	}
	if len(info.Events) == 0 {
		fmt.Fprintln(w, "\nno events")
		return exitOK
	}
	fmt.Fprintln(w, "\nlatest events:")
	return d.writeDeployEvents(info.Events, "  ")
}

// formatMillis prints a latency in milliseconds.
func formatMillis(ms float64) string {
	if ms <= 0 {
		return "-"
	}
	if ms < 10 {
		return fmt.Sprintf("%.2fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}

// specSummary describes a spec's settings in one line.
func specSummary(s deploy.Spec) string {
	parts := []string{"model " + s.Model.String()}
	if s.Canary != nil && !s.Canary.IsZero() {
		parts = append(parts, fmt.Sprintf("canary %s %d%%", s.Canary, s.CanaryPercent))
	}
	if s.Shadow != nil && !s.Shadow.IsZero() {
		parts = append(parts, "shadow "+s.Shadow.String())
	}
	if s.Batching.MaxBatchSize > 0 {
		parts = append(parts, fmt.Sprintf("batching %d rows / %s", s.Batching.MaxBatchSize, time.Duration(s.Batching.MaxDelay)))
	} else {
		parts = append(parts, "batching off")
	}
	sample := 1.0
	if s.PayloadSample != nil {
		sample = *s.PayloadSample
	}
	parts = append(parts, fmt.Sprintf("payload sample %g", sample))
	rows := s.MaxBatchRows
	if rows == 0 {
		rows = deploy.DefaultMaxBatchRows
	}
	parts = append(parts, fmt.Sprintf("max %d rows a request", rows))
	return strings.Join(parts, ", ")
}

// rollbackSummary describes an automatic rollback policy in one line.
func rollbackSummary(p deploy.RollbackPolicy) string {
	if p.Disabled {
		return "automatic rollback off"
	}
	p = p.WithDefaults()
	return fmt.Sprintf("automatic, over %s once the canary has %d requests: error rate above the primary's by more than %g, or p99 over %g× the primary's (and %s more)",
		time.Duration(p.Window), p.MinRequests, p.MaxErrorRateIncrease, p.MaxLatencyRatio, time.Duration(p.MinLatencyIncrease))
}

// rolloutSummary describes a spec's automatic rollout policy in one line.
func rolloutSummary(s deploy.Spec) string {
	if s.Rollout == nil {
		return "off (an alias move swaps the primary at once)"
	}
	p := s.Rollout.WithDefaults()
	out := fmt.Sprintf("releases of %s go through a canary taking %d%%, judged after %s once it has %d requests (rolled back without them after %s): error rate above the primary's by more than %g, or p99 over %g× the primary's, rolls it back",
		s.Model, p.CanaryPercent, time.Duration(p.Window), p.MinRequests, time.Duration(p.MaxWait), p.MaxErrorRateIncrease, p.MaxLatencyRatio)
	if p.Metric != "" {
		out += fmt.Sprintf(", and so does live %s worse than the primary's by more than %g (over %d labels each)", p.Metric, p.MaxDegradation, p.MinLabels)
	}
	if s.Model.Alias == "" {
		out += fmt.Sprintf("; inactive while the primary is pinned to %s (follow an alias again with --model MODEL@ALIAS)", s.Model)
	}
	return out
}

// writeDeployEvents prints deployment events as a table, each line
// indented.
func (d *dataCmd) writeDeployEvents(evs []*deploy.Event, indent string) int {
	tw := tabwriter.NewWriter(d.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%sTIME\tGENERATION\tTYPE\tMESSAGE\n", indent)
	for _, e := range evs {
		typ := e.Type
		if e.Automatic && !strings.HasPrefix(typ, "auto") {
			typ += " (automatic)"
		}
		fmt.Fprintf(tw, "%s%s\t%d\t%s\t%s\n", indent, formatTime(time.UnixMilli(e.Time)), e.Generation, typ, dash(e.Message))
	}
	return d.flush(tw)
}

// deployEvents runs `mloop deploy events NAME`.
func (d *dataCmd) deployEvents(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop deploy events NAME [flags]\n\nLists a deployment's events, newest first: every change, who or what made it\n(automatic rollbacks and alias moves are marked) and what changed.\n")
	limit := fs.Int("limit", 20, "list at most this many events")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	if *limit < 1 {
		return d.usageError("invalid --limit %d: want at least 1", *limit)
	}
	evs, err := d.client.DeploymentEvents(ctx, pos[0], *limit)
	if err != nil {
		return d.failDeployment(err)
	}
	if d.json {
		return writeList(d, "events", evs)
	}
	if len(evs) == 0 {
		fmt.Fprintf(d.stdout, "no events for deployment %s\n", pos[0])
		return exitOK
	}
	return d.writeDeployEvents(evs, "")
}
