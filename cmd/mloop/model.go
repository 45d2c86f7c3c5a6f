package main

import (
	"context"
	"fmt"
	"io"

	"github.com/mloop/mloop/internal/client"
	"github.com/mloop/mloop/internal/serving/modelcheck"
)

const modelUsage = `Usage: mloop model <command> [arguments] [flags]

Registered models.

Commands:
  register NAME PATH   check the model at PATH (a folder, or an XGBoost .json/.ubj
                       file) and register it as a new version of model NAME

Every command takes --server (default $MLOOP_SERVER, else ` + client.DefaultServer + `)
and --json (machine-readable output on stdout).

Exit status: 0 success; 1 the command failed (the model was refused, the
server is unreachable, …); 2 bad usage, nothing done.

Run 'mloop model <command> -h' for a command's flags.
`

// runModel dispatches `mloop model <command>`.
func runModel(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, modelUsage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	d := &dataCmd{name: "mloop model " + cmd, stdout: stdout, stderr: stderr}
	switch cmd {
	case "register":
		return modelRegister(ctx, d, rest)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, modelUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mloop model: unknown command %q\n\n%s", cmd, modelUsage)
		return exitUsage
	}
}

const modelRegisterUsage = `Usage: mloop model register NAME PATH [flags]

Uploads the model at PATH and registers it as a new version of the
registered model NAME (created when missing). The server checks the model
first, as serving will read it, and refuses a corrupt or unsupported one
with the reason; nothing is stored then.

PATH is a folder holding model.json or model.ubj (XGBoost), or serve.json
(process: {"command": ["python3", "serve.py"], "env": {…}}, a server speaking
the Open Inference Protocol on $PORT, with its files); or a single XGBoost
.json or .ubj file. The flavor is detected unless --flavor is given.
`

// modelRegister runs `mloop model register NAME PATH`.
func modelRegister(ctx context.Context, d *dataCmd, args []string) int {
	fs := d.flags(modelRegisterUsage)
	flavor := fs.String("flavor", "", "the model's flavor: xgboost or process (default: detected from PATH)")
	description := fs.String("description", "", "the new version's description")
	pos, code, ok := d.parse(fs, args, 2, 2)
	if !ok {
		return code
	}
	switch *flavor {
	case "", modelcheck.FlavorXGBoost, modelcheck.FlavorProcess:
	default:
		return d.usageError("--flavor %q: use %s or %s", *flavor, modelcheck.FlavorXGBoost, modelcheck.FlavorProcess)
	}
	v, err := d.client.RegisterModel(ctx, pos[0], pos[1], *flavor, *description)
	if err != nil {
		return d.fail(err)
	}
	if d.json {
		return d.writeJSON(v)
	}
	fmt.Fprintf(d.stdout, "registered %s version %d (%s)\n", v.Name, v.Version, describeModel(v.Info, v.Flavor))
	fmt.Fprintf(d.stdout, "  source %s\n  run    %s\n", v.Source, v.RunID)
	return exitOK
}

// describeModel summarises what the server's check found in a model.
func describeModel(info *modelcheck.ModelInfo, flavor string) string {
	if info == nil {
		return flavor
	}
	return info.String()
}
