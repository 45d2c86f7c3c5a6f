package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/mloop/mloop/internal/dataset"
)

var _ dataset.Lineage = (*TrackingStore)(nil)

// RunsWithDatasetDigest returns the live runs that logged, through MLflow's
// log-inputs, a dataset whose digest is exactly one of digests: one entry
// per (run, dataset input), with the input's mlflow.data.context tag, newest
// run first. The datasets_digest index makes each digest a lookup.
func (s *TrackingStore) RunsWithDatasetDigest(ctx context.Context, digests []string) ([]dataset.LineageRun, error) {
	out := []dataset.LineageRun{}
	if len(digests) == 0 {
		return out, nil
	}
	args := []any{inputDataset, inputRun, datasetContextTag, "active"}
	args = append(args, stringArgs(digests)...)
	err := s.db.Read(ctx, func(tx *Tx) error {
		return queryEach(ctx, tx, `SELECT r.run_uuid, r.experiment_id, r.name, r.status, r.start_time, d.name, t.value
			FROM datasets d
			JOIN inputs i ON i.source_type = ? AND i.source_id = d.dataset_uuid AND i.destination_type = ?
			JOIN runs r ON r.run_uuid = i.destination_id
			LEFT JOIN input_tags t ON t.input_uuid = i.input_uuid AND t.name = ?
			WHERE r.lifecycle_stage = ? AND d.digest IN (`+placeholders(len(digests))+`)
			ORDER BY r.start_time DESC, r.run_uuid, d.name, d.digest`, args,
			func(sc scanner) error {
				var (
					run     dataset.LineageRun
					exp     int64
					context sql.NullString
				)
				if err := sc.Scan(&run.RunID, &exp, &run.RunName, &run.Status, &run.StartTime, &run.DatasetName, &context); err != nil {
					return err
				}
				run.ExperimentID = strconv.FormatInt(exp, 10)
				run.Context = context.String
				out = append(out, run)
				return nil
			})
	})
	if err != nil {
		return nil, fmt.Errorf("runs with dataset digest: %w", err)
	}
	return out, nil
}
