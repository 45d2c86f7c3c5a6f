// Package process serves a model by running a user's command that speaks
// the Open Inference Protocol (KServe V2) REST API: any framework in any
// language plugs into mloop this way.
//
// The contract with the command is small. The runtime starts it in a process
// group of its own, with PORT (a free TCP port on 127.0.0.1) and
// MLOOP_MODEL_NAME (the name it serves the model under) in an environment
// that holds nothing else of the server's but PATH, HOME, LANG, LC_ALL, TZ
// and TMPDIR. The command listens on 127.0.0.1:$PORT and answers
// GET /v2/health/ready with 200 once it can predict; the runtime then
// proxies /v2/... requests to it, restarts it with exponential backoff when
// it dies, and stops it (SIGTERM to the group, SIGKILL after a grace period)
// when the deployment goes away. examples/sklearn-server is such a command.
package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/execpath"
)

// Defaults for the zero values of Config's durations.
const (
	DefaultReadyTimeout = 60 * time.Second
	DefaultGrace        = 5 * time.Second
	DefaultMinBackoff   = time.Second
	DefaultMaxBackoff   = 30 * time.Second
	DefaultStableAfter  = time.Minute
)

// Environment variables the runtime sets for the command; Config.Env may
// not set them.
const (
	EnvPort      = "PORT"
	EnvModelName = "MLOOP_MODEL_NAME"
)

// tailBytes is how much of the command's latest output the runtime keeps
// to explain a failure, and tailLines how many lines of it an error shows.
const (
	tailBytes = 8 << 10
	tailLines = 20
)

// Config says what to run and how to supervise it. Zero durations take
// the defaults above.
type Config struct {
	// Command is the program and its arguments. A program name without a
	// slash is looked up in the command's PATH (the server's, unless Env
	// sets one); a relative path is taken from Dir.
	Command []string
	// Dir is the command's working folder; empty means the server's.
	Dir string
	// Env adds to (or overrides) the variables the command inherits from
	// the server: PATH, HOME, LANG, LC_ALL, TZ and TMPDIR. It may not set
	// PORT or MLOOP_MODEL_NAME, which the runtime sets.
	Env map[string]string
	// ReadyTimeout bounds how long a start (the first one, and each
	// restart) may take before GET /v2/health/ready answers 200.
	ReadyTimeout time.Duration
	// Grace is the time between SIGTERM and SIGKILL when the runtime stops
	// the command. It also bounds how long output is drained after the
	// command exits, if an escaped process keeps it open.
	Grace time.Duration
	// MinBackoff is the wait before the first restart after the command
	// dies; each further failed restart doubles it, up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// StableAfter is how long a process must have been ready for its death
	// to count as a first failure again: the backoff then restarts from
	// MinBackoff.
	StableAfter time.Duration
	// Logger receives starts, exits and restarts. It defaults to
	// slog.Default().
	Logger *slog.Logger
	// Stdout and Stderr receive the command's output as it is written; nil
	// discards it. Writes to them are serialized, so both may be the same
	// writer. A failing writer is logged once and then skipped.
	Stdout, Stderr io.Writer
}

// Runtime is a supervised model process and a reverse proxy to it. It is
// safe for concurrent use.
type Runtime struct {
	name      string
	cfg       Config
	path      string   // the resolved program
	env       []string // the command's environment, without PORT
	logger    *slog.Logger
	transport *http.Transport // to the process, for proxied requests
	probe     *http.Client    // readiness probes, no kept connections
	outMu     sync.Mutex      // serializes writes to cfg.Stdout and cfg.Stderr

	cancel context.CancelFunc // ends the supervisor's context; called by Close
	done   chan struct{}      // closed once the supervisor has stopped its process

	mu       sync.Mutex
	cur      *proc // the latest process started, running or not
	ready    bool  // cur has become ready and has not exited since
	restarts int
	closed   bool
}

// Start starts the command of cfg for the model name, waits until it is
// ready, and supervises it from then on. ctx bounds only the start: the
// process lives until Close. Errors are of kind EINVALID (bad Config, a
// command not found, or a command that exits or is not ready within
// ReadyTimeout — the error then quotes its last lines of output) or
// EINTERNAL (it could not be started); ENOTIMPLEMENTED on systems without
// process groups.
func Start(ctx context.Context, name string, cfg Config) (*Runtime, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start model process %q: %w", name, err)
	}
	if err := fillConfig(name, &cfg); err != nil {
		return nil, fmt.Errorf("start model process %q: %w", name, err)
	}
	env := commandEnv(name, cfg.Env)
	path, err := execpath.Look(cfg.Command[0], envValue(env, "PATH"), cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("start model process %q: %w", name, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	r := &Runtime{
		name:   name,
		cfg:    cfg,
		path:   path,
		env:    env,
		logger: logger.With("model", name),
		transport: &http.Transport{
			Proxy:               nil, // never through an HTTP proxy: the process is local
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
		probe: &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}},
		done:  make(chan struct{}),
	}
	p, err := r.startProc(ctx)
	if err != nil {
		r.transport.CloseIdleConnections()
		return nil, fmt.Errorf("start model process %q: %w", name, err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.supervise(sctx, p)
	return r, nil
}

// fillConfig checks cfg and fills its defaults.
func fillConfig(name string, cfg *Config) error {
	if name == "" {
		return mloop.Errorf(mloop.EINVALID, "empty model name")
	}
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return mloop.Errorf(mloop.EINVALID, "empty command: give the program that serves the model and its arguments")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"ready timeout", &cfg.ReadyTimeout, DefaultReadyTimeout},
		{"grace", &cfg.Grace, DefaultGrace},
		{"minimum backoff", &cfg.MinBackoff, DefaultMinBackoff},
		{"maximum backoff", &cfg.MaxBackoff, DefaultMaxBackoff},
		{"stable-after time", &cfg.StableAfter, DefaultStableAfter},
	} {
		if *d.v < 0 {
			return mloop.Errorf(mloop.EINVALID, "negative %s %s", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	if cfg.Dir != "" {
		if fi, err := os.Stat(cfg.Dir); err != nil {
			return mloop.Errorf(mloop.EINVALID, "working folder %q: %v", cfg.Dir, err)
		} else if !fi.IsDir() {
			return mloop.Errorf(mloop.EINVALID, "working folder %q is not a folder", cfg.Dir)
		}
	}
	for k := range cfg.Env {
		switch {
		case k == EnvPort || k == EnvModelName:
			return mloop.Errorf(mloop.EINVALID, "environment variable %s is set by the runtime; remove it from the model's environment", k)
		case k == "" || strings.ContainsAny(k, "=\x00"):
			return mloop.Errorf(mloop.EINVALID, "invalid environment variable name %q", k)
		case strings.ContainsRune(cfg.Env[k], 0):
			return mloop.Errorf(mloop.EINVALID, "environment variable %s: value holds a NUL byte", k)
		}
	}
	return nil
}

// commandEnv returns the command's sorted environment, PORT aside.
func commandEnv(name string, extra map[string]string) []string {
	env := make(map[string]string, len(extra)+8)
	for _, k := range []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	for k, v := range extra {
		env[k] = v
	}
	env[EnvModelName] = name
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	return list
}

// envValue returns the value of key in a KEY=value list.
func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

// Name returns the model name the runtime serves.
func (r *Runtime) Name() string { return r.name }

// Ready reports whether the model process is up and answering: false while
// it restarts and after Close.
func (r *Runtime) Ready() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready && !r.closed
}

// Restarts returns how many times the runtime has started the command again
// after it died, counting failed attempts.
func (r *Runtime) Restarts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restarts
}

// PID returns the process id of the latest model process, which is also its
// process group id; 0 when no process runs.
func (r *Runtime) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil || r.cur.hasExited() {
		return 0
	}
	return r.cur.pid
}

// Close stops the model process: SIGTERM to its process group, SIGKILL to
// the group after Grace, and waits until it is gone. Requests from then on
// get 503. When ctx ends first, Close kills the group at once, waits for
// it, and returns ctx's error. Close may be called more than once.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	var err error
	select {
	case <-r.done:
	case <-ctx.Done():
		r.mu.Lock()
		if p := r.cur; p != nil && !p.hasExited() {
			killGroup(p.pid)
		}
		r.mu.Unlock()
		<-r.done
		err = fmt.Errorf("close model process %q: %w", r.name, ctx.Err())
	}
	r.transport.CloseIdleConnections()
	return err
}

// supervise restarts the process whenever it exits, until ctx ends; then
// it stops the process and closes r.done.
func (r *Runtime) supervise(ctx context.Context, p *proc) {
	defer close(r.done)
	backoff := r.cfg.MinBackoff
	for {
		select {
		case <-p.exited:
		case <-ctx.Done():
			r.stopProc(p)
			return
		}
		r.mu.Lock()
		r.ready = false
		readyAt := p.readyAt
		r.mu.Unlock()
		if !readyAt.IsZero() && time.Since(readyAt) >= r.cfg.StableAfter {
			backoff = r.cfg.MinBackoff
		}
		r.logger.Warn("model process exited; restarting it", "pid", p.pid, "status", p.status(),
			"restart_in", backoff, "output", p.tail.lastLines(5))
		for {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			backoff = min(2*backoff, r.cfg.MaxBackoff)
			r.mu.Lock()
			r.restarts++
			n := r.restarts
			r.mu.Unlock()
			np, err := r.startProc(ctx)
			if err == nil {
				p = np
				r.logger.Info("model process restarted", "pid", p.pid, "restarts", n)
				break
			}
			if ctx.Err() != nil {
				return
			}
			r.logger.Error("restart model process", "restarts", n, "err", err, "restart_in", backoff)
		}
	}
}

// startProc starts the command and waits for it to become ready; on
// failure the process is stopped.
func (r *Runtime) startProc(ctx context.Context) (*proc, error) {
	p, err := r.launch()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.cur = p
	r.mu.Unlock()
	if err := r.waitReady(ctx, p); err != nil {
		r.stopProc(p)
		return nil, err
	}
	r.mu.Lock()
	p.readyAt = time.Now()
	r.ready = true
	r.mu.Unlock()
	r.logger.Info("model process ready", "pid", p.pid, "port", p.port)
	return p, nil
}

// errNotReady is the cause of a readiness wait that ran out of time.
var errNotReady = errors.New("not ready in time")

// waitReady polls GET /v2/health/ready until it answers 200, the process
// exits, ReadyTimeout passes or ctx ends.
func (r *Runtime) waitReady(ctx context.Context, p *proc) error {
	ctx, cancel := context.WithTimeoutCause(ctx, r.cfg.ReadyTimeout, errNotReady)
	defer cancel()
	probeURL := p.target.String() + "/v2/health/ready"
	delay := 10 * time.Millisecond
	last := "no answer yet"
	for {
		if why, ok := r.probeReady(ctx, probeURL); ok {
			return nil
		} else if why != "" {
			last = why
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-p.exited:
			t.Stop()
			return mloop.Errorf(mloop.EINVALID,
				"the command exited (%s) before it was ready; it must listen on 127.0.0.1:$PORT and answer GET /v2/health/ready with 200%s",
				p.status(), p.tail.quote())
		case <-ctx.Done():
			t.Stop()
			if context.Cause(ctx) == errNotReady {
				return mloop.Errorf(mloop.EINVALID,
					"the command was not ready after %s (GET /v2/health/ready on port %d: %s); make it answer 200 there, or allow it a longer ready timeout%s",
					r.cfg.ReadyTimeout, p.port, last, p.tail.quote())
			}
			return fmt.Errorf("wait for the model process to be ready: %w", ctx.Err())
		}
		delay = min(2*delay, 250*time.Millisecond)
	}
}

// probeReady asks the process once whether it is ready; when it is not,
// why says what it answered ("" when the probe was cut by ctx).
func (r *Runtime) probeReady(ctx context.Context, u string) (why string, ok bool) {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, u, nil)
	if err != nil {
		return err.Error(), false
	}
	resp, err := r.probe.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", false
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return "connection refused", false
		}
		return err.Error(), false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return "", true
	}
	return "status " + resp.Status, false
}

// stopProc stops p's process group: SIGTERM, then SIGKILL after Grace; it
// returns once p has exited.
func (r *Runtime) stopProc(p *proc) {
	if p.hasExited() {
		return
	}
	if err := termGroup(p.pid); err != nil {
		r.logger.Warn("terminate model process", "pid", p.pid, "err", err)
	}
	t := time.NewTimer(r.cfg.Grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		r.logger.Warn("model process still running after SIGTERM and the grace period; killing it", "pid", p.pid, "grace", r.cfg.Grace)
		killGroup(p.pid)
		<-p.exited
	}
}

// ServeHTTP proxies req to the model process under its own path; see Proxy.
func (r *Runtime) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.Proxy(w, req, req.URL.Path)
}

// Proxy forwards req to the model process under path and copies back its
// answer, errors included; req's query is kept. The path must be an Open
// Inference Protocol path (/v2 or /v2/...), or, for a command that also
// speaks KServe V1 or MLflow's scoring protocol, a KServe V1 path
// (/v1/...) or /invocations. While the process is down or restarting, and
// after Close, it answers 503 with an Open Inference Protocol error body
// and Retry-After.
func (r *Runtime) Proxy(w http.ResponseWriter, req *http.Request, path string) {
	if path != "/v2" && !strings.HasPrefix(path, "/v2/") && !strings.HasPrefix(path, "/v1/") && path != "/invocations" {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q serves only Open Inference Protocol paths (/v2/...), KServe V1 paths (/v1/...) and /invocations, not %q", r.name, path))
		return
	}
	r.mu.Lock()
	p, ready, closed := r.cur, r.ready, r.closed
	r.mu.Unlock()
	switch {
	case closed:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("model %q is stopped", r.name))
		return
	case !ready || p == nil:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("model %q is unavailable: its process is restarting; retry shortly", r.name))
		return
	}
	if path != req.URL.Path {
		out := new(http.Request)
		*out = *req
		u := *req.URL
		u.Path, u.RawPath = path, ""
		out.URL = &u
		req = out
	}
	p.proxy.ServeHTTP(w, req)
}

// writeError answers an Open Inference Protocol error: {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// proc is one run of the command.
type proc struct {
	cmd     *exec.Cmd
	pid     int
	port    int
	target  *url.URL
	proxy   *httputil.ReverseProxy
	tail    *tail
	readers []*os.File
	copies  sync.WaitGroup
	exited  chan struct{} // closed once the command has exited and its group been killed
	readyAt time.Time     // guarded by Runtime.mu
}

func (p *proc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// status describes how p ended ("exit status 1", "signal: killed"); call it
// only after p.exited is closed.
func (p *proc) status() string {
	if p.cmd.ProcessState == nil {
		return "unknown status"
	}
	return p.cmd.ProcessState.String()
}

// launch starts the command on a fresh free port, in a new process group,
// without waiting for it to be ready.
func (r *Runtime) launch() (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{
		Path: r.path,
		Args: r.cfg.Command,
		Dir:  r.cfg.Dir,
		Env:  append(r.env[:len(r.env):len(r.env)], EnvPort+"="+strconv.Itoa(port)),
	}
	if err := setGroup(cmd); err != nil {
		return nil, err
	}
	p := &proc{
		cmd:    cmd,
		port:   port,
		target: &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))},
		tail:   &tail{},
		exited: make(chan struct{}),
	}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(p.target)
			pr.SetXForwarded()
		},
		Transport:    r.transport,
		ErrorLog:     slog.NewLogLogger(r.logger.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) { r.proxyError(w, req, p, err) },
	}
	var writeEnds []*os.File
	closeAll := func() {
		for _, f := range writeEnds {
			f.Close()
		}
		for _, f := range p.readers {
			f.Close()
		}
	}
	outs := []io.Writer{r.cfg.Stdout, r.cfg.Stderr}
	for i := range outs {
		rd, wr, err := os.Pipe()
		if err != nil {
			closeAll()
			return nil, mloop.Errorf(mloop.EINTERNAL, "create output pipe: %v", err)
		}
		p.readers = append(p.readers, rd)
		writeEnds = append(writeEnds, wr)
		if i == 0 {
			cmd.Stdout = wr
		} else {
			cmd.Stderr = wr
		}
	}
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, mloop.Errorf(mloop.EINTERNAL, "start %q: %v", r.cfg.Command[0], err)
	}
	for _, f := range writeEnds {
		f.Close() // the child holds its own copies
	}
	p.pid = cmd.Process.Pid
	for i, rd := range p.readers {
		p.copies.Add(1)
		go func(w io.Writer, rd *os.File) {
			defer p.copies.Done()
			io.Copy(&outWriter{r: r, p: p, w: w}, rd)
			rd.Close()
		}(outs[i], rd)
	}
	go r.reap(p)
	return p, nil
}

// reap waits for p's command, kills what it left in its group, drains its
// output and closes p.exited.
func (r *Runtime) reap(p *proc) {
	if err := p.cmd.Wait(); err != nil && p.cmd.ProcessState == nil {
		r.logger.Error("wait for model process", "pid", p.pid, "err", err)
	}
	// Leftovers in the group, usually none. The group id cannot have been
	// reused yet unless the whole group was gone, which makes this a no-op
	// in practice; the kernel allocates ids cyclically.
	killGroup(p.pid)
	drained := make(chan struct{})
	go func() { p.copies.Wait(); close(drained) }()
	t := time.NewTimer(r.cfg.Grace)
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
		r.logger.Warn("model process output still open after it exited; closing it", "pid", p.pid)
		for _, f := range p.readers {
			f.Close()
		}
		<-drained
	}
	close(p.exited)
}

// proxyError answers a request the process did not answer: 503 when the
// process is down (it will be restarted), 502 otherwise.
func (r *Runtime) proxyError(w http.ResponseWriter, req *http.Request, p *proc, err error) {
	if req.Context().Err() != nil {
		return // the client has gone; nobody reads an answer
	}
	var op *net.OpError
	if p.hasExited() || errors.As(err, &op) && op.Op == "dial" {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("model %q is unavailable: its process is restarting; retry shortly", r.name))
		return
	}
	r.logger.Warn("proxy to model process", "pid", p.pid, "path", req.URL.Path, "err", err)
	writeError(w, http.StatusBadGateway, fmt.Sprintf("model %q: the model process did not answer: %v", r.name, err))
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago. If
// another program takes it before the command binds it, the command fails
// to start and is restarted on another port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, mloop.Errorf(mloop.EINTERNAL, "find a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port, nil
}

// outWriter copies one output stream of a process to its tail and to the
// configured writer, which a failure disables (logged once).
type outWriter struct {
	r      *Runtime
	p      *proc
	w      io.Writer
	failed bool
}

func (o *outWriter) Write(b []byte) (int, error) {
	o.p.tail.Write(b)
	if o.w == nil || o.failed {
		return len(b), nil
	}
	o.r.outMu.Lock()
	_, err := o.w.Write(b)
	o.r.outMu.Unlock()
	if err != nil {
		o.failed = true
		o.r.logger.Warn("model process output writer failed; discarding the rest", "pid", o.p.pid, "err", err)
	}
	return len(b), nil
}

// tail keeps the last tailBytes of a process's output.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > 2*tailBytes {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailBytes:]...)
	}
	return len(b), nil
}

// lastLines returns up to n of the last lines of output.
func (t *tail) lastLines(n int) string {
	t.mu.Lock()
	s := string(t.buf)
	t.mu.Unlock()
	if len(s) > tailBytes {
		s = s[len(s)-tailBytes:]
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// quote returns the last lines of output for an error message, or a note
// that there were none.
func (t *tail) quote() string {
	s := t.lastLines(tailLines)
	if strings.TrimSpace(s) == "" {
		return "; it wrote no output"
	}
	return "; its last output:\n" + s
}
