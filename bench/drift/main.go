// Command drift measures mloop's exact drift computation against the same
// computation in numpy/scipy, on two monthly slices of real flights.
//
// It loads the date, delay, distance and origin columns of
// flights-3m.parquet, slices two months (January and June by default, about
// 500,000 flights each) and compares them with dataset.DriftTables: on delay
// and distance ks, psi, jensenshannon, wasserstein and chisquare (the binned
// methods on Sturges bins), on origin chisquare, psi and jensenshannon (per
// airport). The Go computation runs -reps times after one warm-up run.
//
// It then writes the same slices to a temporary folder as raw little-endian
// files (float64 values; origin as int32 category indices plus the names) and
// runs reference.py (next to this file) with /usr/bin/python3, which times
// the same statistics with numpy and scipy, loading excluded. The program
// prints both times, their ratio, and every statistic from both sides,
// checking that they agree to a relative 1e-6 (bin counts exactly); it exits
// with status 1 when they do not.
//
// Usage (from the repository root):
//
//	go run ./bench/drift [-data ../shared/data/flights-3m.parquet] [-reps 7] [-json]
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mloop/mloop/internal/dataset"
)

func main() {
	data := flag.String("data", "../shared/data/flights-3m.parquet", "path of flights-3m.parquet")
	reps := flag.Int("reps", 7, "timed repetitions of each side")
	refMonth := flag.Int("ref-month", 1, "month of the reference slice (1-12)")
	curMonth := flag.Int("cur-month", 6, "month of the current slice (1-12)")
	python := flag.String("python", "/usr/bin/python3", "python with numpy and scipy")
	reference := flag.String("reference", defaultReference(), "path of reference.py")
	asJSON := flag.Bool("json", false, "print the figures as JSON")
	flag.Parse()
	res, err := run(*data, *reps, time.Month(*refMonth), time.Month(*curMonth), *python, *reference)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench drift:", err)
		os.Exit(1)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintln(os.Stderr, "bench drift:", err)
			os.Exit(1)
		}
	} else {
		res.print()
	}
	if len(res.Mismatches) > 0 {
		os.Exit(1)
	}
}

// defaultReference finds reference.py next to this source file.
func defaultReference() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "bench/drift/reference.py"
	}
	return filepath.Join(filepath.Dir(file), "reference.py")
}

// Result holds every figure the benchmark prints.
type Result struct {
	Date        string               `json:"date"`
	Data        string               `json:"data"`
	RefMonth    string               `json:"ref_month"`
	CurMonth    string               `json:"cur_month"`
	RefRows     int                  `json:"ref_rows"`
	CurRows     int                  `json:"cur_rows"`
	TotalRows   int64                `json:"total_rows"`
	LoadSeconds float64              `json:"load_seconds"`
	Cores       int                  `json:"cores"`
	Reps        int                  `json:"reps"`
	GoBestMs    float64              `json:"go_best_ms"`
	GoMedianMs  float64              `json:"go_median_ms"`
	PyBestMs    float64              `json:"python_best_ms"`
	PyMedianMs  float64              `json:"python_median_ms"`
	RatioMedian float64              `json:"ratio_median"` // Python median / Go median
	RatioBest   float64              `json:"ratio_best"`
	Numpy       string               `json:"numpy"`
	Scipy       string               `json:"scipy"`
	Figures     []Figure             `json:"figures"`
	Checked     int                  `json:"checked"`
	MaxRelDiff  float64              `json:"max_relative_difference"`
	Mismatches  []string             `json:"mismatches"`
	Report      *dataset.DriftReport `json:"-"`
}

// Figure is one statistic from both sides.
type Figure struct {
	Column string  `json:"column"`
	Method string  `json:"method"`
	Name   string  `json:"name"` // statistic, p_value or distance
	Go     float64 `json:"go"`
	Python float64 `json:"python"`
	Agree  bool    `json:"agree"`
}

var (
	numericMethods = []dataset.Method{dataset.MethodKS, dataset.MethodPSI, dataset.MethodJensenShannon, dataset.MethodWasserstein, dataset.MethodChiSquare}
	originMethods  = []dataset.Method{dataset.MethodChiSquare, dataset.MethodPSI, dataset.MethodJensenShannon}
)

func run(data string, reps int, refMonth, curMonth time.Month, python, reference string) (*Result, error) {
	if reps < 1 {
		return nil, errors.New("-reps must be at least 1")
	}
	ctx := context.Background()
	start := time.Now()
	tab, err := dataset.LoadTable(ctx, []string{data}, dataset.LoadOptions{Columns: []string{"date", "delay", "distance", "origin"}})
	if err != nil {
		return nil, err
	}
	load := time.Since(start)
	ref, err := monthSlice(tab, refMonth)
	if err != nil {
		return nil, err
	}
	cur, err := monthSlice(tab, curMonth)
	if err != nil {
		return nil, err
	}
	res := &Result{
		Date: time.Now().UTC().Format(time.RFC3339), Data: data,
		RefMonth: refMonth.String(), CurMonth: curMonth.String(),
		RefRows: int(ref.Rows), CurRows: int(cur.Rows),
		TotalRows: tab.Rows, LoadSeconds: load.Seconds(), Cores: runtime.GOMAXPROCS(0), Reps: reps,
	}
	opts := dataset.DriftOptions{ColumnMethods: map[string][]dataset.Method{
		"delay": numericMethods, "distance": numericMethods, "origin": originMethods,
	}}

	// Go: one warm-up run, then reps timed runs.
	var times []time.Duration
	for i := range reps + 1 {
		start := time.Now()
		rep, err := dataset.DriftTables(ref, cur, opts)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			times = append(times, time.Since(start))
		}
		res.Report = rep
	}
	best, median := bestMedian(times)
	res.GoBestMs, res.GoMedianMs = best.Seconds()*1e3, median.Seconds()*1e3

	// Python on the same slices.
	dir, err := os.MkdirTemp("", "mloop-bench-drift-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := writeSlices(dir, ref, cur); err != nil {
		return nil, err
	}
	py, err := runPython(python, reference, dir, reps)
	if err != nil {
		return nil, err
	}
	pyTimes := make([]time.Duration, len(py.Times))
	for i, s := range py.Times {
		pyTimes[i] = time.Duration(s * float64(time.Second))
	}
	pb, pm := bestMedian(pyTimes)
	res.PyBestMs, res.PyMedianMs = pb.Seconds()*1e3, pm.Seconds()*1e3
	res.RatioMedian = res.PyMedianMs / res.GoMedianMs
	res.RatioBest = res.PyBestMs / res.GoBestMs
	res.Numpy, res.Scipy = py.Numpy, py.Scipy
	compare(res, py)
	return res, nil
}

// monthSlice returns the rows of one month as a table of delay, distance
// and origin. The columns must have no nulls, so that their values stay
// aligned row by row.
func monthSlice(t *dataset.Table, m time.Month) (*dataset.Table, error) {
	date := t.Column("date")
	for _, c := range t.Columns {
		if c.Nulls > 0 || c.NonFinite > 0 || int64(c.Count()) != t.Rows {
			return nil, fmt.Errorf("column %q has missing values; the bench needs complete rows", c.Name)
		}
	}
	out := &dataset.Table{}
	for _, name := range []string{"delay", "distance", "origin"} {
		c := t.Column(name)
		if c == nil {
			return nil, fmt.Errorf("no column %q", name)
		}
		out.Columns = append(out.Columns, &dataset.TableColumn{Name: c.Name, Type: c.Type, Dict: c.Dict})
	}
	for i, us := range date.Values {
		if time.UnixMicro(int64(us)).UTC().Month() != m {
			continue
		}
		for j, name := range []string{"delay", "distance", "origin"} {
			src, dst := t.Column(name), out.Columns[j]
			switch {
			case src.Dict != nil:
				dst.Codes = append(dst.Codes, src.Codes[i])
			case src.Type == dataset.TypeString:
				dst.Text = append(dst.Text, src.Text[i])
			default:
				dst.Values = append(dst.Values, src.Values[i])
			}
		}
		out.Rows++
	}
	if out.Rows == 0 {
		return nil, fmt.Errorf("no rows in %s", m)
	}
	return out, nil
}

func bestMedian(ds []time.Duration) (time.Duration, time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[0], s[len(s)/2]
}

// manifest tells reference.py what the files hold.
type manifest struct {
	Columns []manifestColumn `json:"columns"`
}

type manifestColumn struct {
	Name  string   `json:"name"`
	Kind  string   `json:"kind"` // numeric or categorical
	Ref   string   `json:"ref"`
	Cur   string   `json:"cur"`
	Names []string `json:"names,omitempty"`
}

// writeSlices writes both tables' columns as raw little-endian files.
func writeSlices(dir string, ref, cur *dataset.Table) error {
	var m manifest
	for _, rc := range ref.Columns {
		cc := cur.Column(rc.Name)
		mc := manifestColumn{Name: rc.Name, Ref: rc.Name + ".ref", Cur: rc.Name + ".cur"}
		var rb, cb []byte
		if rc.Type == dataset.TypeString {
			mc.Kind = "categorical"
			index := map[string]int32{}
			for _, c := range []*dataset.TableColumn{rc, cc} {
				for i := range c.Count() {
					index[c.String(i)] = 0
				}
			}
			for n := range index {
				mc.Names = append(mc.Names, n)
			}
			slices.Sort(mc.Names)
			for i, n := range mc.Names {
				index[n] = int32(i)
			}
			rb, cb = codes(rc, index), codes(cc, index)
		} else {
			mc.Kind = "numeric"
			rb, cb = floats(rc.Values), floats(cc.Values)
		}
		if err := os.WriteFile(filepath.Join(dir, mc.Ref), rb, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, mc.Cur), cb, 0o600); err != nil {
			return err
		}
		m.Columns = append(m.Columns, mc)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o600)
}

func floats(x []float64) []byte {
	b := make([]byte, 8*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return b
}

func codes(c *dataset.TableColumn, index map[string]int32) []byte {
	b := make([]byte, 4*c.Count())
	for i := range c.Count() {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(index[c.String(i)]))
	}
	return b
}

// pyOutput is what reference.py prints.
type pyOutput struct {
	Columns map[string]map[string]json.RawMessage `json:"columns"`
	Times   []float64                             `json:"times"`
	Numpy   string                                `json:"numpy"`
	Scipy   string                                `json:"scipy"`
}

type pyStat struct {
	Statistic float64  `json:"statistic"`
	PValue    *float64 `json:"p_value"`
	Distance  *float64 `json:"distance"`
}

func runPython(python, script, dir string, reps int) (*pyOutput, error) {
	cmd := exec.Command(python, script, dir, fmt.Sprint(reps))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("run %s %s: %w", python, script, err)
	}
	var py pyOutput
	if err := json.Unmarshal(out, &py); err != nil {
		return nil, fmt.Errorf("read %s output: %w", script, err)
	}
	if len(py.Times) == 0 {
		return nil, fmt.Errorf("%s reported no times", script)
	}
	return &py, nil
}

// agree reports whether a and b agree to a relative 1e-6; values below
// 1e-300 (p-values that underflow differently) count as 0.
func agree(a, b float64) bool {
	if math.Abs(a) < 1e-300 && math.Abs(b) < 1e-300 {
		return true
	}
	return math.Abs(a-b) <= 1e-6*max(math.Abs(a), math.Abs(b))
}

// compare checks every Go statistic against Python's.
func compare(res *Result, py *pyOutput) {
	fail := func(format string, args ...any) {
		res.Mismatches = append(res.Mismatches, fmt.Sprintf(format, args...))
	}
	for _, c := range res.Report.Columns {
		pc, ok := py.Columns[c.Column]
		if !ok {
			fail("%s: python has no figures", c.Column)
			continue
		}
		countsChecked := false
		for _, r := range c.Results {
			var ps pyStat
			raw, ok := pc[string(r.Method)]
			if !ok {
				fail("%s/%s: python has no figures", c.Column, r.Method)
				continue
			}
			if err := json.Unmarshal(raw, &ps); err != nil {
				fail("%s/%s: %v", c.Column, r.Method, err)
				continue
			}
			add := func(name string, g, p float64) {
				f := Figure{Column: c.Column, Method: string(r.Method), Name: name, Go: g, Python: p, Agree: agree(g, p)}
				res.Figures = append(res.Figures, f)
				res.Checked++
				if d := math.Abs(g - p); d > 0 {
					res.MaxRelDiff = max(res.MaxRelDiff, d/max(math.Abs(g), math.Abs(p)))
				}
				if !f.Agree {
					fail("%s/%s %s: go %.17g, python %.17g", c.Column, r.Method, name, g, p)
				}
			}
			add("statistic", r.Statistic, ps.Statistic)
			if r.PValue != nil || ps.PValue != nil {
				if r.PValue == nil || ps.PValue == nil {
					fail("%s/%s: p-value on one side only", c.Column, r.Method)
				} else {
					add("p_value", *r.PValue, *ps.PValue)
				}
			}
			if r.Distance != nil && ps.Distance != nil {
				add("distance", *r.Distance, *ps.Distance)
			}
			if r.RefCounts != nil && !countsChecked {
				countsChecked = true
				var rc, cc []float64
				if err := errors.Join(json.Unmarshal(pc["ref_counts"], &rc), json.Unmarshal(pc["cur_counts"], &cc)); err != nil {
					fail("%s: python counts: %v", c.Column, err)
					continue
				}
				res.Checked++
				if !slices.Equal(rc, r.RefCounts) || !slices.Equal(cc, r.CurCounts) {
					fail("%s: bin counts differ: go %v / %v, python %v / %v", c.Column, r.RefCounts, r.CurCounts, rc, cc)
				}
			}
		}
	}
}

func (r *Result) print() {
	fmt.Printf("drift: %s, %s (%d rows) against %s (%d rows); %d cores, %d reps\n",
		filepath.Base(r.Data), r.RefMonth, r.RefRows, r.CurMonth, r.CurRows, r.Cores, r.Reps)
	fmt.Printf("load (date, delay, distance, origin of all %d rows): %.2f s, %.0f ms per 500,000 rows\n\n",
		r.TotalRows, r.LoadSeconds, r.LoadSeconds*1e3*500_000/float64(r.TotalRows))
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "column\tmethod\tfigure\tgo\tpython\tagree\t")
	for _, f := range r.Figures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.10g\t%.10g\t%v\t\n", f.Column, f.Method, f.Name, f.Go, f.Python, f.Agree)
	}
	tw.Flush()
	fmt.Println()
	fmt.Printf("go      best %8.1f ms   median %8.1f ms\n", r.GoBestMs, r.GoMedianMs)
	fmt.Printf("python  best %8.1f ms   median %8.1f ms   (numpy %s, scipy %s)\n", r.PyBestMs, r.PyMedianMs, r.Numpy, r.Scipy)
	fmt.Printf("ratio   %.1f× (medians), %.1f× (best)\n", r.RatioMedian, r.RatioBest)
	if len(r.Mismatches) == 0 {
		fmt.Printf("all %d checks agree (statistics to a relative 1e-6, bin counts exactly); largest relative difference %.2g\n", r.Checked, r.MaxRelDiff)
	} else {
		fmt.Printf("%d of %d checks DISAGREE:\n  %s\n", len(r.Mismatches), r.Checked, strings.Join(r.Mismatches, "\n  "))
	}
}
