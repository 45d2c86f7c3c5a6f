package tracking

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop"
)

func TestValidateLoggedModelFilter(t *testing.T) {
	tests := []struct {
		name string
		in   Filter
		want Filter
		err  string // a part of the EINVALID message; "" for success
	}{
		{
			name: "string attributes keep their values",
			in: Filter{{Entity: EntityAttribute, Key: "name", Op: OpLike, Value: "clf%"},
				{Entity: EntityAttribute, Key: "source_run_id", Op: OpEq, Value: "abc"}},
			want: Filter{{Entity: EntityAttribute, Key: "name", Op: OpLike, Value: "clf%"},
				{Entity: EntityAttribute, Key: "source_run_id", Op: OpEq, Value: "abc"}},
		},
		{
			name: "status takes the wire spelling",
			in: Filter{{Entity: EntityAttribute, Key: "status", Op: OpEq, Value: "LOGGED_MODEL_READY"},
				{Entity: EntityAttribute, Key: "status", Op: OpIn, Value: []string{"LOGGED_MODEL_UPLOAD_FAILED", "PENDING"}}},
			want: Filter{{Entity: EntityAttribute, Key: "status", Op: OpEq, Value: LoggedModelReady},
				{Entity: EntityAttribute, Key: "status", Op: OpIn, Value: []string{LoggedModelFailed, LoggedModelPending}}},
		},
		{
			name: "timestamp aliases and numeric strings",
			in: Filter{{Entity: EntityAttribute, Key: "creation_time", Op: OpGt, Value: "1000"},
				{Entity: EntityAttribute, Key: "last_updated_timestamp_ms", Op: OpLe, Value: 2000.0}},
			want: Filter{{Entity: EntityAttribute, Key: "creation_timestamp", Op: OpGt, Value: 1000.0},
				{Entity: EntityAttribute, Key: "last_updated_timestamp", Op: OpLe, Value: 2000.0}},
		},
		{
			name: "metrics, params and tags",
			in: Filter{{Entity: EntityMetric, Key: "acc", Op: OpGe, Value: 0.9},
				{Entity: EntityParam, Key: "lr", Op: OpNe, Value: "0.1"},
				{Entity: EntityTag, Key: "env", Op: OpILike, Value: "PROD"}},
			want: Filter{{Entity: EntityMetric, Key: "acc", Op: OpGe, Value: 0.9},
				{Entity: EntityParam, Key: "lr", Op: OpNe, Value: "0.1"},
				{Entity: EntityTag, Key: "env", Op: OpILike, Value: "PROD"}},
		},
		{name: "unknown attribute", in: Filter{{Entity: EntityAttribute, Key: "run_name", Op: OpEq, Value: "x"}}, err: "Invalid attribute key 'run_name'"},
		{name: "order operator on a string", in: Filter{{Entity: EntityAttribute, Key: "name", Op: OpLt, Value: "x"}}, err: "'<' for attribute 'name'"},
		{name: "LIKE on a metric", in: Filter{{Entity: EntityMetric, Key: "acc", Op: OpLike, Value: "1%"}}, err: "'LIKE' for metric 'acc'"},
		{name: "IN on a param", in: Filter{{Entity: EntityParam, Key: "lr", Op: OpIn, Value: []string{"1"}}}, err: "'IN' for param 'lr'"},
		{name: "text for a timestamp", in: Filter{{Entity: EntityAttribute, Key: "creation_timestamp", Op: OpGt, Value: "yesterday"}}, err: "numeric value"},
		{name: "number for a tag", in: Filter{{Entity: EntityTag, Key: "env", Op: OpEq, Value: 1.0}}, err: "quoted string"},
		{name: "dataset entity", in: Filter{{Entity: EntityDataset, Key: "name", Op: OpEq, Value: "d"}}, err: "Invalid entity type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ValidateLoggedModelFilter(tt.in)
			if tt.err != "" {
				if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), tt.err) {
					t.Fatalf("got error %v, want EINVALID mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseLoggedModelOrder(t *testing.T) {
	tests := []struct {
		in   LoggedModelOrderField
		want LoggedModelOrder
		err  string
	}{
		{in: LoggedModelOrderField{FieldName: "creation_time", Ascending: true},
			want: LoggedModelOrder{OrderBy: OrderBy{Entity: EntityAttribute, Key: "creation_timestamp", Asc: true}}},
		{in: LoggedModelOrderField{FieldName: " name "},
			want: LoggedModelOrder{OrderBy: OrderBy{Entity: EntityAttribute, Key: "name"}}},
		{in: LoggedModelOrderField{FieldName: "metrics.`f1 score`", DatasetName: "test", DatasetDigest: "abc"},
			want: LoggedModelOrder{OrderBy: OrderBy{Entity: EntityMetric, Key: "f1 score"}, DatasetName: "test", DatasetDigest: "abc"}},
		{in: LoggedModelOrderField{}, err: "`field_name`"},
		{in: LoggedModelOrderField{FieldName: "params.lr"}, err: "only `metrics.<name>` is allowed"},
		{in: LoggedModelOrderField{FieldName: "artifact_uri"}, err: "Invalid order by field name: artifact_uri"},
		{in: LoggedModelOrderField{FieldName: "metrics.acc", DatasetDigest: "abc"}, err: "`dataset_digest` can only be specified"},
		{in: LoggedModelOrderField{FieldName: "name", DatasetName: "test"}, err: "only be set for a metric"},
	}
	for _, tt := range tests {
		t.Run(tt.in.FieldName, func(t *testing.T) {
			got, err := parseLoggedModelOrder(tt.in)
			if tt.err != "" {
				if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), tt.err) {
					t.Fatalf("got error %v, want EINVALID mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v, want %+v", got, err, tt.want)
			}
		})
	}
}

func TestValidateLoggedModelName(t *testing.T) {
	for _, name := range []string{"", "model", "my model_v2-final", "ünïcode"} {
		if err := validateLoggedModelName(name); err != nil {
			t.Errorf("name %q: got %v, want it accepted", name, err)
		}
	}
	for _, name := range []string{"a/b", "a:b", "v1.0", "100%", `say "hi"`, "it's"} {
		if err := validateLoggedModelName(name); mloop.ErrorCode(err) != mloop.EINVALID {
			t.Errorf("name %q: got %v, want EINVALID", name, err)
		}
	}
}

func TestAppendURIPath(t *testing.T) {
	tests := []struct{ uri, want string }{
		{"mlflow-artifacts:/1", "mlflow-artifacts:/1/models/m-1/artifacts"},
		{"s3://bucket/exp/", "s3://bucket/exp/models/m-1/artifacts"},
		{"/tmp/mlruns/1", "/tmp/mlruns/1/models/m-1/artifacts"},
		{"https://host/root?sig=abc", "https://host/root/models/m-1/artifacts?sig=abc"},
	}
	for _, tt := range tests {
		if got := appendURIPath(tt.uri, "models", "m-1", "artifacts"); got != tt.want {
			t.Errorf("appendURIPath(%q): got %q, want %q", tt.uri, got, tt.want)
		}
	}
}

// searchStore is a LoggedModelStore whose searches return canned models and
// remember the query; its other methods are not used by these tests.
type searchStore struct {
	LoggedModelStore
	models []*LoggedModel
	query  LoggedModelQuery
}

func (s *searchStore) SearchLoggedModels(ctx context.Context, q LoggedModelQuery) ([]*LoggedModel, error) {
	s.query = q
	end := min(q.Offset+q.MaxResults, len(s.models))
	if q.Offset > end {
		return nil, nil
	}
	return s.models[q.Offset:end], nil
}

func TestSearchLoggedModelsPaging(t *testing.T) {
	store := &searchStore{}
	for _, id := range []string{"m-a", "m-b", "m-c", "m-d", "m-e"} {
		store.models = append(store.models, &LoggedModel{ModelID: id})
	}
	svc := NewLoggedModels(store, nil)
	req := SearchLoggedModelsRequest{
		ExperimentIDs: []string{"1", "2"},
		MaxResults:    2,
		OrderBy:       []LoggedModelOrderField{{FieldName: "metrics.acc", Ascending: false}},
	}
	var got []string
	for page := 0; ; page++ {
		models, next, err := svc.SearchLoggedModels(context.Background(), req)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		if store.query.MaxResults != 3 {
			t.Errorf("page %d: store asked for %d models, want max_results+1 = 3", page, store.query.MaxResults)
		}
		for _, m := range models {
			got = append(got, m.ModelID)
		}
		if next == "" {
			break
		}
		req.PageToken = next
	}
	if want := []string{"m-a", "m-b", "m-c", "m-d", "m-e"}; !reflect.DeepEqual(got, want) {
		t.Errorf("pages: got %v, want %v", got, want)
	}

	// A token only resumes the query it came from.
	_, token, err := svc.SearchLoggedModels(context.Background(), SearchLoggedModelsRequest{ExperimentIDs: []string{"1"}, MaxResults: 1})
	if err != nil || token == "" {
		t.Fatalf("first page: token %q, error %v; want a token", token, err)
	}
	for name, req := range map[string]SearchLoggedModelsRequest{
		"other experiments": {ExperimentIDs: []string{"2"}, PageToken: token},
		"other filter":      {ExperimentIDs: []string{"1"}, Filter: "name = 'x'", PageToken: token},
		"other order":       {ExperimentIDs: []string{"1"}, OrderBy: []LoggedModelOrderField{{FieldName: "name"}}, PageToken: token},
		"garbage token":     {ExperimentIDs: []string{"1"}, PageToken: "not-a-token"},
	} {
		if _, _, err := svc.SearchLoggedModels(context.Background(), req); mloop.ErrorCode(err) != mloop.EINVALID {
			t.Errorf("%s: got %v, want EINVALID", name, err)
		}
	}
}

func TestSearchLoggedModelsRequestErrors(t *testing.T) {
	svc := NewLoggedModels(&searchStore{}, nil)
	tests := map[string]struct {
		req SearchLoggedModelsRequest
		msg string
	}{
		"no experiments":       {SearchLoggedModelsRequest{}, "experiment_ids"},
		"negative max_results": {SearchLoggedModelsRequest{ExperimentIDs: []string{"1"}, MaxResults: -1}, "max_results"},
		"huge max_results":     {SearchLoggedModelsRequest{ExperimentIDs: []string{"1"}, MaxResults: MaxSearchResults + 1}, "max_results"},
		"dataset without name": {SearchLoggedModelsRequest{ExperimentIDs: []string{"1"}, Datasets: []DatasetRef{{Digest: "d"}}}, "dataset_name"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := svc.SearchLoggedModels(context.Background(), tt.req)
			if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), tt.msg) {
				t.Errorf("got %v, want EINVALID mentioning %q", err, tt.msg)
			}
		})
	}
}

// tagStore is a LoggedModelStore holding one tag value, for LinkModelVersion.
type tagStore struct {
	LoggedModelStore
	value string
	set   bool
}

func (s *tagStore) UpdateLoggedModelTag(ctx context.Context, id, key string, update func(string, bool) (string, error)) error {
	v, err := update(s.value, s.set)
	if err != nil {
		return err
	}
	s.value, s.set = v, true
	return nil
}

func TestLinkModelVersion(t *testing.T) {
	tests := []struct {
		name, old string
		set       bool
		want      string
	}{
		{"first version", "", false, `[{"name":"clf","version":3}]`},
		{"appended", `[{"name":"clf","version":1}]`, true, `[{"name":"clf","version":1},{"name":"clf","version":3}]`},
		{"already listed", `[{"name":"clf","version":3}]`, true, `[{"name":"clf","version":3}]`},
		{"listed by a client, version as a string", `[{"name":"clf","version":"3"}]`, true, `[{"name":"clf","version":"3"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &tagStore{value: tt.old, set: tt.set}
			svc := &LoggedModels{Store: store, Now: time.Now}
			if err := svc.LinkModelVersion(context.Background(), "m-1", "clf", 3); err != nil {
				t.Fatalf("link: %v", err)
			}
			if store.value != tt.want {
				t.Errorf("tag: got %s, want %s", store.value, tt.want)
			}
		})
	}
}
