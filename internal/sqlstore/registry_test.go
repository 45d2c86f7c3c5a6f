package sqlstore_test

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

// mustRegisterModel creates the registered model name at time now.
func mustRegisterModel(tb testing.TB, s *sqlstore.RegistryStore, name string, now int64, tags ...registry.Tag) {
	tb.Helper()
	m := &registry.RegisteredModel{Name: name, CreationTimestamp: now, LastUpdatedTimestamp: now, Tags: tags}
	if err := s.CreateRegisteredModel(context.Background(), m); err != nil {
		tb.Fatalf("create registered model %q: %v", name, err)
	}
}

// mustRegisterVersion creates a version of name at time now and returns its number.
func mustRegisterVersion(tb testing.TB, s *sqlstore.RegistryStore, name, runID string, now int64, tags ...registry.Tag) int64 {
	tb.Helper()
	v := &registry.ModelVersion{
		Name: name, CreationTimestamp: now, LastUpdatedTimestamp: now,
		CurrentStage: registry.StageNone, Status: registry.StatusReady,
		Source: "runs:/" + runID + "/model", RunID: runID, Tags: tags,
	}
	if err := s.CreateModelVersion(context.Background(), v); err != nil {
		tb.Fatalf("create version of %q: %v", name, err)
	}
	return v.Version
}

// wantRegistryErr fails unless err is of the given mloop kind.
func wantRegistryErr(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := mloop.ErrorCode(err); got != code {
		tb.Fatalf("got error %v (kind %q), want kind %q", err, got, code)
	}
}

// registryVersionNumbers lists the numbers of vs.
func registryVersionNumbers(vs []*registry.ModelVersion) []int64 {
	out := []int64{}
	for _, v := range vs {
		out = append(out, v.Version)
	}
	return out
}

func TestRegistryStoreRegisteredModel(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewRegistryStore(db)
		mustRegisterModel(t, s, "m", 100, registry.Tag{Key: "a", Value: "1"}, registry.Tag{Key: "a", Value: "2"}, registry.Tag{Key: "b", Value: ""})

		got, err := s.GetRegisteredModel(ctx, "m")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		want := &registry.RegisteredModel{Name: "m", CreationTimestamp: 100, LastUpdatedTimestamp: 100,
			Tags: []registry.Tag{{Key: "a", Value: "2"}, {Key: "b", Value: ""}}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("get: got %+v, want %+v", got, want)
		}

		// The created model reads back as it was left.
		created := &registry.RegisteredModel{Name: "n", CreationTimestamp: 100, LastUpdatedTimestamp: 100,
			Tags: []registry.Tag{{Key: "z", Value: "1"}, {Key: "a", Value: "1"}, {Key: "z", Value: "2"}}}
		if err := s.CreateRegisteredModel(ctx, created); err != nil {
			t.Fatalf("create: %v", err)
		}
		if read, err := s.GetRegisteredModel(ctx, "n"); err != nil || !reflect.DeepEqual(read, created) {
			t.Errorf("created model: got %+v (%v) on read, want %+v as created", read, err, created)
		}

		wantRegistryErr(t, s.CreateRegisteredModel(ctx, &registry.RegisteredModel{Name: "m"}), mloop.EEXISTS)
		_, err = s.GetRegisteredModel(ctx, "M")
		wantRegistryErr(t, err, mloop.ENOTFOUND)

		m, err := s.UpdateRegisteredModel(ctx, "m", "a description", 200)
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		if m.Description != "a description" || m.LastUpdatedTimestamp != 200 || m.CreationTimestamp != 100 {
			t.Errorf("update: got %+v, want description set and last update 200", m)
		}
		_, err = s.UpdateRegisteredModel(ctx, "nope", "x", 200)
		wantRegistryErr(t, err, mloop.ENOTFOUND)

		if err := s.SetRegisteredModelTag(ctx, "m", registry.Tag{Key: "b", Value: "3"}); err != nil {
			t.Fatalf("set tag: %v", err)
		}
		if err := s.DeleteRegisteredModelTag(ctx, "m", "a"); err != nil {
			t.Fatalf("delete tag: %v", err)
		}
		if err := s.DeleteRegisteredModelTag(ctx, "m", "never-set"); err != nil {
			t.Fatalf("delete a missing tag: got %v, want no error", err)
		}
		wantRegistryErr(t, s.SetRegisteredModelTag(ctx, "nope", registry.Tag{Key: "k"}), mloop.ENOTFOUND)
		wantRegistryErr(t, s.DeleteRegisteredModelTag(ctx, "nope", "k"), mloop.ENOTFOUND)
		got, _ = s.GetRegisteredModel(ctx, "m")
		if want := []registry.Tag{{Key: "b", Value: "3"}}; !reflect.DeepEqual(got.Tags, want) {
			t.Errorf("tags: got %v, want %v", got.Tags, want)
		}
	})
}

func TestRegistryStoreRenameCascades(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewRegistryStore(db)
		mustRegisterModel(t, s, "old", 100, registry.Tag{Key: "team", Value: "a"})
		mustRegisterModel(t, s, "taken", 100)
		mustRegisterVersion(t, s, "old", "r1", 110, registry.Tag{Key: "k", Value: "v"})
		mustRegisterVersion(t, s, "old", "r2", 120)
		if err := s.SetAlias(ctx, "old", "champion", 1); err != nil {
			t.Fatalf("set alias: %v", err)
		}

		_, err := s.RenameRegisteredModel(ctx, "old", "taken", 130)
		wantRegistryErr(t, err, mloop.EEXISTS)
		_, err = s.RenameRegisteredModel(ctx, "nope", "other", 130)
		wantRegistryErr(t, err, mloop.ENOTFOUND)

		m, err := s.RenameRegisteredModel(ctx, "old", "new", 140)
		if err != nil {
			t.Fatalf("rename: %v", err)
		}
		if m.Name != "new" || m.LastUpdatedTimestamp != 140 {
			t.Errorf("rename: got name %q last update %d, want new and 140", m.Name, m.LastUpdatedTimestamp)
		}
		if want := []registry.Alias{{Alias: "champion", Version: 1}}; !reflect.DeepEqual(m.Aliases, want) {
			t.Errorf("aliases after rename: got %v, want %v", m.Aliases, want)
		}
		if want := []registry.Tag{{Key: "team", Value: "a"}}; !reflect.DeepEqual(m.Tags, want) {
			t.Errorf("tags after rename: got %v, want %v", m.Tags, want)
		}
		_, err = s.GetRegisteredModel(ctx, "old")
		wantRegistryErr(t, err, mloop.ENOTFOUND)

		v, err := s.GetModelVersionByAlias(ctx, "new", "champion")
		if err != nil {
			t.Fatalf("get by alias after rename: %v", err)
		}
		if v.Name != "new" || v.Version != 1 || v.RunID != "r1" || v.LastUpdatedTimestamp != 140 {
			t.Errorf("version after rename: got %+v, want new/1 from r1 updated at 140", v)
		}
		if want := []registry.Tag{{Key: "k", Value: "v"}}; !reflect.DeepEqual(v.Tags, want) {
			t.Errorf("version tags after rename: got %v, want %v", v.Tags, want)
		}
		if next := mustRegisterVersion(t, s, "new", "r3", 150); next != 3 {
			t.Errorf("next version after rename: got %d, want 3", next)
		}
	})
}

func TestRegistryStoreDeleteModelCascades(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewRegistryStore(db)
		mustRegisterModel(t, s, "m", 100, registry.Tag{Key: "t", Value: "1"})
		mustRegisterVersion(t, s, "m", "r1", 110, registry.Tag{Key: "k", Value: "v"})
		if err := s.SetAlias(ctx, "m", "a", 1); err != nil {
			t.Fatalf("set alias: %v", err)
		}
		if err := s.DeleteRegisteredModel(ctx, "m"); err != nil {
			t.Fatalf("delete: %v", err)
		}
		wantRegistryErr(t, s.DeleteRegisteredModel(ctx, "m"), mloop.ENOTFOUND)
		_, err := s.GetModelVersion(ctx, "m", 1)
		wantRegistryErr(t, err, mloop.ENOTFOUND)

		// A new model of the same name starts afresh.
		mustRegisterModel(t, s, "m", 200)
		if n := mustRegisterVersion(t, s, "m", "r2", 210); n != 1 {
			t.Errorf("first version of the re-created model: got %d, want 1", n)
		}
		m, err := s.GetRegisteredModel(ctx, "m")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if len(m.Tags) != 0 || len(m.Aliases) != 0 {
			t.Errorf("re-created model: got tags %v aliases %v, want none", m.Tags, m.Aliases)
		}
		v, err := s.GetModelVersion(ctx, "m", 1)
		if err != nil {
			t.Fatalf("get version: %v", err)
		}
		if len(v.Tags) != 0 || len(v.Aliases) != 0 || v.RunID != "r2" {
			t.Errorf("re-created version: got %+v, want run r2 with no tags or aliases", v)
		}
	})
}

func TestRegistryStoreDeleteVersion(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewRegistryStore(db)
		mustRegisterModel(t, s, "m", 100)
		for i := range 3 {
			mustRegisterVersion(t, s, "m", "r", int64(110+i))
		}
		if err := s.SetAlias(ctx, "m", "champion", 3); err != nil {
			t.Fatalf("set alias: %v", err)
		}
		if err := s.SetAlias(ctx, "m", "backup", 2); err != nil {
			t.Fatalf("set alias: %v", err)
		}
		if err := s.DeleteModelVersion(ctx, "m", 3, 200); err != nil {
			t.Fatalf("delete version: %v", err)
		}
		wantRegistryErr(t, s.DeleteModelVersion(ctx, "m", 3, 200), mloop.ENOTFOUND)
		_, err := s.GetModelVersion(ctx, "m", 3)
		wantRegistryErr(t, err, mloop.ENOTFOUND)
		_, err = s.GetModelVersionByAlias(ctx, "m", "champion")
		wantRegistryErr(t, err, mloop.ENOTFOUND)
		wantRegistryErr(t, s.SetAlias(ctx, "m", "champion", 3), mloop.ENOTFOUND)
		wantRegistryErr(t, s.SetModelVersionTag(ctx, "m", 3, registry.Tag{Key: "k"}), mloop.ENOTFOUND)
		staging := registry.StageStaging
		_, err = s.UpdateModelVersion(ctx, "m", 3, registry.VersionUpdate{Stage: &staging}, 200)
		wantRegistryErr(t, err, mloop.ENOTFOUND)

		m, err := s.GetRegisteredModel(ctx, "m")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if m.LastUpdatedTimestamp != 200 {
			t.Errorf("model last update after deleting a version: got %d, want 200", m.LastUpdatedTimestamp)
		}
		if want := []registry.Alias{{Alias: "backup", Version: 2}}; !reflect.DeepEqual(m.Aliases, want) {
			t.Errorf("aliases: got %v, want %v", m.Aliases, want)
		}
		if got := registryVersionNumbers(m.LatestVersions); !reflect.DeepEqual(got, []int64{2}) {
			t.Errorf("latest versions: got %v, want [2]", got)
		}
		// Numbers are never reused.
		if n := mustRegisterVersion(t, s, "m", "r", 300); n != 4 {
			t.Errorf("next version after deleting the last: got %d, want 4", n)
		}
	})
}

func TestRegistryStoreConcurrentVersionNumbers(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewRegistryStore(db)
		mustRegisterModel(t, s, "m", 100)
		const n = 16
		got := make([]int64, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v := &registry.ModelVersion{Name: "m", CreationTimestamp: 200, LastUpdatedTimestamp: 200,
					CurrentStage: registry.StageNone, Status: registry.StatusReady, Source: fmt.Sprintf("s3://b/%d", i)}
				errs[i] = s.CreateModelVersion(ctx, v)
				got[i] = v.Version
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("create %d: %v", i, err)
			}
		}
		sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
		for i, v := range got {
			if v != int64(i+1) {
				t.Fatalf("version numbers of %d concurrent creates: got %v, want 1…%d each once", n, got, n)
			}
		}
		vs, err := s.SearchModelVersions(ctx, registry.Query{MaxResults: 100})
		if err != nil {
			t.Fatalf("search: %v", err)
		}
		if len(vs) != n {
			t.Errorf("stored versions: got %d, want %d", len(vs), n)
		}
	})
}

func TestRegistryStoreLatestVersions(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewRegistryStore(db)
		mustRegisterModel(t, s, "m", 100)
		// MLflow's test_latest_models.
		stages := []string{registry.StageArchived, registry.StageProduction, registry.StageArchived,
			registry.StageProduction, registry.StageStaging, registry.StageStaging, registry.StageNone}
		for i, stage := range stages {
			n := mustRegisterVersion(t, s, "m", "r", int64(110+i))
			if _, err := s.UpdateModelVersion(ctx, "m", n, registry.VersionUpdate{Stage: &stage}, int64(150+i)); err != nil {
				t.Fatalf("transition %d: %v", n, err)
			}
		}
		tests := []struct {
			stages []string
			want   map[string]int64
		}{
			{[]string{registry.StageNone}, map[string]int64{"None": 7}},
			{[]string{registry.StageStaging}, map[string]int64{"Staging": 6}},
			{[]string{registry.StageNone, registry.StageStaging}, map[string]int64{"None": 7, "Staging": 6}},
			{nil, map[string]int64{"Production": 4, "Staging": 6, "Archived": 3, "None": 7}},
		}
		for _, tt := range tests {
			vs, err := s.GetLatestVersions(ctx, "m", tt.stages)
			if err != nil {
				t.Fatalf("latest %v: %v", tt.stages, err)
			}
			got := map[string]int64{}
			for _, v := range vs {
				got[v.CurrentStage] = v.Version
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("latest %v: got %v, want %v", tt.stages, got, tt.want)
			}
		}
		_, err := s.GetLatestVersions(ctx, "nope", nil)
		wantRegistryErr(t, err, mloop.ENOTFOUND)
		m, _ := s.GetRegisteredModel(ctx, "m")
		if got := registryVersionNumbers(m.LatestVersions); !reflect.DeepEqual(got, []int64{3, 4, 6, 7}) {
			t.Errorf("latest versions of the model: got %v, want [3 4 6 7]", got)
		}
	})
}

func TestRegistryStoreTransitionArchivesExisting(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewRegistryStore(db)
		mustRegisterModel(t, s, "m", 100)
		prod := registry.StageProduction
		for i := range 3 {
			n := mustRegisterVersion(t, s, "m", "r", int64(110+i))
			if n < 3 {
				if _, err := s.UpdateModelVersion(ctx, "m", n, registry.VersionUpdate{Stage: &prod}, 120); err != nil {
					t.Fatalf("transition %d: %v", n, err)
				}
			}
		}
		v, err := s.UpdateModelVersion(ctx, "m", 3, registry.VersionUpdate{Stage: &prod, ArchiveExisting: true}, 130)
		if err != nil {
			t.Fatalf("transition with archive: %v", err)
		}
		if v.CurrentStage != prod || v.LastUpdatedTimestamp != 130 {
			t.Errorf("transitioned version: got stage %s at %d, want Production at 130", v.CurrentStage, v.LastUpdatedTimestamp)
		}
		for _, n := range []int64{1, 2} {
			v, _ := s.GetModelVersion(ctx, "m", n)
			if v.CurrentStage != registry.StageArchived || v.LastUpdatedTimestamp != 130 {
				t.Errorf("version %d: got stage %s at %d, want Archived at 130", n, v.CurrentStage, v.LastUpdatedTimestamp)
			}
		}
		m, _ := s.GetRegisteredModel(ctx, "m")
		if m.LastUpdatedTimestamp != 130 {
			t.Errorf("model last update after a transition: got %d, want 130", m.LastUpdatedTimestamp)
		}

		// A description change leaves the model's time alone.
		desc := "better"
		v, err = s.UpdateModelVersion(ctx, "m", 1, registry.VersionUpdate{Description: &desc}, 140)
		if err != nil {
			t.Fatalf("update description: %v", err)
		}
		if v.Description != desc || v.LastUpdatedTimestamp != 140 {
			t.Errorf("updated version: got %+v, want description %q at 140", v, desc)
		}
		if m, _ := s.GetRegisteredModel(ctx, "m"); m.LastUpdatedTimestamp != 130 {
			t.Errorf("model last update after a description change: got %d, want 130", m.LastUpdatedTimestamp)
		}
	})
}

func TestRegistryStoreAliases(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewRegistryStore(db)
		mustRegisterModel(t, s, "m", 100)
		mustRegisterVersion(t, s, "m", "r1", 110)
		mustRegisterVersion(t, s, "m", "r2", 120)

		wantRegistryErr(t, s.SetAlias(ctx, "m", "a", 9), mloop.ENOTFOUND)
		wantRegistryErr(t, s.SetAlias(ctx, "nope", "a", 1), mloop.ENOTFOUND)
		for _, step := range []struct {
			alias   string
			version int64
		}{{"champion", 1}, {"challenger", 1}, {"champion", 2}} {
			if err := s.SetAlias(ctx, "m", step.alias, step.version); err != nil {
				t.Fatalf("set %s → %d: %v", step.alias, step.version, err)
			}
		}
		v, err := s.GetModelVersionByAlias(ctx, "m", "champion")
		if err != nil {
			t.Fatalf("get by alias: %v", err)
		}
		if v.Version != 2 || !reflect.DeepEqual(v.Aliases, []string{"champion"}) {
			t.Errorf("champion: got version %d aliases %v, want 2 [champion]", v.Version, v.Aliases)
		}
		v1, _ := s.GetModelVersion(ctx, "m", 1)
		if !reflect.DeepEqual(v1.Aliases, []string{"challenger"}) {
			t.Errorf("aliases of version 1: got %v, want [challenger]", v1.Aliases)
		}
		m, _ := s.GetRegisteredModel(ctx, "m")
		if want := []registry.Alias{{Alias: "challenger", Version: 1}, {Alias: "champion", Version: 2}}; !reflect.DeepEqual(m.Aliases, want) {
			t.Errorf("model aliases: got %v, want %v", m.Aliases, want)
		}
		if err := s.DeleteAlias(ctx, "m", "champion"); err != nil {
			t.Fatalf("delete alias: %v", err)
		}
		if err := s.DeleteAlias(ctx, "m", "champion"); err != nil {
			t.Fatalf("delete a missing alias: got %v, want no error", err)
		}
		wantRegistryErr(t, s.DeleteAlias(ctx, "nope", "champion"), mloop.ENOTFOUND)
		_, err = s.GetModelVersionByAlias(ctx, "m", "champion")
		wantRegistryErr(t, err, mloop.ENOTFOUND)
	})
}

func TestRegistryStoreVersionTags(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewRegistryStore(db)
		mustRegisterModel(t, s, "m", 100)
		mustRegisterVersion(t, s, "m", "r1", 110, registry.Tag{Key: "x", Value: "1"})
		for _, tag := range []registry.Tag{{Key: "y", Value: "2"}, {Key: "x", Value: "3"}} {
			if err := s.SetModelVersionTag(ctx, "m", 1, tag); err != nil {
				t.Fatalf("set tag: %v", err)
			}
		}
		if err := s.DeleteModelVersionTag(ctx, "m", 1, "y"); err != nil {
			t.Fatalf("delete tag: %v", err)
		}
		wantRegistryErr(t, s.DeleteModelVersionTag(ctx, "m", 2, "y"), mloop.ENOTFOUND)
		v, _ := s.GetModelVersion(ctx, "m", 1)
		if want := []registry.Tag{{Key: "x", Value: "3"}}; !reflect.DeepEqual(v.Tags, want) {
			t.Errorf("tags: got %v, want %v", v.Tags, want)
		}
	})
}

func TestRegistryStoreSearchRegisteredModels(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewRegistryStore(db)
		mustRegisterModel(t, s, "alpha", 100, registry.Tag{Key: "team", Value: "Vision"})
		mustRegisterModel(t, s, "Beta", 300, registry.Tag{Key: "team", Value: "nlp"})
		mustRegisterModel(t, s, "gamma_1", 200)
		mustRegisterModel(t, s, "gamma%1", 250)
		mustRegisterModel(t, s, "prompt", 400, registry.Tag{Key: "mlflow.prompt.is_prompt", Value: "true"})
		mustRegisterVersion(t, s, "alpha", "r1", 500)

		attr := func(op string, v any) tracking.Filter {
			return tracking.Filter{{Entity: tracking.EntityAttribute, Key: "name", Op: op, Value: v}}
		}
		tag := func(op string, v any) tracking.Filter {
			return tracking.Filter{{Entity: tracking.EntityTag, Key: "team", Op: op, Value: v}}
		}
		tests := []struct {
			name string
			q    registry.Query
			want []string
		}{
			{"all, by name", registry.Query{}, []string{"Beta", "alpha", "gamma%1", "gamma_1", "prompt"}},
			{"prompts excluded", registry.Query{ExcludePrompts: true}, []string{"Beta", "alpha", "gamma%1", "gamma_1"}},
			{"name =", registry.Query{Filter: attr("=", "alpha")}, []string{"alpha"}},
			{"name = is case-sensitive", registry.Query{Filter: attr("=", "beta")}, nil},
			{"name !=", registry.Query{Filter: attr("!=", "alpha"), ExcludePrompts: true}, []string{"Beta", "gamma%1", "gamma_1"}},
			{"LIKE is case-sensitive", registry.Query{Filter: attr("LIKE", "b%")}, nil},
			{"LIKE", registry.Query{Filter: attr("LIKE", "%a")}, []string{"Beta", "alpha"}},
			{"LIKE _", registry.Query{Filter: attr("LIKE", "gamma_1")}, []string{"gamma%1", "gamma_1"}},
			{"LIKE escaped _", registry.Query{Filter: attr("LIKE", `gamma\_1`)}, []string{"gamma_1"}},
			{"ILIKE", registry.Query{Filter: attr("ILIKE", "B%")}, []string{"Beta"}},
			{"tag =", registry.Query{Filter: tag("=", "nlp")}, []string{"Beta"}},
			{"tag != needs the tag", registry.Query{Filter: tag("!=", "nlp")}, []string{"alpha"}},
			{"tag ILIKE", registry.Query{Filter: tag("ILIKE", "vis%")}, []string{"alpha"}},
			{"tag LIKE is case-sensitive", registry.Query{Filter: tag("LIKE", "vis%")}, nil},
			{"order by last update", registry.Query{ExcludePrompts: true,
				OrderBy: []tracking.OrderBy{{Key: "last_updated_timestamp"}}}, []string{"alpha", "Beta", "gamma%1", "gamma_1"}},
			{"order by name desc", registry.Query{ExcludePrompts: true,
				OrderBy: []tracking.OrderBy{{Key: "name"}}}, []string{"gamma_1", "gamma%1", "alpha", "Beta"}},
			{"page", registry.Query{ExcludePrompts: true, MaxResults: 2, Offset: 1}, []string{"alpha", "gamma%1"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ms, err := s.SearchRegisteredModels(ctx, tt.q)
				if err != nil {
					t.Fatalf("search: %v", err)
				}
				var got []string
				for _, m := range ms {
					got = append(got, m.Name)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got %q, want %q", got, tt.want)
				}
			})
		}

		ms, err := s.SearchRegisteredModels(ctx, registry.Query{Filter: attr("=", "alpha")})
		if err != nil || len(ms) != 1 {
			t.Fatalf("search alpha: got %d models, %v; want 1", len(ms), err)
		}
		if got := registryVersionNumbers(ms[0].LatestVersions); !reflect.DeepEqual(got, []int64{1}) || len(ms[0].Tags) != 1 {
			t.Errorf("search result: got latest %v tags %v, want latest [1] and the team tag", got, ms[0].Tags)
		}

		for _, q := range []registry.Query{
			{Filter: tracking.Filter{{Entity: tracking.EntityAttribute, Key: "run_id", Op: "=", Value: "x"}}},
			{Filter: attr("<", "x")},
			{OrderBy: []tracking.OrderBy{{Key: "version_number"}}},
		} {
			_, err := s.SearchRegisteredModels(ctx, q)
			wantRegistryErr(t, err, mloop.EINVALID)
		}
	})
}

func TestRegistryStoreSearchModelVersions(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewRegistryStore(db)
		mustRegisterModel(t, s, "a", 100)
		mustRegisterModel(t, s, "b", 100)
		mustRegisterVersion(t, s, "a", "r1", 110, registry.Tag{Key: "env", Value: "prod"}) // a/1
		mustRegisterVersion(t, s, "b", "r1", 120)                                          // b/1
		mustRegisterVersion(t, s, "a", "r2", 130, registry.Tag{Key: "env", Value: "dev"})  // a/2
		mustRegisterVersion(t, s, "a", "r3", 130)                                          // a/3
		mustRegisterVersion(t, s, "b", "r3", 140)                                          // b/2
		if err := s.DeleteModelVersion(ctx, "b", 2, 150); err != nil {
			t.Fatalf("delete: %v", err)
		}

		type nv struct {
			Name    string
			Version int64
		}
		cmp := func(key, op string, v any) tracking.Filter {
			return tracking.Filter{{Entity: tracking.EntityAttribute, Key: key, Op: op, Value: v}}
		}
		tests := []struct {
			name string
			q    registry.Query
			want []nv
		}{
			{"default order: last update desc, name, version desc", registry.Query{},
				[]nv{{"a", 3}, {"a", 2}, {"b", 1}, {"a", 1}}},
			{"name", registry.Query{Filter: cmp("name", "=", "b")}, []nv{{"b", 1}}},
			{"run_id IN", registry.Query{Filter: cmp("run_id", "IN", []string{"r1", "r3"})}, []nv{{"a", 3}, {"b", 1}, {"a", 1}}},
			{"source_path", registry.Query{Filter: cmp("source_path", "=", "runs:/r2/model")}, []nv{{"a", 2}}},
			{"version_number >", registry.Query{Filter: cmp("version_number", ">", 1.0)}, []nv{{"a", 3}, {"a", 2}}},
			{"version_number <= fraction", registry.Query{Filter: cmp("version_number", "<=", 1.5)}, []nv{{"b", 1}, {"a", 1}}},
			{"tag", registry.Query{Filter: tracking.Filter{{Entity: tracking.EntityTag, Key: "env", Op: "LIKE", Value: "p%"}}}, []nv{{"a", 1}}},
			{"both", registry.Query{Filter: tracking.Filter{
				{Entity: tracking.EntityAttribute, Key: "name", Op: "=", Value: "a"},
				{Entity: tracking.EntityTag, Key: "env", Op: "!=", Value: "prod"}}}, []nv{{"a", 2}}},
			{"order by version asc", registry.Query{OrderBy: []tracking.OrderBy{{Key: "version_number", Asc: true}}},
				[]nv{{"a", 1}, {"b", 1}, {"a", 2}, {"a", 3}}},
			{"order by name desc", registry.Query{OrderBy: []tracking.OrderBy{{Key: "name"}}},
				[]nv{{"b", 1}, {"a", 3}, {"a", 2}, {"a", 1}}},
			{"page", registry.Query{MaxResults: 2, Offset: 2}, []nv{{"b", 1}, {"a", 1}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				vs, err := s.SearchModelVersions(ctx, tt.q)
				if err != nil {
					t.Fatalf("search: %v", err)
				}
				var got []nv
				for _, v := range vs {
					got = append(got, nv{v.Name, v.Version})
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			})
		}
		for _, f := range []tracking.Filter{
			cmp("name", "IN", []string{"a"}),
			cmp("version_number", "LIKE", "1"),
			cmp("stage", "=", "None"),
		} {
			_, err := s.SearchModelVersions(ctx, registry.Query{Filter: f})
			wantRegistryErr(t, err, mloop.EINVALID)
		}
	})
}
