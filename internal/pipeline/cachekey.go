package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"
)

// EngineSalt is mixed into every cache key. Bump it whenever the meaning of a
// cached result changes (how steps run, what outputs hold), so that old
// cache entries stop matching.
const EngineSalt = "mloop-pipeline-cache-v1"

// CacheInput is everything a step's cached result depends on.
type CacheInput struct {
	// Engine is the engine salt; CacheKey uses EngineSalt when it is empty.
	Engine string `json:"engine,omitempty"`
	// Command is the argv after substitution.
	Command []string `json:"command"`
	// Params are the step's resolved parameters.
	Params map[string]string `json:"params,omitempty"`
	// Env holds the allowed environment variables that reach the step.
	Env map[string]string `json:"env,omitempty"`
	// Code maps code input names to their paths and content hashes.
	Code map[string]InputHash `json:"code,omitempty"`
	// Data maps data input names to their dataset references and version digests.
	Data map[string]InputHash `json:"data,omitempty"`
	// Upstream maps step-output input names to their references and content hashes.
	Upstream map[string]InputHash `json:"upstream,omitempty"`
	// Image is the container image, if any.
	Image string `json:"image,omitempty"`
	// Outputs describes the declared outputs, name → "path type flavor":
	// a result recorded under other declarations (say, an output that was
	// a plain file and is now a metrics file) is not reused.
	Outputs map[string]string `json:"outputs,omitempty"`
}

// InputHash is the content hash of one input. Only Hash enters the cache
// key; Ref (as written in the spec) serves explanations.
type InputHash struct {
	Ref  string `json:"ref,omitempty"`
	Hash string `json:"hash"`
}

// CacheKey returns "sha256:<hex>" of the canonical encoding of in. The
// encoding is a sequence of fields, each a uvarint-length-prefixed string:
//
//	"mloop-cache-key", engine salt,
//	"command", n, argv[0..n),
//	"params", n, (key, value) × n sorted by key,
//	"env", n, (key, value) × n sorted by key,
//	"code", n, (name, hash) × n sorted by name,
//	"data", n, (name, hash) × n sorted by name,
//	"upstream", n, (name, hash) × n sorted by name,
//	"image", image,
//	and, when there are any, "outputs", n, (name, description) × n sorted by name
//
// where counts n are uvarints. Length prefixes make the encoding
// unambiguous; the Ref of an input does not enter the key, so a dataset
// named differently but with the same content still hits the cache.
func CacheKey(in CacheInput) string {
	h := sha256.New()
	var buf [binary.MaxVarintLen64]byte
	num := func(n int) { h.Write(buf[:binary.PutUvarint(buf[:], uint64(n))]) }
	str := func(s string) { num(len(s)); io.WriteString(h, s) }
	engine := in.Engine
	if engine == "" {
		engine = EngineSalt
	}
	str("mloop-cache-key")
	str(engine)
	str("command")
	num(len(in.Command))
	for _, a := range in.Command {
		str(a)
	}
	pairs := func(tag string, m map[string]string) {
		str(tag)
		num(len(m))
		for _, k := range sortedKeys(m) {
			str(k)
			str(m[k])
		}
	}
	hashes := func(m map[string]InputHash) map[string]string {
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[k] = v.Hash
		}
		return out
	}
	pairs("params", in.Params)
	pairs("env", in.Env)
	pairs("code", hashes(in.Code))
	pairs("data", hashes(in.Data))
	pairs("upstream", hashes(in.Upstream))
	str("image")
	str(in.Image)
	if len(in.Outputs) > 0 {
		pairs("outputs", in.Outputs)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// ExplainDiff lists, one human line each, what differs between the inputs of
// a recorded result (old) and of the step now (new), in a fixed order:
// engine, command, params, env, code, data, upstream inputs, image,
// outputs. It
// returns nil when nothing that enters the cache key differs.
func ExplainDiff(old, new CacheInput) []string {
	var out []string
	oe, ne := old.Engine, new.Engine
	if oe == "" {
		oe = EngineSalt
	}
	if ne == "" {
		ne = EngineSalt
	}
	if oe != ne {
		out = append(out, fmt.Sprintf("engine salt: %s → %s", oe, ne))
	}
	if !equalStrings(old.Command, new.Command) {
		out = append(out, fmt.Sprintf("command changed: %q → %q", strings.Join(old.Command, " "), strings.Join(new.Command, " ")))
	}
	out = append(out, diffMap("param", old.Params, new.Params, func(v string) string { return v })...)
	out = append(out, diffMap("env", old.Env, new.Env, func(v string) string { return v })...)
	out = append(out, diffInputs("code", old.Code, new.Code)...)
	out = append(out, diffInputs("data", old.Data, new.Data)...)
	out = append(out, diffInputs("upstream", old.Upstream, new.Upstream)...)
	if old.Image != new.Image {
		out = append(out, fmt.Sprintf("image: %s → %s", orNone(old.Image), orNone(new.Image)))
	}
	out = append(out, diffMap("output", old.Outputs, new.Outputs, func(v string) string { return v })...)
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// unionKeys returns the keys of a and b, sorted, each once.
func unionKeys[V any](a, b map[string]V) []string {
	keys := make(map[string]bool, len(a)+len(b))
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return sortedKeys(keys)
}

func diffMap(what string, old, new map[string]string, show func(string) string) []string {
	var out []string
	for _, k := range unionKeys(old, new) {
		o, inOld := old[k]
		n, inNew := new[k]
		switch {
		case !inOld:
			out = append(out, fmt.Sprintf("%s %s added: %s", what, k, show(n)))
		case !inNew:
			out = append(out, fmt.Sprintf("%s %s removed (was %s)", what, k, show(o)))
		case o != n:
			out = append(out, fmt.Sprintf("%s %s: %s → %s", what, k, show(o), show(n)))
		}
	}
	return out
}

func diffInputs(kind string, old, new map[string]InputHash) []string {
	var out []string
	for _, k := range unionKeys(old, new) {
		o, inOld := old[k]
		n, inNew := new[k]
		label := func(h InputHash) string {
			if h.Ref != "" {
				return fmt.Sprintf("input %s (%s)", k, h.Ref)
			}
			return "input " + k
		}
		switch {
		case !inOld:
			out = append(out, fmt.Sprintf("%s added (%s): %s", label(n), kind, shortHash(n.Hash)))
		case !inNew:
			out = append(out, fmt.Sprintf("%s removed (%s, was %s)", label(o), kind, shortHash(o.Hash)))
		case o.Hash != n.Hash:
			out = append(out, fmt.Sprintf("%s: %s → %s", label(n), shortHash(o.Hash), shortHash(n.Hash)))
		}
	}
	return out
}

// shortHash abbreviates "sha256:<64 hex>" to "sha256:<12 hex>…".
func shortHash(h string) string {
	algo, hx, ok := strings.Cut(h, ":")
	if !ok || len(hx) <= 12 {
		return h
	}
	return algo + ":" + hx[:12] + "…"
}

// HashMemo remembers file content hashes by (path, size, mtime, inode) so
// that unchanged files are not read again. It is safe for concurrent use.
// Files modified within RacyWindow of the moment they are hashed are not
// remembered: a write in the same clock tick could leave their stat unchanged.
type HashMemo struct {
	// Open opens a file for hashing; os.Open when nil. Tests count reads with it.
	Open func(name string) (io.ReadCloser, error)
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// RacyWindow is how recent a modification time may be for its hash to be
	// remembered; 2s when zero.
	RacyWindow time.Duration

	mu      sync.Mutex
	entries map[string]memoEntry
}

type memoEntry struct {
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
	Inode   uint64 `json:"inode"`
	Hash    string `json:"hash"`
}

// memoFile is the JSON layout of a saved memo.
type memoFile struct {
	Version int                  `json:"version"`
	Files   map[string]memoEntry `json:"files"`
}

// NewHashMemo returns an empty memo.
func NewHashMemo() *HashMemo { return &HashMemo{entries: map[string]memoEntry{}} }

// LoadHashMemo reads a memo saved by Save. A missing file gives an empty memo.
func LoadHashMemo(path string) (*HashMemo, error) {
	m := NewHashMemo()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load hash memo: %w", err)
	}
	var f memoFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("load hash memo %s: %w", path, err)
	}
	if f.Version == 1 && f.Files != nil {
		m.entries = f.Files
	}
	return m, nil
}

// Save writes the memo to path atomically (a temporary file renamed over it).
func (m *HashMemo) Save(path string) error {
	m.mu.Lock()
	data, err := json.Marshal(memoFile{Version: 1, Files: m.entries})
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("save hash memo: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save hash memo: %w", err)
	}
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save hash memo: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save hash memo: %w", err)
	}
	return nil
}

// Len returns the number of remembered files.
func (m *HashMemo) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// inode returns the inode number of fi where the platform has one (the Ino
// field of syscall.Stat_t on Unix), else 0.
func inode(fi fs.FileInfo) uint64 {
	v := reflect.ValueOf(fi.Sys())
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return 0
	}
	f := v.FieldByName("Ino")
	if f.IsValid() && f.CanUint() {
		return f.Uint()
	}
	return 0
}

func (m *HashMemo) fileHash(ctx context.Context, path string, fi fs.FileInfo) (string, error) {
	var abs string
	if m != nil {
		var err error
		if abs, err = filepath.Abs(path); err != nil {
			return "", fmt.Errorf("hash %s: %w", path, err)
		}
		key := memoEntry{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano(), Inode: inode(fi)}
		m.mu.Lock()
		e, ok := m.entries[abs]
		m.mu.Unlock()
		if ok && e.Size == key.Size && e.MtimeNs == key.MtimeNs && e.Inode == key.Inode {
			return e.Hash, nil
		}
	}
	open := func(name string) (io.ReadCloser, error) { return os.Open(name) }
	if m != nil && m.Open != nil {
		open = m.Open
	}
	r, err := open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer r.Close()
	h := sha256.New()
	if err := copyCtx(ctx, h, r); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	sum := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if m != nil {
		now, window := time.Now, m.RacyWindow
		if m.Now != nil {
			now = m.Now
		}
		if window == 0 {
			window = 2 * time.Second
		}
		if fi.ModTime().Before(now().Add(-window)) {
			m.mu.Lock()
			if m.entries == nil {
				m.entries = map[string]memoEntry{}
			}
			m.entries[abs] = memoEntry{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano(), Inode: inode(fi), Hash: sum}
			m.mu.Unlock()
		}
	}
	return sum, nil
}

// copyCtx copies r into h, checking ctx between 1 MiB chunks.
func copyCtx(ctx context.Context, h hash.Hash, r io.Reader) error {
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// HashTree returns the content hash "sha256:<hex>" of a file or a folder.
// A file's hash is the SHA-256 of its bytes. A folder's hash is the SHA-256
// of its sorted entries, one line per regular file, "f <relative
// slash path>\x00<file hash>\n", and per symbolic link (not followed),
// "l <relative slash path>\x00<target>\n"; empty folders and other special
// files do not count. memo, when not nil, remembers file hashes.
func HashTree(ctx context.Context, path string, memo *HashMemo) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return "", fmt.Errorf("hash tree: %w", err)
	}
	if fi.Mode().IsRegular() {
		return memo.fileHash(ctx, path, fi)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		// A code input given as a link: hash what it points to.
		if fi, err = os.Stat(path); err != nil {
			return "", fmt.Errorf("hash tree: %w", err)
		}
		if fi.Mode().IsRegular() {
			return memo.fileHash(ctx, path, fi)
		}
		if fi.IsDir() {
			// Walk the folder itself: WalkDir does not follow a link at
			// its root and would hash only the link's text.
			target, err := filepath.EvalSymlinks(path)
			if err != nil {
				return "", fmt.Errorf("hash tree: %w", err)
			}
			return HashTree(ctx, target, memo)
		}
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("hash tree: %s is neither a file nor a folder", path)
	}
	var lines []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(path, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			h, err := memo.fileHash(ctx, p, info)
			if err != nil {
				return err
			}
			lines = append(lines, "f "+rel+"\x00"+h+"\n")
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			lines = append(lines, "l "+rel+"\x00"+target+"\n")
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash tree %s: %w", path, err)
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		io.WriteString(h, l)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
