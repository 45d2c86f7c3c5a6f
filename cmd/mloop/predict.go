package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/client"
)

const predictUsage = `Usage: mloop predict DEPLOYMENT --input FILE [flags]

Sends the rows in FILE to deployment DEPLOYMENT on the server and prints one
line per row with its prediction, then the revision and model version that
answered. FILE ("-" reads stdin) is either

  - a JSON request body in any protocol the server speaks, told from its
    fields: {"inputs": [{"name", "shape", "datatype", "data"}]} is the Open
    Inference Protocol (POST /v2/models/NAME/infer); {"instances": […]} is
    KServe V1 (POST /v1/models/NAME:predict); {"dataframe_split": …},
    {"dataframe_records": …} or {"inputs": …} without shapes is MLflow's
    scoring format (POST /serving-endpoints/NAME/invocations); or
  - a CSV table whose header names the features (sent as MLflow
    dataframe_split; empty cells, NA and NaN are missing values).

--json prints the server's answer body as it came.
`

// maxPredictInput bounds the size of the input file.
const maxPredictInput = 256 << 20

// runPredict runs `mloop predict DEPLOYMENT --input FILE`.
func runPredict(ctx context.Context, args []string, stdout, stderr io.Writer, stdin io.Reader) int {
	d := &dataCmd{name: "mloop predict", stdout: stdout, stderr: stderr}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(stdout, predictUsage)
		return exitOK
	}
	fs := d.flags(predictUsage)
	input := fs.String("input", "", "request `FILE`: JSON in OIP, KServe V1 or MLflow form, or CSV with a header; - reads stdin")
	format := fs.String("format", "", "force how FILE is read: json or csv (default: from its extension, else its first byte)")
	revision := fs.String("revision", "", "pin the request to a revision number, or to primary, canary or shadow")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	switch {
	case *input == "":
		return d.usageError("missing --input FILE: a JSON request body or a CSV table with a header (- reads stdin)")
	case *format != "" && *format != "json" && *format != "csv":
		return d.usageError("invalid --format %q: use json or csv", *format)
	}
	data, err := readInput(*input, stdin)
	if err != nil {
		return d.usageError("%v", err)
	}
	isCSV := *format == "csv"
	if *format == "" {
		switch strings.ToLower(filepath.Ext(*input)) {
		case ".csv", ".tsv":
			isCSV = true
		case ".json":
		default:
			t := bytes.TrimLeft(data, " \t\r\n\ufeff")
			isCSV = len(t) > 0 && t[0] != '{' && t[0] != '['
		}
	}
	req := client.PredictRequest{Deployment: pos[0], Revision: *revision}
	if isCSV {
		if req.Body, err = client.CSVToMLflow(bytes.NewReader(data)); err != nil {
			return d.usageError("%s: %s", *input, mloop.ErrorMessage(err))
		}
		req.Protocol = client.ProtocolMLflow
	} else {
		if req.Protocol, err = client.DetectProtocol(data); err != nil {
			return d.usageError("%s: %s", *input, mloop.ErrorMessage(err))
		}
		req.Body = data
	}
	res, err := d.client.Predict(ctx, req)
	if err != nil {
		if client.IsUnreachable(err) || errors.Is(err, context.Canceled) {
			return d.fail(err)
		}
		// The server answered: its message says what is wrong.
		fmt.Fprintf(d.stderr, "%s: %s\n", d.name, errorText(err))
		switch mloop.ErrorCode(err) {
		case mloop.ENOTFOUND, mloop.EUNAVAILABLE:
			fmt.Fprintf(d.stderr, "  `mloop deploy show %s` shows what the server serves; `mloop deploy list` lists the deployments\n", pos[0])
		}
		return exitFailure
	}
	if d.json {
		if _, err := d.stdout.Write(res.Body); err != nil {
			return d.fail(fmt.Errorf("write answer: %w", err))
		}
		if !bytes.HasSuffix(res.Body, []byte("\n")) {
			fmt.Fprintln(d.stdout)
		}
		return exitOK
	}
	rows, err := client.PredictionRows(req.Protocol, res.Body)
	if err != nil {
		d.fail(err)
		fmt.Fprintln(d.stderr, "  --json prints the answer as it came")
		return exitFailure
	}
	for i, r := range rows {
		fmt.Fprintf(d.stdout, "%d\t%s\n", i, r)
	}
	fmt.Fprintf(d.stdout, "answered by revision %s (model %s), request %s\n", dash(res.Revision), dash(res.ModelVersion), dash(res.RequestID))
	return exitOK
}

// readInput reads the input file, or stdin for "-".
func readInput(name string, stdin io.Reader) ([]byte, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			if os.IsNotExist(err) {
				return nil, fmt.Errorf("input file %s does not exist", name)
			}
			return nil, fmt.Errorf("read input: %w", err)
		}
		defer f.Close()
		r = f
	} else if stdin == nil {
		return nil, fmt.Errorf("--input -: no standard input")
	}
	data, err := io.ReadAll(io.LimitReader(r, maxPredictInput+1))
	if err != nil {
		return nil, fmt.Errorf("read input %s: %w", name, err)
	}
	if len(data) > maxPredictInput {
		return nil, fmt.Errorf("input %s is larger than %d MiB: split it", name, maxPredictInput>>20)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("input %s is empty", name)
	}
	return data, nil
}
