package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/mloop/mloop/internal/tracking"
)

// SearchDatasets returns up to maxResults distinct summaries (experiment,
// dataset name, digest, mlflow.data.context input tag) of the datasets that
// runs of the experiments experimentIDs used, as MLflow's _search_datasets:
// a dataset input without a context tag has a nil Context. Summaries are
// ordered by experiment id, name, digest and context (none first), which MLflow leaves
// unspecified. Ids that are not experiment ids match nothing.
func (s *TrackingStore) SearchDatasets(ctx context.Context, experimentIDs []string, maxResults int) ([]tracking.DatasetSummary, error) {
	args := []any{datasetContextTag, inputDataset, inputRun}
	for _, id := range experimentIDs {
		if n, ok := parseExperimentID(id); ok {
			args = append(args, n)
		}
	}
	out := []tracking.DatasetSummary{}
	if len(args) == 3 || maxResults <= 0 {
		return out, nil
	}
	args = append(args, maxResults)
	err := s.db.Read(ctx, func(tx *Tx) error {
		return queryEach(ctx, tx, `SELECT DISTINCT d.experiment_id, d.name, d.digest, t.value
			FROM datasets d
			JOIN inputs i ON i.source_id = d.dataset_uuid
			LEFT JOIN input_tags t ON t.input_uuid = i.input_uuid AND t.name = ?
			WHERE i.source_type = ? AND i.destination_type = ? AND d.experiment_id IN (`+placeholders(len(args)-4)+`)
			ORDER BY d.experiment_id, d.name, d.digest, t.value NULLS FIRST
			LIMIT ?`, args,
			func(sc scanner) error {
				var exp int64
				var context sql.NullString
				var sum tracking.DatasetSummary
				if err := sc.Scan(&exp, &sum.Name, &sum.Digest, &context); err != nil {
					return err
				}
				sum.ExperimentID = strconv.FormatInt(exp, 10)
				if context.Valid {
					sum.Context = &context.String
				}
				out = append(out, sum)
				return nil
			})
	})
	if err != nil {
		return nil, fmt.Errorf("search datasets: %w", err)
	}
	return out, nil
}
