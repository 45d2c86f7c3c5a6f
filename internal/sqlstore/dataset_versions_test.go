package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

// hexOf returns the SHA-256 of s in hex, as a blob name.
func hexOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// newTestVersion returns an unnumbered version of dataset name whose files
// are named after contents, with its digest computed.
func newTestVersion(name string, contents ...string) *dataset.Version {
	v := &dataset.Version{Dataset: name, CreatedAt: time.UnixMilli(1_700_000_000_123).UTC()}
	for i, c := range contents {
		v.Files = append(v.Files, dataset.File{Path: fmt.Sprintf("part-%d.csv", i), SHA256: hexOf(c),
			Size: int64(len(c)), Format: dataset.FormatCSV, Rows: int64(i + 1)})
		v.Rows += int64(i + 1)
		v.Bytes += int64(len(c))
	}
	v.Digest = dataset.ManifestDigest(v.Files)
	return v
}

// MustCreateVersion stores v and fails the test unless it was created.
func MustCreateVersion(tb testing.TB, s *sqlstore.DatasetStore, v *dataset.Version) *dataset.Version {
	tb.Helper()
	got, created, err := s.CreateVersion(context.Background(), v)
	if err != nil || !created {
		tb.Fatalf("create version of %q: got created=%v, err %v; want a new version", v.Dataset, created, err)
	}
	return got
}

func TestDatasetStore_CreateGet(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewDatasetStore(db)
		v := newTestVersion("flights", "a,b\n1,2\n", "a,b\n3,4\n5,6\n")
		v.Source, v.User = "/data/flights", "ann"
		v.Tags = map[string]string{"month": "01", "origin": "bts"}
		mean := 2.5
		v.Profile = &dataset.Profile{Rows: 3, Columns: []*dataset.ColumnProfile{
			{Name: "a", Type: dataset.TypeInteger, Count: 3, Mean: &mean, Distinct: 3},
		}}
		got := MustCreateVersion(t, s, v)
		if got.Version != 1 {
			t.Fatalf("first version: got number %d, want 1", got.Version)
		}

		back, err := s.GetVersion(ctx, "flights", 1, true)
		if err != nil {
			t.Fatalf("GetVersion: %v", err)
		}
		want := *v
		want.Version = 1
		if !reflect.DeepEqual(back, &want) {
			t.Fatalf("GetVersion:\n got %+v\nwant %+v", back, &want)
		}
		noProfile, err := s.GetVersion(ctx, "flights", 1, false)
		if err != nil || noProfile.Profile != nil || len(noProfile.Files) != 2 {
			t.Fatalf("GetVersion without profile: got %+v, err %v; want files and no profile", noProfile, err)
		}

		if _, err := s.GetVersion(ctx, "flights", 2, false); !mloop.IsNotFound(err) {
			t.Fatalf("GetVersion of a missing number: got %v, want ENOTFOUND", err)
		}
		if _, err := s.GetVersion(ctx, "nope", 1, false); !mloop.IsNotFound(err) {
			t.Fatalf("GetVersion of a missing dataset: got %v, want ENOTFOUND", err)
		}
		if _, err := s.LatestVersion(ctx, "nope"); !mloop.IsNotFound(err) {
			t.Fatalf("LatestVersion of a missing dataset: got %v, want ENOTFOUND", err)
		}
		if _, err := s.ListVersions(ctx, "nope", 0, 10); !mloop.IsNotFound(err) {
			t.Fatalf("ListVersions of a missing dataset: got %v, want ENOTFOUND", err)
		}
	})
}

func TestDatasetStore_ListVersions(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewDatasetStore(db)
		for i := range 5 {
			v := newTestVersion("d", fmt.Sprintf("content %d", i), "shared")
			v.Profile = &dataset.Profile{Rows: v.Rows}
			v.CreatedAt = v.CreatedAt.Add(time.Duration(i) * time.Second)
			MustCreateVersion(t, s, v)
		}
		MustCreateVersion(t, s, newTestVersion("another", "x"))

		latest, err := s.LatestVersion(ctx, "d")
		if err != nil || latest != 5 {
			t.Fatalf("LatestVersion: got %d, %v; want 5", latest, err)
		}
		var numbers []int64
		for before := int64(0); ; {
			page, err := s.ListVersions(ctx, "d", before, 2)
			if err != nil {
				t.Fatalf("ListVersions(before %d): %v", before, err)
			}
			if len(page) == 0 {
				break
			}
			for _, v := range page {
				if v.Profile != nil || len(v.Files) != 2 || v.Dataset != "d" {
					t.Fatalf("listed version %d: got profile %v, %d files, dataset %q; want no profile, 2 files, d",
						v.Version, v.Profile != nil, len(v.Files), v.Dataset)
				}
				numbers = append(numbers, v.Version)
			}
			before = page[len(page)-1].Version
		}
		if want := []int64{5, 4, 3, 2, 1}; !slices.Equal(numbers, want) {
			t.Fatalf("paged versions: got %v, want %v", numbers, want)
		}

		sums, err := s.ListDatasets(ctx)
		if err != nil {
			t.Fatalf("ListDatasets: %v", err)
		}
		want := []dataset.Summary{
			{Name: "another", LatestVersion: 1, Versions: 1, Rows: 1,
				CreatedAt: time.UnixMilli(1_700_000_000_123).UTC(), UpdatedAt: time.UnixMilli(1_700_000_000_123).UTC()},
			{Name: "d", LatestVersion: 5, Versions: 5, Rows: 3,
				CreatedAt: time.UnixMilli(1_700_000_000_123).UTC(), UpdatedAt: time.UnixMilli(1_700_000_004_123).UTC()},
		}
		if !reflect.DeepEqual(sums, want) {
			t.Fatalf("ListDatasets:\n got %+v\nwant %+v", sums, want)
		}
	})
}

func TestDatasetStore_SameDigestTwice(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewDatasetStore(db)
		first := newTestVersion("d", "same bytes")
		first.Profile = &dataset.Profile{Rows: 1}
		MustCreateVersion(t, s, first)
		again := newTestVersion("d", "same bytes")
		again.User = "bob"
		got, created, err := s.CreateVersion(ctx, again)
		if err != nil || created {
			t.Fatalf("second create with the same digest: got created=%v, err %v; want the existing version", created, err)
		}
		if got.Version != 1 || got.User != "" || got.Profile == nil || got.Profile.Rows != 1 {
			t.Fatalf("second create: got version %d user %q profile %+v; want version 1 as first stored, with its profile",
				got.Version, got.User, got.Profile)
		}
		// The same content in another dataset is a version of its own.
		other := newTestVersion("e", "same bytes")
		if got := MustCreateVersion(t, s, other); got.Version != 1 {
			t.Fatalf("same digest in another dataset: got version %d, want 1", got.Version)
		}
		if n, _ := s.LatestVersion(ctx, "d"); n != 1 {
			t.Fatalf("latest version after a repeated push: got %d, want 1", n)
		}
	})
}

func TestDatasetStore_ConcurrentCreates(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewDatasetStore(db)
		const n = 16
		numbers := make([]int64, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				v, created, err := s.CreateVersion(ctx, newTestVersion("race", fmt.Sprintf("content %d", i)))
				if err == nil && !created {
					err = fmt.Errorf("distinct content %d was not created", i)
				}
				if err == nil {
					numbers[i] = v.Version
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("create %d: %v", i, err)
			}
		}
		slices.Sort(numbers)
		for i, got := range numbers {
			if got != int64(i+1) {
				t.Fatalf("version numbers of %d concurrent creates: got %v, want 1 to %d each once", n, numbers, n)
			}
		}

		// Concurrent pushes of one content make one version.
		createdCount := 0
		same := make([]int64, n)
		var mu sync.Mutex
		for i := range n {
			wg.Go(func() {
				v, created, err := s.CreateVersion(ctx, newTestVersion("race", "identical"))
				mu.Lock()
				defer mu.Unlock()
				errs[i] = err
				if err == nil {
					same[i] = v.Version
					if created {
						createdCount++
					}
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("create of identical content %d: %v", i, err)
			}
		}
		if createdCount != 1 {
			t.Fatalf("concurrent identical creates: got %d created, want 1", createdCount)
		}
		for _, got := range same {
			if got != n+1 {
				t.Fatalf("concurrent identical creates: got versions %v, want all %d", same, n+1)
			}
		}
		if latest, _ := s.LatestVersion(ctx, "race"); latest != n+1 {
			t.Fatalf("latest after the races: got %d, want %d", latest, n+1)
		}
	})
}

func TestDatasetStore_FindDigestPrefix(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewDatasetStore(db)
		var digests []string
		for i := range 40 {
			digests = append(digests, MustCreateVersion(t, s, newTestVersion("d", fmt.Sprint(i))).Digest)
		}
		hex0 := digests[0][len("sha256:"):]
		got, err := s.FindDigestPrefix(ctx, "d", hex0[:10], 10)
		if err != nil || len(got) != 1 || got[0].Version != 1 || got[0].Digest != digests[0] {
			t.Fatalf("FindDigestPrefix(%s): got %+v, %v; want version 1 alone", hex0[:10], got, err)
		}
		// With 40 digests some first hex digit repeats: every version with
		// that digit comes back, by number.
		first := map[byte][]int64{}
		for i, d := range digests {
			first[d[7]] = append(first[d[7]], int64(i+1))
		}
		for c, want := range first {
			ms, err := s.FindDigestPrefix(ctx, "d", string(c), 100)
			if err != nil {
				t.Fatalf("FindDigestPrefix(%c): %v", c, err)
			}
			var gotNums []int64
			for _, m := range ms {
				gotNums = append(gotNums, m.Version)
			}
			if !slices.Equal(gotNums, want) {
				t.Fatalf("FindDigestPrefix(%c): got %v, want %v", c, gotNums, want)
			}
		}
		if ms, err := s.FindDigestPrefix(ctx, "other", hex0, 10); err != nil || len(ms) != 0 {
			t.Fatalf("FindDigestPrefix in another dataset: got %+v, %v; want none", ms, err)
		}
	})
}

func TestDatasetStore_Schema(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewDatasetStore(db)
		now := time.Unix(1_700_000_000, 0)
		if err := s.SetSchema(ctx, "d", "columns: []\n", now); !mloop.IsNotFound(err) {
			t.Fatalf("SetSchema of a missing dataset: got %v, want ENOTFOUND", err)
		}
		MustCreateVersion(t, s, newTestVersion("d", "x"))
		if _, err := s.GetSchema(ctx, "d"); !mloop.IsNotFound(err) {
			t.Fatalf("GetSchema before one is set: got %v, want ENOTFOUND", err)
		}
		for _, text := range []string{"columns:\n  - name: a\n    type: integer\n", "columns: []\n"} {
			if err := s.SetSchema(ctx, "d", text, now); err != nil {
				t.Fatalf("SetSchema: %v", err)
			}
			got, err := s.GetSchema(ctx, "d")
			if err != nil || got != text {
				t.Fatalf("GetSchema: got %q, %v; want %q", got, err, text)
			}
		}
	})
}

func TestDatasetStore_ReferencedBlobs(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewDatasetStore(db)
		MustCreateVersion(t, s, newTestVersion("d", "one", "two"))
		MustCreateVersion(t, s, newTestVersion("e", "two"))
		got, err := s.ReferencedBlobs(ctx, []string{hexOf("one"), hexOf("two"), hexOf("three")})
		if err != nil {
			t.Fatalf("ReferencedBlobs: %v", err)
		}
		want := map[string]bool{hexOf("one"): true, hexOf("two"): true}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ReferencedBlobs: got %v, want %v", got, want)
		}
	})
}

func TestTrackingStore_RunsWithDatasetDigest(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := MustTrackingStore(t, db)
		exp := MustCreateExperiment(t, s, "e")
		digest := dataset.ManifestDigest([]dataset.File{{Path: "a.csv", SHA256: hexOf("a"), Size: 1}})
		hexDigest := digest[len("sha256:"):]
		input := func(name, d, context string) tracking.DatasetInput {
			in := tracking.DatasetInput{Dataset: tracking.Dataset{Name: name, Digest: d, SourceType: "local", Source: "x"}}
			if context != "" {
				in.Tags = []tracking.Tag{{Key: "mlflow.data.context", Value: context}}
			}
			return in
		}
		logged := []struct {
			run    int
			inputs []tracking.DatasetInput
		}{
			{1, []tracking.DatasetInput{input("flights", digest, "training")}},
			{2, []tracking.DatasetInput{input("flights-short", hexDigest[:8], "eval"), input("other", hexOf("b")[:8], "")}},
			{3, []tracking.DatasetInput{input("unrelated", hexOf("c"), "")}},
			{4, []tracking.DatasetInput{input("deleted-run", hexDigest, "")}},
		}
		for _, l := range logged {
			MustCreateRun(t, s, exp, runID(l.run))
			if err := s.LogInputs(ctx, runID(l.run), l.inputs, nil); err != nil {
				t.Fatalf("LogInputs: %v", err)
			}
		}
		if err := s.SetRunLifecycle(ctx, runID(4), "deleted", 2000); err != nil {
			t.Fatalf("delete run: %v", err)
		}
		got, err := s.RunsWithDatasetDigest(ctx, dataset.LineageDigests(digest))
		if err != nil {
			t.Fatalf("RunsWithDatasetDigest: %v", err)
		}
		want := []dataset.LineageRun{
			{RunID: runID(1), ExperimentID: exp, Status: "RUNNING", StartTime: 1000, DatasetName: "flights", Context: "training"},
			{RunID: runID(2), ExperimentID: exp, Status: "RUNNING", StartTime: 1000, DatasetName: "flights-short", Context: "eval"},
		}
		for i := range got {
			got[i].RunName = "" // names are generated
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("RunsWithDatasetDigest:\n got %+v\nwant %+v", got, want)
		}
	})
}
