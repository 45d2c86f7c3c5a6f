package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mloop/mloop/internal/serving/payloadlog"
)

// httpListener is the part of a long-running program's lifecycle that
// Main (`mloop server`) and Replica (`mloop serve`) share: a listener, an
// HTTP server serving it in the background, the base URL, waiting for the
// end and a graceful shutdown. Both embed it, so URL and Wait are theirs.
type httpListener struct {
	ln   net.Listener
	done chan error
}

// listen opens the listener on addr; what names the program ("server",
// "replica") in the hint given when the address is taken.
func (l *httpListener) listen(addr, what string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another %s running there? choose another with --addr)", addr, err, what)
	}
	l.ln = ln
	return nil
}

// serve starts srv on the listener in the background; Wait reports how it
// ended.
func (l *httpListener) serve(srv *http.Server) {
	l.done = make(chan error, 1)
	go func() {
		err := srv.Serve(l.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		l.done <- err
	}()
}

// URL returns the base URL, such as http://127.0.0.1:5151; "" before the
// listener is open.
func (l *httpListener) URL() string {
	if l.ln == nil {
		return ""
	}
	return "http://" + l.ln.Addr().String()
}

// Wait blocks until the HTTP server stops on its own (an error) or ctx ends.
func (l *httpListener) Wait(ctx context.Context) error {
	select {
	case err := <-l.done:
		l.done <- err
		return err
	case <-ctx.Done():
		return nil
	}
}

// shutdown stops srv gracefully, letting in-flight requests finish until
// ctx ends; without a server (Open failed before making one) it closes the
// listener alone.
func (l *httpListener) shutdown(ctx context.Context, srv *http.Server) error {
	if srv == nil {
		if l.ln != nil {
			l.ln.Close()
		}
		return nil
	}
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut down http server: %w", err)
	}
	return nil
}

// newHTTPServer returns the HTTP server of Main and Replica: h behind the
// timeouts both use, its errors logged as warnings.
func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// newMetricsRegistry returns a Prometheus registry with the Go runtime's
// and the process's collectors.
func newMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// startPayloadLogger returns a payload logger writing to sink, already
// writing in the background, and the function that ends its writer (call
// it after the logger's Close has flushed the queue). The router samples
// each deployment at its own rate, so the logger keeps every record it is
// given.
func startPayloadLogger(sink payloadlog.Sink, logger *slog.Logger) (*payloadlog.Logger, context.CancelFunc) {
	l := payloadlog.New(sink, payloadlog.Config{SampleRate: 1, Logger: logger})
	ctx, cancel := context.WithCancel(context.Background())
	l.Start(ctx)
	return l, cancel
}

// parseNoArgs parses the flags of a command that takes no argument, such
// as `mloop server`; ok is false with the exit code when they are wrong.
func parseNoArgs(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		return usageExit(err), false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage, false
	}
	return exitOK, true
}

// runUntilDone waits until srv stops on its own or ctx ends (SIGINT,
// SIGTERM), then closes it gracefully; name prefixes the error printed.
func runUntilDone(ctx context.Context, name string, srv interface {
	Wait(context.Context) error
	Close() error
}, logger *slog.Logger, stderr io.Writer) int {
	werr := srv.Wait(ctx)
	logger.Info("shutting down: finishing in-flight requests")
	if err := errors.Join(werr, srv.Close()); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitFailure
	}
	logger.Info("stopped")
	return exitOK
}
