// Command push measures pushing a dataset and hashing a large file, and
// prints each figure next to its target or baseline from the same run.
//
//   - push: builds mloop, starts `mloop server` as a process of its own on a
//     fresh data folder and free port, and runs `mloop data push` of the
//     Parquet file (default ../shared/data/flights-3m.parquet) as another
//     process: the wall time of the push command (scan, hash, profile,
//     upload, commit) and the peak RSS of both processes (the client's
//     from getrusage, the server's VmHWM from /proc). Each repetition uses
//     a fresh server, so every push uploads; the best repetition is
//     reported, plus an identical re-push (nothing to upload). A breakdown
//     of the scan (hash and profile, in this process) is printed alongside.
//     Targets: ≤ 3 s and ≤ 300 MB.
//   - hash: a 1 GiB file (created in a temporary folder, or -file) hashed by
//     dataset.HashFile in this process and by `sha256sum` in the same run,
//     alternating, after warming the page cache; best of -reps each, and the
//     ratio of throughputs. Target: ≥ 0.90 of sha256sum.
//
// Usage (from the repository root):
//
//	go run ./bench/push [-data FILE.parquet] [-file BIG] [-size 1073741824] [-reps 5] [-json]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/mloop/mloop/bench/internal/benchserver"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mloop/mloop/internal/dataset"
)

func main() {
	data := flag.String("data", "../shared/data/flights-3m.parquet", "data file to push")
	file := flag.String("file", "", "file to hash (default: a new file of -size bytes in a temporary folder)")
	size := flag.Int64("size", 1<<30, "size of the generated file to hash")
	reps := flag.Int("reps", 5, "repetitions of each measurement (best is reported)")
	only := flag.String("only", "", "run only one part: push or hash")
	asJSON := flag.Bool("json", false, "print the figures as JSON")
	keep := flag.Bool("keep", false, "keep the temporary folder")
	flag.Parse()
	if err := run(*data, *file, *size, *reps, *only, *asJSON, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Result holds every figure the benchmark prints.
type Result struct {
	Date       string `json:"date"`
	GOMAXPROCS int    `json:"gomaxprocs"`

	PushFile          string  `json:"push_file,omitempty"`
	PushBytes         int64   `json:"push_bytes,omitempty"`
	PushRows          int64   `json:"push_rows,omitempty"`
	PushSeconds       float64 `json:"push_seconds,omitempty"`        // best first push, wall time of the CLI
	PushSecondsMedian float64 `json:"push_seconds_median,omitempty"` // median first push
	RepushSeconds     float64 `json:"repush_seconds,omitempty"`      // identical re-push
	ClientPeakRSSMB   float64 `json:"client_peak_rss_mb,omitempty"`
	ServerPeakRSSMB   float64 `json:"server_peak_rss_mb,omitempty"`
	TotalPeakRSSMB    float64 `json:"total_peak_rss_mb,omitempty"`
	ScanSeconds       float64 `json:"scan_seconds,omitempty"` // ScanPath in this process
	HashOnlySeconds   float64 `json:"hash_only_seconds,omitempty"`

	HashFileBytes   int64   `json:"hash_file_bytes,omitempty"`
	HashOursMBps    float64 `json:"hash_ours_mb_per_s,omitempty"`
	HashCoreutilsMB float64 `json:"hash_sha256sum_mb_per_s,omitempty"`
	HashRatio       float64 `json:"hash_ratio,omitempty"`
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run(data, file string, size int64, reps int, only string, asJSON, keep bool) error {
	if reps < 1 {
		return fmt.Errorf("-reps must be at least 1")
	}
	dir, err := os.MkdirTemp("", "mloop-bench-push-")
	if err != nil {
		return err
	}
	if keep {
		progress("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	res := Result{Date: time.Now().UTC().Format(time.RFC3339), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	if only == "" || only == "push" {
		if err := benchPush(&res, dir, data, reps); err != nil {
			return fmt.Errorf("push: %w", err)
		}
	}
	if only == "" || only == "hash" {
		if err := benchHash(&res, dir, file, size, reps); err != nil {
			return fmt.Errorf("hash: %w", err)
		}
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printResult(os.Stdout, &res)
	return nil
}

func printResult(w io.Writer, r *Result) {
	fmt.Fprintf(w, "mloop push benchmark, %s, GOMAXPROCS=%d\n\n", r.Date, r.GOMAXPROCS)
	if r.PushFile != "" {
		fmt.Fprintf(w, "push + profile %s (%.1f MB, %d rows) through `mloop data push` to `mloop server`:\n",
			filepath.Base(r.PushFile), float64(r.PushBytes)/1e6, r.PushRows)
		fmt.Fprintf(w, "  wall time            %6.2f s   (median %.2f s)   target ≤ 3 s   %s\n", r.PushSeconds, r.PushSecondsMedian, verdict(r.PushSeconds <= 3))
		fmt.Fprintf(w, "  peak RSS client      %6.1f MB\n", r.ClientPeakRSSMB)
		fmt.Fprintf(w, "  peak RSS server      %6.1f MB\n", r.ServerPeakRSSMB)
		fmt.Fprintf(w, "  peak RSS together    %6.1f MB              target ≤ 300 MB %s\n", r.TotalPeakRSSMB, verdict(r.TotalPeakRSSMB <= 300))
		fmt.Fprintf(w, "  identical re-push    %6.2f s   (scan again, nothing uploaded)\n", r.RepushSeconds)
		fmt.Fprintf(w, "  breakdown: ScanPath (hash ∥ profile) %.2f s; hashing alone %.3f s\n\n", r.ScanSeconds, r.HashOnlySeconds)
	}
	if r.HashFileBytes > 0 {
		fmt.Fprintf(w, "SHA-256 of a %.2f GB file (page cache warm, best of runs alternating):\n", float64(r.HashFileBytes)/1e9)
		fmt.Fprintf(w, "  dataset.HashFile     %7.0f MB/s\n", r.HashOursMBps)
		fmt.Fprintf(w, "  sha256sum            %7.0f MB/s\n", r.HashCoreutilsMB)
		fmt.Fprintf(w, "  ratio                %7.3f        target ≥ 0.90  %s\n", r.HashRatio, verdict(r.HashRatio >= 0.9))
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// benchPush measures `mloop data push` against a fresh server per repetition.
func benchPush(res *Result, dir, data string, reps int) error {
	st, err := os.Stat(data)
	if err != nil {
		return fmt.Errorf("%w (pass -data, or fetch the file with `npm pack vega-datasets@3.2.1`)", err)
	}
	res.PushFile, res.PushBytes = data, st.Size()

	progress("building mloop")
	bin, err := benchserver.Build(dir)
	if err != nil {
		return err
	}

	// Warm the page cache so that every repetition reads the same way.
	if _, _, err := dataset.HashFile(context.Background(), data, nil); err != nil {
		return err
	}

	var times []float64
	for i := range reps {
		srv, err := benchserver.Start(bin, filepath.Join(dir, fmt.Sprintf("server-%d", i)))
		if err != nil {
			return err
		}
		progress("push %d/%d", i+1, reps)
		p, err := pushCLI(bin, srv.URL, data)
		if err != nil {
			srv.Stop()
			return err
		}
		if !p.created {
			srv.Stop()
			return fmt.Errorf("push to a fresh server did not create a version")
		}
		times = append(times, p.seconds)
		if i == 0 || p.seconds < res.PushSeconds {
			res.PushSeconds = p.seconds
		}
		res.PushRows = p.rows
		res.ClientPeakRSSMB = max(res.ClientPeakRSSMB, p.rssMB)
		if i == reps-1 {
			progress("identical re-push")
			again, err := pushCLI(bin, srv.URL, data)
			if err != nil {
				srv.Stop()
				return err
			}
			if again.created || again.uploaded != 0 {
				srv.Stop()
				return fmt.Errorf("identical re-push: created=%v uploaded=%d, want the existing version and no upload", again.created, again.uploaded)
			}
			res.RepushSeconds = again.seconds
			res.ClientPeakRSSMB = max(res.ClientPeakRSSMB, again.rssMB)
		}
		res.ServerPeakRSSMB = max(res.ServerPeakRSSMB, srv.PeakRSSMB())
		srv.Stop()
	}
	res.PushSecondsMedian = median(times)
	res.TotalPeakRSSMB = res.ClientPeakRSSMB + res.ServerPeakRSSMB

	// Breakdown, in this process.
	start := time.Now()
	if _, err := dataset.ScanPath(context.Background(), data, dataset.ScanOptions{}); err != nil {
		return err
	}
	res.ScanSeconds = time.Since(start).Seconds()
	start = time.Now()
	if _, _, err := dataset.HashFile(context.Background(), data, nil); err != nil {
		return err
	}
	res.HashOnlySeconds = time.Since(start).Seconds()
	return nil
}

// pushResult is one run of `mloop data push`.
type pushResult struct {
	seconds  float64
	rssMB    float64
	created  bool
	uploaded int
	rows     int64
}

// pushCLI runs `mloop data push bench FILE --json` and measures it.
func pushCLI(bin, server, data string) (pushResult, error) {
	cmd := exec.Command(bin, "data", "push", "bench", data, "--server", server, "--json", "--quiet")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	if err != nil {
		return pushResult{}, fmt.Errorf("mloop data push: %v\n%s", err, stderr.Bytes())
	}
	var out struct {
		Created       bool `json:"created"`
		UploadedFiles int  `json:"uploaded_files"`
		Version       struct {
			Rows int64 `json:"rows"`
		} `json:"version"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return pushResult{}, fmt.Errorf("mloop data push --json: %v: %s", err, stdout.Bytes())
	}
	r := pushResult{seconds: elapsed.Seconds(), created: out.Created, uploaded: out.UploadedFiles, rows: out.Version.Rows}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.rssMB = float64(ru.Maxrss) / 1024 // kilobytes on Linux
	}
	return r, nil
}

// benchHash compares dataset.HashFile with sha256sum on one big file.
func benchHash(res *Result, dir, file string, size int64, reps int) error {
	if file == "" {
		file = filepath.Join(dir, "big.bin")
		progress("writing %.2f GB to %s", float64(size)/1e9, file)
		if err := writeRandomFile(file, size); err != nil {
			return err
		}
	}
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	res.HashFileBytes = st.Size()
	ctx := context.Background()

	progress("warming the page cache")
	want, err := sha256sum(file)
	if err != nil {
		return err
	}
	var bestOurs, bestTheirs time.Duration
	for i := range reps {
		progress("hash %d/%d", i+1, reps)
		// Alternate which goes first, so neither always follows the other.
		for k := range 2 {
			if (i+k)%2 == 0 {
				start := time.Now()
				got, _, err := dataset.HashFile(ctx, file, nil)
				d := time.Since(start)
				if err != nil {
					return err
				}
				if got != want {
					return fmt.Errorf("dataset.HashFile: got %s, sha256sum says %s", got, want)
				}
				if bestOurs == 0 || d < bestOurs {
					bestOurs = d
				}
			} else {
				start := time.Now()
				if _, err := sha256sum(file); err != nil {
					return err
				}
				d := time.Since(start)
				if bestTheirs == 0 || d < bestTheirs {
					bestTheirs = d
				}
			}
		}
	}
	mb := float64(res.HashFileBytes) / 1e6
	res.HashOursMBps = mb / bestOurs.Seconds()
	res.HashCoreutilsMB = mb / bestTheirs.Seconds()
	res.HashRatio = res.HashOursMBps / res.HashCoreutilsMB
	return nil
}

// sha256sum runs coreutils' sha256sum on file and returns the digest.
func sha256sum(file string) (string, error) {
	out, err := exec.Command("sha256sum", file).Output()
	if err != nil {
		return "", fmt.Errorf("sha256sum: %w", err)
	}
	sum, _, _ := strings.Cut(string(out), " ")
	return sum, nil
}

// writeRandomFile writes size pseudo-random bytes to path.
func writeRandomFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	w := bufio.NewWriterSize(f, 1<<20)
	buf := make([]byte, 1<<20)
	for written := int64(0); written < size; {
		for i := 0; i < len(buf); i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
		}
		n := int64(len(buf))
		if size-written < n {
			n = size - written
		}
		if _, err := w.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		written += n
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
