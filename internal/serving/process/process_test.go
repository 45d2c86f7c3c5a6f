package process_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/process"
)

// serverModeEnv makes the test binary act as a model server (see
// testServer) instead of running the tests.
const serverModeEnv = "MLOOP_PROCESS_TEST_SERVER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(serverModeEnv); mode != "" {
		os.Exit(testServer(mode))
	}
	os.Exit(m.Run())
}

// testServer is a tiny Open Inference Protocol server, run as a real
// process by re-executing the test binary. Modes:
//
//	serve  listen on $PORT; ready while $READY_FILE exists (always, when
//	       unset); infer sums each row; with $GRANDCHILD_PIDFILE, first
//	       start a grandchild (mode sleep) and write its pid there; with
//	       $IGNORE_TERM, ignore SIGTERM
//	exit   write an error and exit with status 3
//	never  write a line and sleep, never listening
//	sleep  ignore SIGTERM and sleep (a stubborn grandchild)
func testServer(mode string) int {
	switch mode {
	case "exit":
		fmt.Fprintln(os.Stderr, "fatal: cannot load model weights.bin")
		return 3
	case "never":
		fmt.Println("loading forever")
		select {}
	case "sleep":
		signal.Ignore(syscall.SIGTERM)
		select {}
	case "serve":
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", mode)
		return 2
	}
	if f := os.Getenv("GRANDCHILD_PIDFILE"); f != "" {
		self, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		c := exec.Command(self)
		c.Env = []string{serverModeEnv + "=sleep"}
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := os.WriteFile(f, []byte(strconv.Itoa(c.Process.Pid)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if os.Getenv("IGNORE_TERM") != "" {
		signal.Ignore(syscall.SIGTERM)
	}
	name := os.Getenv("MLOOP_MODEL_NAME")
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /v2/health/live", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /v2/health/ready", func(w http.ResponseWriter, r *http.Request) {
		if f := os.Getenv("READY_FILE"); f != "" {
			if _, err := os.Stat(f); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}
	})
	mux.HandleFunc("GET /v2/env", func(w http.ResponseWriter, r *http.Request) { answer(w, 200, os.Environ()) })
	mux.HandleFunc("GET /v2/fail", func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusInternalServerError, map[string]string{"error": "boom"})
	})
	mux.HandleFunc("POST /v2/models/{name}/infer", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != name {
			answer(w, http.StatusNotFound, map[string]string{"error": "unknown model " + r.PathValue("name")})
			return
		}
		var req struct {
			ID     string `json:"id"`
			Inputs []struct {
				Shape []int     `json:"shape"`
				Data  []float32 `json:"data"`
			} `json:"inputs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Inputs) != 1 || len(req.Inputs[0].Shape) != 2 ||
			req.Inputs[0].Shape[0]*req.Inputs[0].Shape[1] != len(req.Inputs[0].Data) {
			answer(w, http.StatusBadRequest, map[string]string{"error": "want one 2-D input"})
			return
		}
		in := req.Inputs[0]
		sums := make([]float32, in.Shape[0])
		for i := range sums {
			for _, v := range in.Data[i*in.Shape[1] : (i+1)*in.Shape[1]] {
				sums[i] += v
			}
		}
		answer(w, 200, map[string]any{"id": req.ID, "model_name": name, "outputs": []any{
			map[string]any{"name": "sum", "datatype": "FP32", "shape": []int{len(sums)}, "data": sums},
		}})
	})
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("test server listening on", l.Addr())
	if err := http.Serve(l, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// testCommand returns the command that runs this test binary as a server.
func testCommand(t *testing.T) []string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{self}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// mustStart starts a runtime and closes it at the end of the test.
func mustStart(t *testing.T, name string, cfg process.Config) *process.Runtime {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rt, err := process.Start(ctx, name, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return rt
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// call sends a request and returns the status and body.
func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

const inferBody = `{"id": "req-1", "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 3], "data": [1, 2, 3, 4, 5, 6]}]}`

func checkInfer(t *testing.T, url string) {
	t.Helper()
	status, body := call(t, "POST", url, inferBody)
	if status != 200 {
		t.Fatalf("infer: got status %d (%s), want 200", status, body)
	}
	var resp struct {
		ID      string `json:"id"`
		Outputs []struct {
			Data []float32 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("infer: %v in %s", err, body)
	}
	if resp.ID != "req-1" || len(resp.Outputs) != 1 || fmt.Sprint(resp.Outputs[0].Data) != "[6 15]" {
		t.Fatalf("infer: got %s, want id req-1 and sums [6 15]", body)
	}
}

func TestProxyRestartAfterKill(t *testing.T) {
	t.Setenv("MLOOP_PROCESS_TEST_SECRET", "must not leak")
	readyFile := filepath.Join(t.TempDir(), "ready")
	if err := os.WriteFile(readyFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	rt := mustStart(t, "adder", process.Config{
		Command:    testCommand(t),
		Env:        map[string]string{serverModeEnv: "serve", "READY_FILE": readyFile},
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond,
		Stdout:     &out,
		Stderr:     &out,
	})
	if !rt.Ready() {
		t.Fatal("Ready() = false after Start")
	}
	mux := http.NewServeMux()
	mux.Handle("/v2/", rt)
	mux.HandleFunc("/deployments/{name}/infer", func(w http.ResponseWriter, r *http.Request) {
		rt.Proxy(w, r, "/v2/models/adder/infer")
	})
	mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) { rt.Proxy(w, r, "/other") })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	checkInfer(t, srv.URL+"/v2/models/adder/infer")
	checkInfer(t, srv.URL+"/deployments/d/infer")
	for _, c := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"POST", "/v2/models/nope/infer", 404, "unknown model nope"}, // the backend's answer
		{"GET", "/v2/fail", 500, "boom"},
		{"GET", "/other", 404, "only Open Inference Protocol paths"}, // the runtime's
	} {
		status, body := call(t, c.method, srv.URL+c.path, inferBody)
		if status != c.status || !strings.Contains(body, c.body) {
			t.Errorf("%s %s: got %d %s, want %d with %q", c.method, c.path, status, body, c.status, c.body)
		}
	}
	if !strings.Contains(out.String(), "test server listening on 127.0.0.1:") {
		t.Errorf("output not forwarded: got %q", out.String())
	}

	// The command's environment is exactly the inherited few variables,
	// Config.Env, PORT and MLOOP_MODEL_NAME.
	status, body := call(t, "GET", srv.URL+"/v2/env", "")
	var env []string
	if err := json.Unmarshal([]byte(body), &env); status != 200 || err != nil {
		t.Fatalf("env: got %d %s (%v)", status, body, err)
	}
	allowed := map[string]bool{"PATH": true, "HOME": true, "LANG": true, "LC_ALL": true, "TZ": true, "TMPDIR": true,
		"PORT": true, "MLOOP_MODEL_NAME": true, serverModeEnv: true, "READY_FILE": true}
	seen := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		seen[k] = v
		if !allowed[k] {
			t.Errorf("the command's environment holds %s", kv)
		}
	}
	if seen["MLOOP_MODEL_NAME"] != "adder" || seen["PORT"] == "" || seen["PATH"] != os.Getenv("PATH") {
		t.Errorf("environment: got %v, want MLOOP_MODEL_NAME=adder, a PORT and the server's PATH", seen)
	}

	// Kill the process; it is not ready again until the ready file is back,
	// so the down time lasts as long as the test needs.
	if err := os.Remove(readyFile); err != nil {
		t.Fatal(err)
	}
	pid := rt.PID()
	if pid <= 0 {
		t.Fatalf("PID() = %d", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the runtime notices the process died", func() bool { return !rt.Ready() })
	status, body = call(t, "POST", srv.URL+"/v2/models/adder/infer", inferBody)
	if status != 503 || !strings.Contains(body, "restarting") {
		t.Errorf("while down: got %d %s, want 503 saying it is restarting", status, body)
	}
	if err := os.WriteFile(readyFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the process is restarted", rt.Ready)
	if got := rt.Restarts(); got != 1 {
		t.Errorf("Restarts() = %d, want 1", got)
	}
	if got := rt.PID(); got == pid || got <= 0 {
		t.Errorf("PID() after restart = %d, want a new process (was %d)", got, pid)
	}
	checkInfer(t, srv.URL+"/v2/models/adder/infer")
}

func TestStartFailsWhenCommandExits(t *testing.T) {
	_, err := process.Start(context.Background(), "m", process.Config{
		Command: testCommand(t),
		Env:     map[string]string{serverModeEnv: "exit"},
	})
	if err == nil {
		t.Fatal("Start succeeded, want an error")
	}
	for _, want := range []string{"exit status 3", "fatal: cannot load model weights.bin", "/v2/health/ready"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if got := mloop.ErrorCode(err); got != mloop.EINVALID {
		t.Errorf("error kind %q, want %q", got, mloop.EINVALID)
	}
}

func TestStartFailsWhenNeverReady(t *testing.T) {
	_, err := process.Start(context.Background(), "m", process.Config{
		Command:      testCommand(t),
		Env:          map[string]string{serverModeEnv: "never"},
		ReadyTimeout: 300 * time.Millisecond,
		Grace:        100 * time.Millisecond,
	})
	if err == nil {
		t.Fatal("Start succeeded, want an error")
	}
	for _, want := range []string{"not ready after 300ms", "connection refused", "loading forever"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if got := mloop.ErrorCode(err); got != mloop.EINVALID {
		t.Errorf("error kind %q, want %q", got, mloop.EINVALID)
	}
}

func TestStartCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	_, err := process.Start(ctx, "m", process.Config{
		Command: testCommand(t),
		Env:     map[string]string{serverModeEnv: "never"},
		Grace:   100 * time.Millisecond,
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start: got %v, want context.Canceled", err)
	}
}

func TestStartInvalidConfig(t *testing.T) {
	cmd := testCommand(t)
	for _, c := range []struct {
		name string
		cfg  process.Config
		want string
	}{
		{"no command", process.Config{}, "empty command"},
		{"port in env", process.Config{Command: cmd, Env: map[string]string{"PORT": "80"}}, "PORT is set by the runtime"},
		{"model name in env", process.Config{Command: cmd, Env: map[string]string{"MLOOP_MODEL_NAME": "x"}}, "MLOOP_MODEL_NAME is set by the runtime"},
		{"bad env name", process.Config{Command: cmd, Env: map[string]string{"A=B": "x"}}, "invalid environment variable name"},
		{"negative grace", process.Config{Command: cmd, Grace: -time.Second}, "negative grace"},
		{"missing folder", process.Config{Command: cmd, Dir: filepath.Join(t.TempDir(), "nope")}, "working folder"},
		{"not found", process.Config{Command: []string{"mloop-no-such-command"}}, "not found in PATH"},
		{"not found in env PATH", process.Config{Command: []string{"sh"}, Env: map[string]string{"PATH": t.TempDir()}}, "not found in PATH"},
		{"not executable", process.Config{Command: []string{"./x"}, Dir: t.TempDir()}, "no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := process.Start(context.Background(), "m", c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) || mloop.ErrorCode(err) != mloop.EINVALID {
				t.Errorf("got %v, want an EINVALID error mentioning %q", err, c.want)
			}
		})
	}
}

func TestCloseKillsWholeGroup(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc to list a process group")
	}
	pidFile := filepath.Join(t.TempDir(), "grandchild")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rt, err := process.Start(ctx, "m", process.Config{
		Command: testCommand(t),
		Env:     map[string]string{serverModeEnv: "serve", "GRANDCHILD_PIDFILE": pidFile, "IGNORE_TERM": "1"},
		Grace:   200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	pgid := rt.PID()
	var grandchild int
	waitFor(t, "the grandchild's pid is written", func() bool {
		b, err := os.ReadFile(pidFile)
		grandchild, _ = strconv.Atoi(string(b))
		return err == nil && grandchild > 0
	})
	members := groupMembers(t, pgid)
	if !contains(members, pgid) || !contains(members, grandchild) {
		t.Fatalf("group %d holds %v, want the server %d and its grandchild %d", pgid, members, pgid, grandchild)
	}
	if err := rt.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitFor(t, "the process group is empty", func() bool { return len(groupMembers(t, pgid)) == 0 })
	if rt.Ready() || rt.PID() != 0 {
		t.Errorf("after Close: Ready() = %v, PID() = %d; want false, 0", rt.Ready(), rt.PID())
	}
	w := httptest.NewRecorder()
	rt.ServeHTTP(w, httptest.NewRequest("POST", "/v2/models/m/infer", strings.NewReader(inferBody)))
	if w.Code != 503 || !strings.Contains(w.Body.String(), "stopped") {
		t.Errorf("after Close: got %d %s, want 503 saying it is stopped", w.Code, w.Body)
	}
	if err := rt.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// groupMembers lists the live (not zombie) processes of group pgid, from
// /proc: this container's PID 1 does not reap orphans, so killed
// grandchildren may linger as zombies.
func groupMembers(t *testing.T, pgid int) []int {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
