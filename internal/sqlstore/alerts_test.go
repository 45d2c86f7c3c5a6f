package sqlstore_test

import (
	"testing"

	"github.com/mloop/mloop/internal/alert"
	"github.com/mloop/mloop/internal/alert/storetest"
	"github.com/mloop/mloop/internal/sqlstore"
)

// TestAlertStore runs the alert.Store conformance suite on SQLite and
// PostgreSQL.
func TestAlertStore(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) alert.Store {
				return sqlstore.NewAlertStore(MustOpenDB(t, d))
			})
		})
	}
}
