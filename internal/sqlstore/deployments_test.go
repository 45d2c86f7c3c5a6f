package sqlstore_test

import (
	"testing"

	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/deploy/storetest"
	"github.com/mloop/mloop/internal/sqlstore"
)

// TestDeploymentStore runs the deploy.Store conformance suite on SQLite and
// PostgreSQL.
func TestDeploymentStore(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) deploy.Store {
				return sqlstore.NewDeploymentStore(MustOpenDB(t, d))
			})
		})
	}
}
