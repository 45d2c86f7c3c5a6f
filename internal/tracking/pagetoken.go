package tracking

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/mloop/mloop"
)

// Page tokens are MLflow's: the standard base64 encoding of the JSON object
// {"offset": N}, where N is the number of results already returned. Clients
// treat them as opaque and send them back unchanged; keeping MLflow's format
// lets a client resume a search across a switch between servers.

// EncodePageToken returns the page token that resumes a listing after offset results.
func EncodePageToken(offset int) string {
	b, _ := json.Marshal(struct {
		Offset int `json:"offset"`
	}{offset})
	return base64.StdEncoding.EncodeToString(b)
}

// DecodePageToken returns the offset a page token encodes; the empty token is
// offset 0. A token that is not base64, not a JSON object, or whose offset is
// missing, zero, negative or not an integer is an EINVALID error, with
// MLflow's messages.
func DecodePageToken(token string) (int, error) {
	if token == "" {
		return 0, nil
	}
	b, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		return 0, mloop.Errorf(mloop.EINVALID, "Invalid page token, could not base64-decode")
	}
	var parsed map[string]json.RawMessage
	if err := json.Unmarshal(b, &parsed); err != nil || parsed == nil {
		return 0, mloop.Errorf(mloop.EINVALID, "Invalid page token, decoded value=%s", truncate(string(b), 100))
	}
	raw, ok := parsed["offset"]
	if !ok {
		return 0, mloop.Errorf(mloop.EINVALID, "Invalid page token, parsed value=%s", truncate(string(b), 100))
	}
	offset, err := tokenOffset(raw)
	if err != nil {
		return 0, mloop.Errorf(mloop.EINVALID, "Invalid page token, not stringable %s", truncate(string(raw), 100))
	}
	if offset <= 0 {
		// MLflow rejects a falsy offset (0) and never issues a negative one.
		return 0, mloop.Errorf(mloop.EINVALID, "Invalid page token, parsed value=%s", truncate(string(b), 100))
	}
	return offset, nil
}

// tokenOffset reads the offset of a page token: a JSON integer, or a string
// holding one (MLflow converts the value with int()).
func tokenOffset(raw json.RawMessage) (int, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		s = string(raw)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("offset %s: %w", raw, err)
	}
	return n, nil
}

// truncate shortens s to at most n bytes for error messages, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
