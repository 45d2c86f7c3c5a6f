// Package modelcheck checks a local model before it becomes a model
// version, and registers it: it reads the model's folder (or file) the way
// the serving runtimes will, so that a corrupt or unsupported model is
// rejected at registration with the reason rather than at deployment.
//
// Two flavors are known:
//
//   - xgboost: the folder holds exactly one XGBoost model file, model.json
//     or model.ubj (or the path is such a file, under any name). The file
//     must load in mloop's native runtime (internal/serving/xgboost).
//
//   - process: the folder holds serve.json, which says how to start a
//     server speaking the Open Inference Protocol on $PORT:
//
//     {"command": ["python3", "serve.py"], "env": {"THREADS": "2"}}
//
//     command is required and non-empty; it runs in the model's folder.
//     env is optional; keys are environment variable names.
//
// The package is separate from internal/serving because it imports the
// runtimes (xgboost imports serving for its Predictor types). Tar archives
// of model folders arrive from clients: ExtractTar unpacks them with strict
// path, type and size checks. Registrar stores a checked model as the
// artifacts of an MLflow run and registers it as a new model version.
package modelcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/serving/xgboost"
)

// Flavors of model that mloop serves.
const (
	FlavorXGBoost = "xgboost"
	FlavorProcess = "process"
)

// Files that identify a flavor in a model folder.
const (
	XGBoostJSONFile = "model.json"
	XGBoostUBJFile  = "model.ubj"
	ProcessSpecFile = "serve.json"
)

// maxSpecBytes bounds the size of serve.json.
const maxSpecBytes = 64 << 10

// ModelInfo describes a checked model. Fields that do not apply to its
// flavor are empty.
type ModelInfo struct {
	// Flavor is FlavorXGBoost or FlavorProcess.
	Flavor string `json:"flavor"`
	// File is the model file (xgboost) or spec file (process), relative to
	// the model folder (or the base name when the model is a single file).
	File string `json:"file"`
	// Objective is the XGBoost objective, such as binary:logistic.
	Objective string `json:"objective,omitempty"`
	// NumTrees is the number of trees of an XGBoost model.
	NumTrees int `json:"num_trees,omitempty"`
	// NumFeatures is the number of input columns of an XGBoost model.
	NumFeatures int `json:"num_features,omitempty"`
	// Features are the model's input columns in order; they may be left out
	// (with NumFeatures kept) where space is short, as in a registry tag.
	Features []serving.Feature `json:"features,omitempty"`
	// Outputs is how many values the model predicts per row.
	Outputs int `json:"outputs,omitempty"`
	// Command is the process model's command line.
	Command []string `json:"command,omitempty"`
}

// String summarises the model for people: "xgboost, binary:logistic, 150
// trees, 5 features" or "process, command python3 serve.py".
func (i *ModelInfo) String() string {
	count := func(n int, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.Itoa(n) + " " + many
	}
	parts := []string{i.Flavor}
	switch i.Flavor {
	case FlavorXGBoost:
		parts = append(parts, i.Objective, count(i.NumTrees, "tree", "trees"), count(i.NumFeatures, "feature", "features"))
		if i.Outputs > 1 {
			parts = append(parts, count(i.Outputs, "output", "outputs"))
		}
	case FlavorProcess:
		parts = append(parts, "command "+strings.Join(i.Command, " "))
	}
	return strings.Join(parts, ", ")
}

// ProcessSpec is the content of a process model's serve.json.
type ProcessSpec struct {
	// Command is the program and its arguments; it runs in the model's
	// folder with PORT set to the port it must serve on.
	Command []string `json:"command"`
	// Env holds extra environment variables for the command.
	Env map[string]string `json:"env,omitempty"`
}

// envName matches a portable environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseProcessSpec parses and checks the bytes of a serve.json file. A
// malformed or incomplete spec is EINVALID with the reason.
func ParseProcessSpec(data []byte) (*ProcessSpec, error) {
	bad := func(format string, args ...any) error {
		return mloop.Errorf(mloop.EINVALID, "%s: %s; see docs/models-api.md for the format ({\"command\": [\"python3\", \"serve.py\"], \"env\": {…}})",
			ProcessSpecFile, fmt.Sprintf(format, args...))
	}
	var spec ProcessSpec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return nil, bad("not a valid spec: %v", err)
	}
	if dec.More() {
		return nil, bad("data after the JSON object")
	}
	if len(spec.Command) == 0 {
		return nil, bad("command is missing or empty: give the program and its arguments as a list of strings")
	}
	if strings.TrimSpace(spec.Command[0]) == "" {
		return nil, bad("command[0] (the program) is empty")
	}
	for i, a := range spec.Command {
		if strings.ContainsRune(a, 0) {
			return nil, bad("command[%d] holds a NUL byte", i)
		}
	}
	for k, v := range spec.Env {
		if !envName.MatchString(k) {
			return nil, bad("env key %q is not a variable name (letters, digits and _, not starting with a digit)", k)
		}
		if k == "PORT" {
			return nil, bad("env must not set PORT: mloop assigns the port")
		}
		if strings.ContainsRune(v, 0) {
			return nil, bad("env %s holds a NUL byte", k)
		}
	}
	return &spec, nil
}

// DetectFlavor returns the flavor of the model at path: xgboost for a
// folder holding model.json or model.ubj (or a .json or .ubj file),
// process for a folder holding serve.json. A folder holding both kinds, or
// neither, is EINVALID.
func DetectFlavor(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", statError(path, err)
	}
	if !st.IsDir() {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".json", ".ubj":
			return FlavorXGBoost, nil
		}
		return "", mloop.Errorf(mloop.EINVALID, "cannot tell the flavor of %s: a single file must be an XGBoost model (.json or .ubj); give --flavor, or a folder", filepath.Base(path))
	}
	xgb := exists(filepath.Join(path, XGBoostJSONFile)) || exists(filepath.Join(path, XGBoostUBJFile))
	proc := exists(filepath.Join(path, ProcessSpecFile))
	switch {
	case xgb && proc:
		return "", mloop.Errorf(mloop.EINVALID, "the model folder holds both an XGBoost model file and %s: give the flavor (xgboost or process)", ProcessSpecFile)
	case xgb:
		return FlavorXGBoost, nil
	case proc:
		return FlavorProcess, nil
	}
	return "", mloop.Errorf(mloop.EINVALID, "cannot tell the model's flavor: the folder holds none of %s, %s (xgboost) or %s (process)", XGBoostJSONFile, XGBoostUBJFile, ProcessSpecFile)
}

// ValidateModel checks the model at path (a folder, or for xgboost a model
// file) as the serving runtime of flavor will read it, and describes it.
// An empty flavor is detected with DetectFlavor. An unknown flavor, a
// missing model file, or a model the runtime rejects is EINVALID with the
// reason.
func ValidateModel(ctx context.Context, flavor, path string) (*ModelInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if flavor == "" {
		f, err := DetectFlavor(path)
		if err != nil {
			return nil, err
		}
		flavor = f
	}
	switch flavor {
	case FlavorXGBoost:
		return validateXGBoost(path)
	case FlavorProcess:
		return validateProcess(path)
	}
	return nil, mloop.Errorf(mloop.EINVALID, "unknown model flavor %q: use %s or %s", flavor, FlavorXGBoost, FlavorProcess)
}

// validateXGBoost loads the XGBoost model at path.
func validateXGBoost(path string) (*ModelInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, statError(path, err)
	}
	file, rel := path, filepath.Base(path)
	if st.IsDir() {
		var found []string
		for _, name := range []string{XGBoostJSONFile, XGBoostUBJFile} {
			if exists(filepath.Join(path, name)) {
				found = append(found, name)
			}
		}
		switch len(found) {
		case 0:
			return nil, mloop.Errorf(mloop.EINVALID, "the model folder holds no XGBoost model: save it with save_model(\"%s\") or save_model(\"%s\")", XGBoostJSONFile, XGBoostUBJFile)
		case 2:
			return nil, mloop.Errorf(mloop.EINVALID, "the model folder holds both %s and %s: keep only the one to serve", XGBoostJSONFile, XGBoostUBJFile)
		}
		rel = found[0]
		file = filepath.Join(path, rel)
	}
	m, err := xgboost.LoadFile(file)
	if err != nil {
		if k := mloop.ErrorCode(err); k == mloop.EINVALID || k == mloop.ETOOLARGE {
			return nil, mloop.Errorf(mloop.EINVALID, "not a model mloop can serve: %s", mloop.ErrorMessage(err))
		}
		return nil, fmt.Errorf("check xgboost model %s: %w", rel, err)
	}
	return &ModelInfo{
		Flavor: FlavorXGBoost, File: rel, Objective: m.Objective(), NumTrees: m.NumTrees(),
		NumFeatures: len(m.Features()), Features: m.Features(), Outputs: m.Outputs(),
	}, nil
}

// validateProcess reads and checks the serve.json of the folder at path.
func validateProcess(path string) (*ModelInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, statError(path, err)
	}
	if !st.IsDir() {
		return nil, mloop.Errorf(mloop.EINVALID, "a process model is a folder holding %s and the server's files, not a single file", ProcessSpecFile)
	}
	f, err := os.Open(filepath.Join(path, ProcessSpecFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, mloop.Errorf(mloop.EINVALID, "the model folder has no %s: write one saying how to start the model's server ({\"command\": [\"python3\", \"serve.py\"]})", ProcessSpecFile)
		}
		return nil, fmt.Errorf("open %s: %w", ProcessSpecFile, err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxSpecBytes+1)); err != nil {
		return nil, fmt.Errorf("read %s: %w", ProcessSpecFile, err)
	}
	if buf.Len() > maxSpecBytes {
		return nil, mloop.Errorf(mloop.EINVALID, "%s is larger than %d bytes", ProcessSpecFile, maxSpecBytes)
	}
	spec, err := ParseProcessSpec(buf.Bytes())
	if err != nil {
		return nil, err
	}
	return &ModelInfo{Flavor: FlavorProcess, File: ProcessSpecFile, Command: spec.Command}, nil
}

// exists reports whether path names a regular file.
func exists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// statError turns a failed os.Stat of a model path into an error.
func statError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return mloop.Errorf(mloop.EINVALID, "model path %s does not exist", path)
	}
	return fmt.Errorf("model path: %w", err)
}
