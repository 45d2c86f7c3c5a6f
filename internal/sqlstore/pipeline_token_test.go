package sqlstore

import (
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/pipeline"
)

// FuzzParseRunPageToken checks that any page token a client sends is either
// rejected or decodes to a position that encodes back to the same token.
func FuzzParseRunPageToken(f *testing.F) {
	f.Add(runPageToken(&pipeline.Run{ID: "pr-0123456789ab", CreatedAt: time.UnixMilli(1741064767008)}))
	f.Add("")
	f.Add("bm90IGEgdG9rZW4")
	f.Add("LTE6eA")
	f.Fuzz(func(t *testing.T, tok string) {
		created, id, err := parseRunPageToken(tok)
		if err != nil {
			if !strings.Contains(err.Error(), "page token") {
				t.Fatalf("parseRunPageToken(%q): got error %v, want one that names the page token", tok, err)
			}
			return
		}
		if id == "" {
			t.Fatalf("parseRunPageToken(%q): got an empty id and no error", tok)
		}
		again := runPageToken(&pipeline.Run{ID: id, CreatedAt: time.UnixMilli(created)})
		c2, id2, err := parseRunPageToken(again)
		if err != nil || c2 != created || id2 != id {
			t.Fatalf("round trip of (%d, %q): got (%d, %q, %v)", created, id, c2, id2, err)
		}
	})
}
