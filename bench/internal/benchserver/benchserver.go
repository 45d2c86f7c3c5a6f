// Package benchserver builds the mloop binary and runs `mloop server` as a
// separate process for the benchmark programs under bench/, so that what they
// measure is the real program over real HTTP.
package benchserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Build compiles ./cmd/mloop (run from the repository root) into dir and
// returns the binary's path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "mloop")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/mloop").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// Server is a running `mloop server` process.
type Server struct {
	cmd *exec.Cmd
	URL string // http://127.0.0.1:PORT
}

// Start runs bin as `mloop server` on a free port of 127.0.0.1 with its data
// in dataDir, and waits until /readyz answers 200 (at most 30 s).
func Start(bin, dataDir string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "server", "--addr", addr, "--data", dataDir, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{cmd: cmd, URL: "http://" + addr}
	for i := 0; ; i++ {
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if i > 600 {
			s.Stop()
			return nil, fmt.Errorf("mloop server on %s did not become ready in 30 s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PeakRSSMB returns the server's peak resident set size (VmHWM) in MiB, or
// -1 when /proc does not tell.
func (s *Server) PeakRSSMB() float64 { return PeakRSSMB(s.cmd.Process.Pid) }

// Stop interrupts the server, as Ctrl-C would, and waits for it to exit
// (killing it after 30 s).
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// PeakRSSMB reads process pid's peak resident set size (VmHWM) from /proc,
// in MiB; -1 when it cannot.
func PeakRSSMB(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err != nil {
				return -1
			}
			return kb / 1024
		}
	}
	return -1
}
