package gbdt

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/serving/xgboost"
)

// writeCSV writes text to name in a temporary folder and returns its path.
func writeCSV(tb testing.TB, name, text string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestLoadCSV(t *testing.T) {
	ctx := context.Background()
	p := writeCSV(t, "train.csv", "city,month,temp,rainy,label\n"+
		"Paris,1,3.5,true,0\n"+
		"Oslo,2,,false,1\n"+
		"Paris,12,7,true,1\n"+
		"Rome,1,12.5,,0\n"+
		",3,9,false,0\n")
	d, err := LoadFiles(ctx, []string{p}, LoadOptions{Label: "label", Categorical: []string{"month"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(d.Features); got != 4 {
		t.Fatalf("%d features, want 4 (every column but the label)", got)
	}
	city, month, temp, rainy := d.Features[0], d.Features[1], d.Features[2], d.Features[3]
	if !city.Categorical || strings.Join(city.Categories, ",") != "Paris,Oslo,Rome" {
		t.Errorf("city %+v: want categorical by frequency (Paris, then Oslo and Rome by name)", city)
	}
	if !month.Categorical || month.Categories != nil {
		t.Errorf("month %+v: want categorical with its integers as codes", month)
	}
	if temp.Categorical || rainy.Categorical {
		t.Errorf("temp %+v, rainy %+v: want numerical", temp, rainy)
	}
	wantCols := [][]float64{
		{0, 1, 0, 2, math.NaN()},
		{1, 2, 12, 1, 3},
		{3.5, math.NaN(), 7, 12.5, 9},
		{1, 0, 1, math.NaN(), 0},
	}
	for j, want := range wantCols {
		for i, w := range want {
			g := float64(d.Columns[j][i])
			if g != w && !(math.IsNaN(g) && math.IsNaN(w)) {
				t.Errorf("column %s row %d = %v, want %v", d.Features[j].Name, i+1, g, w)
			}
		}
	}
	if got := d.Labels; len(got) != 5 || got[1] != 1 || got[3] != 0 {
		t.Errorf("labels %v", got)
	}

	// Validation data takes the training data's codes; an unseen city is
	// missing.
	pv := writeCSV(t, "valid.csv", "city,month,temp,rainy,label\nRome,5,1,true,1\nLima,1,2,false,0\n")
	v, err := LoadFiles(ctx, []string{pv}, LoadOptions{Label: "label", Like: d})
	if err != nil {
		t.Fatal(err)
	}
	if v.Columns[0][0] != 2 || !math.IsNaN(float64(v.Columns[0][1])) || v.Columns[1][0] != 5 {
		t.Errorf("validation columns %v, want Rome coded 2, Lima missing, month 5", v.Columns)
	}
	cfg := DefaultConfig()
	cfg.NumTrees, cfg.MinChildWeight = 3, 0
	if _, err := Train(ctx, d, v, cfg); err != nil {
		t.Errorf("training on loaded data: %v", err)
	}
}

func TestLoadClasses(t *testing.T) {
	ctx := context.Background()
	p := writeCSV(t, "t.csv", "x,kind\n1,sun\n2,rain\n3,fog\n4,sun\n")
	d, err := LoadFiles(ctx, []string{p}, LoadOptions{Label: "kind", Objective: MultiSoftprob})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(d.Classes, ",") != "fog,rain,sun" || d.Labels[0] != 2 || d.Labels[2] != 0 {
		t.Errorf("classes %v labels %v, want classes by name", d.Classes, d.Labels)
	}
	pv := writeCSV(t, "v.csv", "x,kind\n1,snow\n")
	if _, err := LoadFiles(ctx, []string{pv}, LoadOptions{Label: "kind", Objective: MultiSoftprob, Like: d}); err == nil || !strings.Contains(err.Error(), `class "snow"`) {
		t.Errorf("unseen class: error %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, csv string
		opts      LoadOptions
		want      string
	}{
		{"no label option", "a,y\n1,0\n", LoadOptions{}, "no label column"},
		{"missing label column", "a,b\n1,0\n", LoadOptions{Label: "y"}, `"y": no such column`},
		{"missing feature column", "a,y\n1,0\n", LoadOptions{Label: "y", Features: []string{"a", "z"}}, `"z": no such column`},
		{"label as feature", "a,y\n1,0\n", LoadOptions{Label: "y", Features: []string{"a", "y"}}, "cannot also be a feature"},
		{"categorical not a feature", "a,b,y\n1,2,0\n", LoadOptions{Label: "y", Features: []string{"a"}, Categorical: []string{"b"}}, "is not a feature"},
		{"text after numbers", "a,y\n1,0\nabc,1\n", LoadOptions{Label: "y"}, `3: column "a": text "abc" in a column of numbers; read the column as categories with --categorical a`},
		{"timestamp", "a,y\n2001-01-02 10:00:00,0\n", LoadOptions{Label: "y"}, "is a timestamp"},
		{"missing label", "a,y\n1,0\n2,\n", LoadOptions{Label: "y"}, "row 2 has no label"},
		{"text label for binary", "a,y\n1,yes\n", LoadOptions{Label: "y"}, "holds text"},
		{"infinite value", "a,y\n1,0\ninf,1\n", LoadOptions{Label: "y"}, "infinite values are not allowed"},
		{"negative category", "a,y\n-1,0\n", LoadOptions{Label: "y", Categorical: []string{"a"}}, ""},
		{"text weight", "a,w,y\n1,x,0\n", LoadOptions{Label: "y", Weight: "w"}, "weights must be numbers"},
		{"negative weight", "a,w,y\n1,-2,0\n", LoadOptions{Label: "y", Weight: "w"}, "weights must be non-negative"},
		{"no rows", "a,y\n", LoadOptions{Label: "y"}, "no rows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeCSV(t, "d.csv", tc.csv)
			d, err := LoadFiles(ctx, []string{p}, tc.opts)
			if tc.want == "" {
				// Loads (negative integers are text categories), and the
				// codes are valid.
				if err != nil {
					t.Fatal(err)
				}
				if d.Features[0].Categories == nil {
					t.Errorf("feature %+v: want named categories", d.Features[0])
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// FuzzLoadCSV feeds arbitrary CSV text through the loader and, when it
// loads, through training: no input may crash either, and loaded data is
// always consistent.
func FuzzLoadCSV(f *testing.F) {
	f.Add([]byte("a,b,y\n1,x,0\n2,y,1\n,z,0\n"), false)
	f.Add([]byte("a,b,y\n1.5,3,1\nNaN,4,0\n"), true)
	f.Add([]byte("y,a\n1,\"q\"\"uote\"\n0,1e40\n"), false)
	f.Add([]byte("a,y\n-0,0\n1e-45,1\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, multi bool) {
		ctx := context.Background()
		r, err := dataset.NewReader("f.csv", bytes.NewReader(data), int64(len(data)), dataset.ReadOptions{})
		if err != nil {
			return
		}
		defer r.Close()
		opts := LoadOptions{Label: "y"}
		if multi {
			opts.Objective = MultiSoftprob
		}
		l, err := NewLoader(opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Read(ctx, "f.csv", r); err != nil {
			return
		}
		d, err := l.Data()
		if err != nil {
			return
		}
		if len(d.Columns) != len(d.Features) {
			t.Fatalf("%d columns for %d features", len(d.Columns), len(d.Features))
		}
		for j, c := range d.Columns {
			if len(c) != d.Rows() {
				t.Fatalf("column %d has %d values for %d rows", j, len(c), d.Rows())
			}
			if d.Features[j].Categories != nil {
				for _, v := range c {
					if v == v && (v < 0 || int(v) >= len(d.Features[j].Categories)) {
						t.Fatalf("category code %v outside %d names", v, len(d.Features[j].Categories))
					}
				}
			}
		}
		if d.Rows() > 2000 {
			return
		}
		cfg := DefaultConfig()
		cfg.NumTrees, cfg.MaxDepth, cfg.Threads = 2, 3, 2
		if multi {
			cfg.Objective = MultiSoftprob
			cfg.NumClass = max(2, len(d.Classes))
		}
		m, err := Train(ctx, d, nil, cfg)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := m.WriteXGBoostJSON(&buf); err != nil {
			t.Fatal(err)
		}
		want, err := m.PredictData(d)
		if err != nil {
			t.Fatal(err)
		}
		rt, err := xgboost.Load(&buf, "fuzz.json")
		if err != nil {
			t.Fatalf("runtime cannot load the trained model: %v", err)
		}
		got := make([]float32, len(want))
		if err := rt.Predict(ctx, serving.Batch{Rows: d.Rows(), Cols: len(d.Features), Values: rowMajor(d)}, got); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if got[i] != want[i] && !(got[i] != got[i] && want[i] != want[i]) {
				t.Fatalf("output %d: runtime %v, trainer %v", i, got[i], want[i])
			}
		}
	})
}
