package sqlstore_test

import (
	"testing"

	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/monitor/storetest"
	"github.com/mloop/mloop/internal/sqlstore"
)

// TestMonitorStore runs the monitor.Store conformance suite on SQLite and
// PostgreSQL.
func TestMonitorStore(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) monitor.Store {
				return sqlstore.NewMonitorStore(MustOpenDB(t, d))
			})
		})
	}
}
