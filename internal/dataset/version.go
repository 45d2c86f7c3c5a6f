package dataset

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"time"
)

// File is one file of a dataset version: its path inside the version (slash
// separated, relative), the SHA-256 of its bytes (lower-case hex), which is
// also its key in the artifact store, and how to read it.
type File struct {
	Path        string      `json:"path"`
	SHA256      string      `json:"sha256"`
	Size        int64       `json:"size"`
	Format      Format      `json:"format"`
	Compression Compression `json:"compression,omitempty"`
	Rows        int64       `json:"rows"`
}

// Version is an immutable dataset version.
type Version struct {
	Dataset   string            `json:"dataset"`
	Version   int64             `json:"version"`
	Digest    string            `json:"digest"` // ManifestDigest(Files), "sha256:<hex>"
	Rows      int64             `json:"rows"`
	Bytes     int64             `json:"bytes"`
	Files     []File            `json:"files"`
	Profile   *Profile          `json:"profile,omitempty"`
	Source    string            `json:"source,omitempty"` // where it was pushed from (path as the client saw it)
	User      string            `json:"user,omitempty"`   // who pushed it
	Tags      map[string]string `json:"tags,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

// Ref returns the version's canonical reference, NAME@N.
func (v *Version) Ref() string { return v.Dataset + "@" + itoa(v.Version) }

// ManifestDigest is a version's identity: "sha256:" and the hex SHA-256 of
// the canonical manifest, the JSON array of {"path","sha256","size"} objects
// of its files sorted by path. Formats, row counts and profiles are derived
// from the bytes and so are not part of it.
func ManifestDigest(files []File) string {
	type entry struct {
		Path   string `json:"path"`
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	}
	es := make([]entry, len(files))
	for i, f := range files {
		es[i] = entry{f.Path, f.SHA256, f.Size}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Path < es[j].Path })
	b, err := json.Marshal(es)
	if err != nil {
		panic(err) // strings and integers always marshal
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
