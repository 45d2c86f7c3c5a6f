// Package realdata locates the real data sets that tests run on: the files
// of vega-datasets 3.2.1 (flights-3m.parquet, seattle-weather.csv,
// weather.csv; see ../shared/data/README.md for their sources and terms).
//
// scripts/test.sh sets MLOOP_TEST_DATA to their folder (../shared/data, or a
// copy fetched once with `npm pack vega-datasets@3.2.1`), and then a missing
// file fails the test. A plain `go test` looks in ../shared/data next to the
// repository and skips the test when the file is not there.
package realdata

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Path returns the path of the data set file name, failing or skipping tb
// as the package doc says.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	if dir := os.Getenv("MLOOP_TEST_DATA"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			tb.Fatalf("MLOOP_TEST_DATA=%s: %v", dir, err)
		}
		return p
	}
	p := filepath.Join(repoRoot(), "..", "shared", "data", name)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("%s is absent (scripts/test.sh provides it): %v", name, err)
	}
	return p
}

// repoRoot returns the repository's root folder, from this file's place in it.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
