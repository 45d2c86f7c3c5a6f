package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mloop/mloop/internal/realdata"
	"github.com/mloop/mloop/internal/serving/xgboost"
)

// MustWeatherSplit writes weather.csv (NOAA, vega-datasets) with an added
// 0/1 column sunny as train.csv (3 rows in 4) and valid.csv (the rest) in a
// temporary folder, and returns their paths.
func MustWeatherSplit(tb testing.TB) (train, valid string) {
	tb.Helper()
	f, err := os.Open(realdata.Path(tb, "weather.csv"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	dir := tb.TempDir()
	var tr, va bytes.Buffer
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan(); i++ {
		line := sc.Text()
		switch {
		case i == 0:
			line += ",sunny"
			tr.WriteString(line + "\n")
			va.WriteString(line + "\n")
			continue
		case strings.HasSuffix(line, ",sun"):
			line += ",1"
		default:
			line += ",0"
		}
		if i%4 == 0 {
			va.WriteString(line + "\n")
		} else {
			tr.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	train, valid = filepath.Join(dir, "train", "train.csv"), filepath.Join(dir, "valid.csv")
	if err := os.MkdirAll(filepath.Dir(train), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(train, tr.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(valid, va.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
	return train, valid
}

func TestTrainGBDT(t *testing.T) {
	train, valid := MustWeatherSplit(t)
	const features = "location,precipitation,temp_max,temp_min,wind"
	for _, tc := range []struct {
		name    string
		args    []string
		metrics []string // keys the metrics file must have
		check   func(m map[string]float64) bool
	}{
		{
			name:    "binary",
			args:    []string{"--data", train, "--valid", valid, "--label", "sunny", "--features", features, "--num-trees", "20", "--learning-rate", "0.2", "--progress-every", "5"},
			metrics: []string{"auc", "logloss", "accuracy", "train_auc", "train_logloss", "train_accuracy", "rows", "train_rows", "train_seconds", "trees"},
			check:   func(m map[string]float64) bool { return m["auc"] > 0.8 && m["trees"] == 20 },
		},
		{
			name:    "multiclass from a folder with early stopping",
			args:    []string{"--data", filepath.Dir(train), "--valid", valid, "--label", "weather", "--features", features, "--objective", "multi:softprob", "--num-trees", "300", "--early-stopping", "10", "--learning-rate", "0.5"},
			metrics: []string{"mlogloss", "accuracy", "train_mlogloss", "train_accuracy", "best_iteration"},
			check: func(m map[string]float64) bool {
				return m["accuracy"] > 0.6 && m["trees"] == 5*(m["best_iteration"]+1) && m["trees"] < 1500
			},
		},
		{
			name:    "regression",
			args:    []string{"--data", train, "--valid", valid, "--label", "temp_max", "--features", "location,precipitation,temp_min,wind", "--categorical", "location", "--objective", "reg:squarederror", "--num-trees", "50", "--max-depth", "4"},
			metrics: []string{"rmse", "mae", "r2", "train_rmse", "train_r2"},
			check:   func(m map[string]float64) bool { return m["r2"] > 0.7 },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out, met := filepath.Join(dir, "model", "model.json"), filepath.Join(dir, "metrics.json")
			var stdout, stderr bytes.Buffer
			args := append([]string{"gbdt", "--out", out, "--metrics", met, "--json"}, tc.args...)
			if code := runTrain(context.Background(), args, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
			}
			var sum trainSummary
			if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
				t.Fatalf("--json printed %q: %v", stdout.String(), err)
			}
			if sum.Model != out || sum.Trees == 0 || sum.ValidRows == 0 || sum.TrainRows <= sum.ValidRows || len(sum.ValidMetrics) == 0 {
				t.Errorf("summary %+v", sum)
			}
			if !strings.Contains(stderr.String(), "tree ") || !strings.Contains(stderr.String(), "valid ") {
				t.Errorf("stderr shows no progress with a validation metric:\n%s", stderr.String())
			}
			m, err := xgboost.LoadFile(out)
			if err != nil {
				t.Fatalf("runtime cannot load the written model: %v", err)
			}
			if m.NumTrees() != sum.Trees {
				t.Errorf("model file holds %d trees, summary says %d", m.NumTrees(), sum.Trees)
			}
			data, err := os.ReadFile(met)
			if err != nil {
				t.Fatal(err)
			}
			var metrics map[string]float64
			if err := json.Unmarshal(data, &metrics); err != nil {
				t.Fatalf("metrics file %s: %v", data, err)
			}
			for _, k := range tc.metrics {
				if _, ok := metrics[k]; !ok {
					t.Errorf("metrics file lacks %q: %s", k, data)
				}
			}
			if !tc.check(metrics) {
				t.Errorf("metrics %v fail the check", metrics)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "model", ".*tmp*")); len(left) > 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
		})
	}
}

func TestTrainGBDTErrors(t *testing.T) {
	train, _ := MustWeatherSplit(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no trainer", nil, exitUsage, "Usage: mloop train"},
		{"unknown trainer", []string{"forest"}, exitUsage, `unknown trainer "forest"`},
		{"no data", []string{"gbdt", "--label", "sunny"}, exitUsage, "--data is required"},
		{"no label", []string{"gbdt", "--data", train}, exitUsage, "--label is required"},
		{"bad objective", []string{"gbdt", "--data", train, "--label", "sunny", "--objective", "rank:pairwise"}, exitUsage, "not supported"},
		{"zero depth", []string{"gbdt", "--data", train, "--label", "sunny", "--max-depth", "0"}, exitUsage, "--max-depth must be positive"},
		{"bad depth", []string{"gbdt", "--data", train, "--label", "sunny", "--max-depth", "31"}, exitUsage, "max_depth must be from 1 to 30"},
		{"dataset ref", []string{"gbdt", "--data", "data://weather@3", "--label", "sunny"}, exitUsage, "mloop data pull"},
		{"missing file", []string{"gbdt", "--data", "/nonexistent/train.csv", "--label", "sunny"}, exitUsage, "no such file"},
		{"early stopping without valid", []string{"gbdt", "--data", train, "--label", "sunny", "--early-stopping", "5"}, exitUsage, "needs --valid"},
		{"stray argument", []string{"gbdt", train}, exitUsage, "unexpected argument"},
		{"timestamp feature", []string{"gbdt", "--data", train, "--label", "sunny"}, exitFailure, `column "date": "2012-01-01" is a timestamp`},
		{"unknown column", []string{"gbdt", "--data", train, "--label", "cloudy", "--features", "wind"}, exitFailure, `column "cloudy": no such column`},
		{"text label for binary", []string{"gbdt", "--data", train, "--label", "weather", "--features", "wind"}, exitFailure, "holds text"},
		{"labels not 0/1", []string{"gbdt", "--data", train, "--label", "temp_max", "--features", "wind"}, exitFailure, "needs labels 0 or 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "model.json")
			var stdout, stderr bytes.Buffer
			args := tc.args
			if len(args) > 0 && args[0] == "gbdt" {
				args = append([]string{"gbdt", "--out", out, "--quiet"}, args[1:]...)
			}
			code := runTrain(context.Background(), args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), tc.code, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a model was written despite the error")
			}
		})
	}
}
