package tracking

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/mloop/mloop"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestPageTokenRoundTrip(t *testing.T) {
	for _, offset := range []int{1, 2, 1000, 50000, 1 << 40} {
		tok := EncodePageToken(offset)
		got, err := DecodePageToken(tok)
		if err != nil || got != offset {
			t.Errorf("DecodePageToken(EncodePageToken(%d)): got %d, %v; want %d, nil", offset, got, err, offset)
		}
	}
}

// TestPageTokenFormat checks that tokens are MLflow's, so that tokens pass
// between mloop and MLflow servers and clients.
func TestPageTokenFormat(t *testing.T) {
	if got, want := EncodePageToken(1000), b64(`{"offset":1000}`); got != want {
		t.Errorf("EncodePageToken(1000): got %q, want %q", got, want)
	}
	// MLflow writes the token with json.dumps, which puts a space after the colon.
	if got, err := DecodePageToken(b64(`{"offset": 1000}`)); err != nil || got != 1000 {
		t.Errorf("DecodePageToken of MLflow's token: got %d, %v; want 1000, nil", got, err)
	}
}

func TestDecodePageToken(t *testing.T) {
	tests := []struct {
		name    string
		token   string
		want    int
		wantMsg string // substring of the EINVALID message; "" for success
	}{
		{"empty token is the first page", "", 0, ""},
		{"integer offset", b64(`{"offset": 25}`), 25, ""},
		{"offset as a string, as MLflow's int() accepts", b64(`{"offset": "25"}`), 25, ""},
		{"other fields are ignored", b64(`{"offset": 3, "extra": true}`), 3, ""},
		{"not base64", "!!not-base64!!", 0, "could not base64-decode"},
		{"base64 without padding", strings.TrimRight(b64(`{"offset": 10}`), "="), 0, "could not base64-decode"},
		{"not JSON", b64("offset=3"), 0, "decoded value=offset=3"},
		{"JSON but not an object", b64(`[3]`), 0, "decoded value=[3]"},
		{"JSON null", b64(`null`), 0, "decoded value=null"},
		{"no offset", b64(`{"start": 3}`), 0, "parsed value="},
		{"zero offset", b64(`{"offset": 0}`), 0, "parsed value="},
		{"negative offset", b64(`{"offset": -4}`), 0, "parsed value="},
		{"fractional offset", b64(`{"offset": 1.5}`), 0, "not stringable 1.5"},
		{"word offset", b64(`{"offset": "ten"}`), 0, `not stringable "ten"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodePageToken(tt.token)
			if tt.wantMsg == "" {
				if err != nil || got != tt.want {
					t.Errorf("DecodePageToken(%q): got %d, %v; want %d, nil", tt.token, got, err, tt.want)
				}
				return
			}
			if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), tt.wantMsg) {
				t.Errorf("DecodePageToken(%q): got %d, %v; want an EINVALID error containing %q", tt.token, got, err, tt.wantMsg)
			}
			if !strings.HasPrefix(mloop.ErrorMessage(err), "Invalid page token") {
				t.Errorf("DecodePageToken(%q): got message %q, want it to start with %q", tt.token, mloop.ErrorMessage(err), "Invalid page token")
			}
		})
	}
}

// FuzzDecodePageToken checks that any token a client sends either decodes to
// a positive offset that encodes back to an equivalent token, or is rejected
// as EINVALID; nothing panics.
func FuzzDecodePageToken(f *testing.F) {
	f.Add("")
	f.Add(EncodePageToken(10))
	f.Add(b64(`{"offset": "7"}`))
	f.Add(b64(`{"offset": -1}`))
	f.Add("eyJvZmZzZXQiOiAx")
	f.Fuzz(func(t *testing.T, token string) {
		offset, err := DecodePageToken(token)
		if err != nil {
			if mloop.ErrorCode(err) != mloop.EINVALID {
				t.Fatalf("DecodePageToken(%q): got error kind %q, want %q", token, mloop.ErrorCode(err), mloop.EINVALID)
			}
			return
		}
		if token == "" {
			if offset != 0 {
				t.Fatalf("DecodePageToken(\"\"): got %d, want 0", offset)
			}
			return
		}
		if offset <= 0 {
			t.Fatalf("DecodePageToken(%q): got offset %d, want a positive one", token, offset)
		}
		if again, err := DecodePageToken(EncodePageToken(offset)); err != nil || again != offset {
			t.Fatalf("round trip of %d: got %d, %v", offset, again, err)
		}
	})
}
