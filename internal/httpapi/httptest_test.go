package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

// newTestServer starts the real HTTP API over real services on a fresh
// SQLite database and a local artifact folder, both in tb.TempDir(), wired
// as cmd/mloop wires them. It returns the running server and the Server it
// serves; opts adjust that Server (or its services) before it starts, for
// example func(s *Server) { s.MaxBodyBytes = 1 << 10 }. Logs are discarded.
// Everything is closed when the test ends.
func newTestServer(tb testing.TB, opts ...func(*Server)) (*httptest.Server, *Server) {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	db := sqlstore.NewDB(filepath.Join(dir, "mloop.db"))
	db.Logger = logger
	if err := db.Open(ctx); err != nil {
		tb.Fatalf("open database: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	arts, err := artifact.Open(ctx, filepath.Join(dir, "artifacts"))
	if err != nil {
		tb.Fatalf("open artifact store: %v", err)
	}
	tb.Cleanup(func() { arts.Close() })

	trackingSvc := tracking.NewService(sqlstore.NewTrackingStore(db))
	loggedModels := tracking.NewLoggedModels(sqlstore.NewLoggedModelStore(db), trackingSvc)
	s := &Server{
		Tracking:     trackingSvc,
		LoggedModels: loggedModels,
		Registry:     registry.NewService(sqlstore.NewRegistryStore(db), trackingSvc, loggedModels),
		Artifacts:    arts,
		Ready:        db.Ping,
		Logger:       logger,
		Version:      "test",
	}
	for _, opt := range opts {
		opt(s)
	}
	srv := httptest.NewServer(s.Handler())
	tb.Cleanup(srv.Close)
	return srv, s
}
