package router

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestCaptureWriter checks that a proxied answer's informational status
// is not taken for its status, and that a body beyond maxCapture is kept
// as its contiguous beginning, marked truncated.
func TestCaptureWriter(t *testing.T) {
	rev := &revision{revHeader: []string{"3"}, mvHeader: []string{"m/1"}}
	rec := httptest.NewRecorder()
	c := &captureWriter{ResponseWriter: rec, rev: rev, id: "x", capture: true}
	c.WriteHeader(http.StatusEarlyHints)
	c.WriteHeader(http.StatusOK)
	if c.status != http.StatusOK || rec.Header().Get("X-Mloop-Revision") != "3" {
		t.Errorf("after 103 then 200: status %d, revision header %q, want 200 and 3", c.status, rec.Header().Get("X-Mloop-Revision"))
	}
	big := bytes.Repeat([]byte("a"), maxCapture/2+1)
	small := []byte("tail")
	c.Write(big)
	c.Write(big) // does not fit
	c.Write(small)
	if !c.truncated || c.buf.Len() != len(big) {
		t.Errorf("captured %d bytes (truncated %v), want the first %d only", c.buf.Len(), c.truncated, len(big))
	}
	if rec.Body.Len() != 2*len(big)+len(small) {
		t.Errorf("passed on %d bytes, want all %d", rec.Body.Len(), 2*len(big)+len(small))
	}

	m := &memWriter{header: make(http.Header)}
	m.WriteHeader(http.StatusContinue)
	m.Write(big)
	m.Write(big)
	m.Write(small)
	if m.status != http.StatusOK || !m.truncated || m.buf.Len() != len(big) {
		t.Errorf("memWriter: status %d, %d bytes kept (truncated %v), want 200 and the first %d", m.status, m.buf.Len(), m.truncated, len(big))
	}
}

// TestBodyReader checks the body of a proxied request: the buffer goes
// back to the pool only once every holder released it, and a transport
// still reading after Close gets an error, never the buffer (run with
// -race: a Read racing with the buffer's reuse would be reported).
func TestBodyReader(t *testing.T) {
	bp := new([]byte)
	*bp = append(*bp, bytes.Repeat([]byte("0123456789"), 1000)...)
	b := newSharedBody(bp, 1) // the handler
	rd := b.reader()
	if got := b.refs.Load(); got != 2 {
		t.Fatalf("holders: %d, want 2", got)
	}
	buf := make([]byte, 100)
	if n, err := rd.Read(buf); n != 100 || err != nil || string(buf[:10]) != "0123456789" {
		t.Fatalf("Read: %d %v %q", n, err, buf[:10])
	}
	// A transport goroutine keeps reading while the handler is done.
	var wg sync.WaitGroup
	wg.Add(1)
	readErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		p := make([]byte, 7)
		for {
			if _, err := rd.Read(p); err != nil {
				readErr <- err
				return
			}
		}
	}()
	rd.Close()
	rd.Close() // idempotent
	if got := b.refs.Load(); got != 1 {
		t.Fatalf("holders after Close: %d, want 1", got)
	}
	// Once Close returned, the buffer may be reused.
	for i := range *bp {
		(*bp)[i] = 'x'
	}
	wg.Wait()
	if err := <-readErr; !errors.Is(err, errBodyClosed) && err != io.EOF {
		t.Errorf("read after Close: %v", err)
	}
	if n, err := rd.Read(buf); n != 0 || !errors.Is(err, errBodyClosed) {
		t.Errorf("Read after Close: %d %v, want errBodyClosed", n, err)
	}
	b.release()
	if got := b.refs.Load(); got != 0 {
		t.Errorf("holders after the last release: %d", got)
	}

	// An empty body is sent as http.NoBody.
	req := httptest.NewRequest("POST", "/", nil)
	if rd := setBody(req, newSharedBody(new([]byte), 1)); rd != nil || req.Body != http.NoBody || req.ContentLength != 0 {
		t.Errorf("empty body: reader %v, body %v, length %d", rd, req.Body, req.ContentLength)
	}
}
