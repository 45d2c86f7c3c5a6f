package dataset

import (
	"context"
	"errors"
	"fmt"
	"github.com/mloop/mloop/internal/artifact"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mloop/mloop"
)

// Limits on what a version may record.
const (
	// MaxFiles is the most files one version may have.
	MaxFiles = 100_000
	// MaxPathLength is the longest file path inside a version, in bytes.
	MaxPathLength = 1024
	// MaxTags is the most tags one version may have.
	MaxTags = 100
	// MaxTagKeyLength and MaxTagValueLength bound a tag, as MLflow's.
	MaxTagKeyLength   = 250
	MaxTagValueLength = 5000
	// MaxSourceLength bounds Version.Source and MaxUserLength Version.User.
	MaxSourceLength = 4096
	MaxUserLength   = 256
	// DefaultListVersions and MaxListVersions are the default and largest
	// page sizes of ListVersions.
	DefaultListVersions = 1000
	MaxListVersions     = 10000
	// DefaultGCGrace is how old an unreferenced blob must be before GC
	// deletes it, unless told otherwise.
	DefaultGCGrace = 24 * time.Hour
)

// Store persists dataset versions and schemas; sqlstore implements it and
// runs its conformance suite on SQLite and PostgreSQL. Methods return
// *mloop.Error values for what clients can fix (ENOTFOUND for an unknown
// dataset or version) and wrapped driver errors otherwise. Each method is
// one transaction.
type Store interface {
	// CreateVersion stores v as the next version of dataset v.Dataset,
	// creating the dataset on its first version, and returns it numbered,
	// with created true. When the dataset already has a version with
	// v.Digest, nothing is written and that version is returned (with its
	// profile) with created false. Concurrent calls get distinct,
	// consecutive numbers, and concurrent calls with one digest create one
	// version. The dataset, version and file rows are written in one
	// transaction: all of them or none.
	CreateVersion(ctx context.Context, v *Version) (stored *Version, created bool, err error)
	// GetVersion returns version number of dataset name, with its files and,
	// when withProfile is set, its profile (ENOTFOUND when either is unknown).
	GetVersion(ctx context.Context, name string, number int64, withProfile bool) (*Version, error)
	// LatestVersion returns the number of the newest version of dataset
	// name (ENOTFOUND when the dataset does not exist).
	LatestVersion(ctx context.Context, name string) (int64, error)
	// FindDigestPrefix returns up to limit versions of dataset name whose
	// digest starts with "sha256:"+hexPrefix, by version number.
	FindDigestPrefix(ctx context.Context, name, hexPrefix string, limit int) ([]DigestMatch, error)
	// ListVersions returns up to limit versions of dataset name numbered
	// below before (all when before is 0), newest first, with their files
	// and without profiles (ENOTFOUND when the dataset does not exist).
	ListVersions(ctx context.Context, name string, before int64, limit int) ([]*Version, error)
	// ListDatasets returns every dataset that has a version, by name.
	ListDatasets(ctx context.Context) ([]Summary, error)
	// SetSchema stores schema (YAML text) as the schema of dataset name at
	// time now, replacing any (ENOTFOUND when the dataset does not exist).
	SetSchema(ctx context.Context, name, schema string, now time.Time) error
	// GetSchema returns the schema of dataset name (ENOTFOUND when the
	// dataset does not exist or has no schema).
	GetSchema(ctx context.Context, name string) (string, error)
	// ReferencedBlobs returns which of the blob digests hexes some version
	// has as a file.
	ReferencedBlobs(ctx context.Context, hexes []string) (map[string]bool, error)
}

// DigestMatch is a version whose digest starts with a prefix.
type DigestMatch struct {
	Version int64
	Digest  string
}

// Summary describes a dataset as the list of datasets shows it.
type Summary struct {
	Name          string    `json:"name"`
	LatestVersion int64     `json:"latest_version"`
	Versions      int64     `json:"versions"`
	Rows          int64     `json:"rows"` // of the latest version
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"` // when the latest version was created
}

// LineageRun is an MLflow run that logged, as a dataset input, a dataset
// whose digest is a version's (see Service.VersionRuns).
type LineageRun struct {
	RunID        string `json:"run_id"`
	ExperimentID string `json:"experiment_id"`
	RunName      string `json:"run_name"`
	Status       string `json:"status,omitempty"`
	StartTime    int64  `json:"start_time,omitempty"` // milliseconds since the epoch
	// DatasetName is the name the run logged the dataset under.
	DatasetName string `json:"dataset_name"`
	// Context is the input's mlflow.data.context tag (training, eval, …).
	Context string `json:"context"`
}

// Lineage finds the MLflow runs that logged a dataset input with a given
// digest. sqlstore's tracking store satisfies it.
type Lineage interface {
	// RunsWithDatasetDigest returns the live runs having a dataset input
	// whose digest is exactly one of digests, one entry per (run, input),
	// newest run first.
	RunsWithDatasetDigest(ctx context.Context, digests []string) ([]LineageRun, error)
}

// ProfileFileFunc profiles one data file of a version, stored at the local
// path localPath, as described by f (format, compression); name is how
// errors name it.
type ProfileFileFunc func(ctx context.Context, name, localPath string, f File, opts ProfileOptions) (*Profile, error)

// Service applies the rules of dataset versions on top of a Store and the
// blobs of an artifact store: names, references, manifests, deduplication by
// digest, profiling when the client sent no profile, schemas, lineage and the
// collection of unreferenced blobs.
type Service struct {
	// Store persists versions.
	Store Store
	// Blobs holds the versions' files.
	Blobs *Blobs
	// Lineage links versions to MLflow runs; nil answers no runs.
	Lineage Lineage
	// ProfileFile profiles a file when a push brings no profile; nil makes
	// such pushes fail with ENOTIMPLEMENTED.
	ProfileFile ProfileFileFunc
	// ProfileOptions tune server-side profiling.
	ProfileOptions ProfileOptions
	// TempDir is where blobs are copied to be profiled; "" means os.TempDir().
	TempDir string
	// Now returns the current time; it defaults to time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	// gcMu keeps GC from deleting a blob between CreateVersion's check that
	// the blob exists and its commit: CreateVersion holds it shared, GC
	// exclusively while it re-checks and deletes a blob. It covers pushes
	// through this process; with several servers on one database, run GC
	// through one of them while pushes are quiet (see docs/datasets-api.md).
	gcMu sync.RWMutex
}

// NewService returns a Service on store and blobs that finds lineage with
// lineage (nil for none) and profiles files without a client profile with
// ProfileLocalFile.
func NewService(store Store, blobs *Blobs, lineage Lineage) *Service {
	return &Service{Store: store, Blobs: blobs, Lineage: lineage, ProfileFile: ProfileLocalFile,
		Now: time.Now, Logger: slog.Default()}
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// CreateRequest is what a push sends to create a version: the files, whose
// blobs must already be stored, and optionally the profile the client
// computed while hashing them, where the files came from, who pushed them
// and the version's tags.
type CreateRequest struct {
	Files   []File            `json:"files"`
	Profile *Profile          `json:"profile,omitempty"`
	Source  string            `json:"source,omitempty"`
	User    string            `json:"user,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
}

// CreateVersion creates a version of dataset name from req. It checks the
// files (relative clean paths without duplicates, known formats, each blob
// stored with the stated size) and computes the manifest digest. When the
// dataset already has a version with that digest, it returns it and created
// is false; otherwise it stores a new version, numbered one after the
// latest, and created is true. Without req.Profile the service profiles the
// blobs itself. Nothing is stored unless everything succeeds.
func (s *Service) CreateVersion(ctx context.Context, name string, req CreateRequest) (v *Version, created bool, err error) {
	if err := ValidateName(name); err != nil {
		return nil, false, err
	}
	files, err := checkFiles(req.Files)
	if err != nil {
		return nil, false, err
	}
	if err := checkMeta(req); err != nil {
		return nil, false, err
	}
	digest := ManifestDigest(files)
	// An identical push finds its version without touching blobs or profiles.
	if m, err := s.Store.FindDigestPrefix(ctx, name, strings.TrimPrefix(digest, "sha256:"), 1); err != nil {
		return nil, false, err
	} else if len(m) == 1 {
		v, err := s.Store.GetVersion(ctx, name, m[0].Version, true)
		return v, false, err
	}
	hexes := make([]string, len(files))
	for i, f := range files {
		hexes[i] = f.SHA256
	}
	// From the blob check to the commit, GC must not delete these blobs.
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	sizes, err := s.Blobs.Sizes(ctx, hexes)
	if err != nil {
		return nil, false, fmt.Errorf("check the blobs of dataset %q: %w", name, err)
	}
	var bytes int64
	for _, f := range files {
		size, ok := sizes[f.SHA256]
		if !ok {
			return nil, false, mloop.Errorf(mloop.EINVALID, "File %q: no blob sha256:%s is stored on the server: upload it first (PUT /api/v1/blobs/sha256/%s).", f.Path, f.SHA256, f.SHA256)
		}
		if size != f.Size {
			return nil, false, mloop.Errorf(mloop.EINVALID, "File %q: its size is given as %d bytes but blob sha256:%s holds %d.", f.Path, f.Size, f.SHA256, size)
		}
		bytes += size
	}
	profile := req.Profile
	if profile == nil {
		if profile, err = s.profile(ctx, name, files); err != nil {
			return nil, false, err
		}
	}
	var fileRows int64
	for _, f := range files {
		fileRows += f.Rows
	}
	if fileRows != 0 && fileRows != profile.Rows {
		return nil, false, mloop.Errorf(mloop.EINVALID, "The files' row counts add up to %d but the profile counts %d rows.", fileRows, profile.Rows)
	}
	if err := profile.Check(); err != nil {
		return nil, false, mloop.Errorf(mloop.EINVALID, "The version's profile is inconsistent: %v.", err)
	}
	v = &Version{
		Dataset:   name,
		Digest:    digest,
		Rows:      profile.Rows,
		Bytes:     bytes,
		Files:     files,
		Profile:   profile,
		Source:    req.Source,
		User:      req.User,
		Tags:      req.Tags,
		CreatedAt: s.now().UTC().Truncate(time.Millisecond),
	}
	stored, created, err := s.Store.CreateVersion(ctx, v)
	if err != nil {
		return nil, false, err
	}
	if created {
		s.logger().Info("dataset version created", "dataset", name, "version", stored.Version,
			"digest", digest, "files", len(files), "rows", stored.Rows, "bytes", bytes)
	}
	return stored, created, nil
}

// checkFiles validates a version's files and returns them sorted by path.
func checkFiles(files []File) ([]File, error) {
	if len(files) == 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "A version needs at least one file: 'files' is empty.")
	}
	if len(files) > MaxFiles {
		return nil, mloop.Errorf(mloop.EINVALID, "A version may have at most %d files, not %d.", MaxFiles, len(files))
	}
	out := make([]File, len(files))
	copy(out, files)
	seen := make(map[string]bool, len(out))
	for i := range out {
		f := &out[i]
		if err := checkFilePath(f.Path); err != nil {
			return nil, err
		}
		if seen[f.Path] {
			return nil, mloop.Errorf(mloop.EINVALID, "File %q is listed twice.", f.Path)
		}
		seen[f.Path] = true
		if err := ValidBlobDigest(f.SHA256); err != nil {
			return nil, mloop.Errorf(mloop.EINVALID, "File %q: %s", f.Path, mloop.ErrorMessage(err))
		}
		if f.Size < 0 || f.Rows < 0 {
			return nil, mloop.Errorf(mloop.EINVALID, "File %q: size and rows must not be negative.", f.Path)
		}
		switch f.Format {
		case FormatCSV, FormatTSV, FormatNDJSON, FormatParquet:
		default:
			return nil, mloop.Errorf(mloop.EINVALID, "File %q: unknown format %q; want csv, tsv, ndjson or parquet.", f.Path, f.Format)
		}
		switch f.Compression {
		case CompressionNone:
		case CompressionGzip, CompressionZstd:
			if f.Format == FormatParquet {
				return nil, mloop.Errorf(mloop.EINVALID, "File %q: a Parquet file is not compressed as a whole (compression %q).", f.Path, f.Compression)
			}
		default:
			return nil, mloop.Errorf(mloop.EINVALID, "File %q: unknown compression %q; want none (\"\"), gzip or zstd.", f.Path, f.Compression)
		}
	}
	sortFiles(out)
	// A path that is also another's folder ("a" and "a/b") cannot be pulled.
	for _, f := range out {
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			if seen[dir] {
				return nil, mloop.Errorf(mloop.EINVALID, "File %q is inside %q, which is a file of the same version.", f.Path, dir)
			}
		}
	}
	return out, nil
}

// checkFilePath validates a file's path inside a version: relative, clean,
// slash-separated, valid UTF-8 without control characters.
func checkFilePath(p string) error {
	switch {
	case p == "":
		return mloop.Errorf(mloop.EINVALID, "A file has an empty path.")
	case len(p) > MaxPathLength:
		return mloop.Errorf(mloop.EINVALID, "File path %q… is longer than %d bytes.", p[:64], MaxPathLength)
	case !utf8.ValidString(p):
		return mloop.Errorf(mloop.EINVALID, "File path %q is not valid UTF-8.", p)
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }):
		return mloop.Errorf(mloop.EINVALID, "File path %q holds a control character or a backslash: paths are '/'-separated.", p)
	case strings.HasPrefix(p, "/"):
		return mloop.Errorf(mloop.EINVALID, "File path %q is absolute: paths are relative to the version's root.", p)
	case path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../"):
		return mloop.Errorf(mloop.EINVALID, "File path %q is not a clean relative path (no '.', '..' or empty segments, no trailing '/').", p)
	}
	return nil
}

// checkMeta validates a push's source, user and tags.
func checkMeta(req CreateRequest) error {
	if len(req.Source) > MaxSourceLength || !utf8.ValidString(req.Source) {
		return mloop.Errorf(mloop.EINVALID, "The source must be valid UTF-8 of at most %d bytes.", MaxSourceLength)
	}
	if len(req.User) > MaxUserLength || !utf8.ValidString(req.User) {
		return mloop.Errorf(mloop.EINVALID, "The user must be valid UTF-8 of at most %d bytes.", MaxUserLength)
	}
	if len(req.Tags) > MaxTags {
		return mloop.Errorf(mloop.EINVALID, "A version may have at most %d tags, not %d.", MaxTags, len(req.Tags))
	}
	for k, v := range req.Tags {
		switch {
		case k == "" || len(k) > MaxTagKeyLength || !utf8.ValidString(k):
			return mloop.Errorf(mloop.EINVALID, "Invalid tag key %q: a key is valid UTF-8 of 1 to %d bytes.", k, MaxTagKeyLength)
		case len(v) > MaxTagValueLength || !utf8.ValidString(v):
			return mloop.Errorf(mloop.EINVALID, "Invalid value of tag %q: a value is valid UTF-8 of at most %d bytes.", k, MaxTagValueLength)
		}
	}
	return nil
}

// GetVersion returns the version ref names, with its profile when
// withProfile is set. An unknown dataset or version is an mloop.ENOTFOUND
// error saying which versions exist; an ambiguous digest prefix is an
// mloop.EINVALID error listing the candidates.
func (s *Service) GetVersion(ctx context.Context, ref Ref, withProfile bool) (*Version, error) {
	n, err := s.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	return s.Store.GetVersion(ctx, ref.Name, n, withProfile)
}

// Resolve returns the number of the version ref names.
func (s *Service) Resolve(ctx context.Context, ref Ref) (int64, error) {
	if err := ValidateName(ref.Name); err != nil {
		return 0, err
	}
	latest, err := s.Store.LatestVersion(ctx, ref.Name)
	if mloop.IsNotFound(err) {
		return 0, mloop.Errorf(mloop.ENOTFOUND, "Dataset %q does not exist. GET /api/v1/datasets (mloop data list) lists the datasets.", ref.Name)
	} else if err != nil {
		return 0, err
	}
	switch {
	case ref.Version > 0:
		if ref.Version > latest {
			return 0, mloop.Errorf(mloop.ENOTFOUND, "Dataset %q has no version %d: its versions are 1 to %d. GET /api/v1/datasets/%s/versions lists them.", ref.Name, ref.Version, latest, ref.Name)
		}
		return ref.Version, nil
	case ref.DigestPrefix != "":
		ms, err := s.Store.FindDigestPrefix(ctx, ref.Name, ref.DigestPrefix, 10)
		if err != nil {
			return 0, err
		}
		switch len(ms) {
		case 0:
			return 0, mloop.Errorf(mloop.ENOTFOUND, "Dataset %q has no version whose digest starts with sha256:%s (its versions are 1 to %d). GET /api/v1/datasets/%s/versions lists them with their digests.", ref.Name, ref.DigestPrefix, latest, ref.Name)
		case 1:
			return ms[0].Version, nil
		}
		cands := make([]string, len(ms))
		for i, m := range ms {
			cands[i] = fmt.Sprintf("%s@%d (%s)", ref.Name, m.Version, m.Digest)
		}
		more := ""
		if len(ms) == 10 {
			more = " and maybe more"
		}
		return 0, mloop.Errorf(mloop.EINVALID, "Digest prefix sha256:%s is ambiguous in dataset %q: it matches %s%s. Give more digits.", ref.DigestPrefix, ref.Name, strings.Join(cands, ", "), more)
	}
	return latest, nil
}

// ListVersions returns a page of the versions of dataset name, newest first
// and without profiles, and the token of the next page ("" on the last).
// maxResults 0 means DefaultListVersions.
func (s *Service) ListVersions(ctx context.Context, name string, maxResults int, pageToken string) ([]*Version, string, error) {
	if err := ValidateName(name); err != nil {
		return nil, "", err
	}
	if maxResults == 0 {
		maxResults = DefaultListVersions
	}
	if maxResults < 0 || maxResults > MaxListVersions {
		return nil, "", mloop.Errorf(mloop.EINVALID, "Invalid max_results %d: it must be between 1 and %d.", maxResults, MaxListVersions)
	}
	var before int64
	if pageToken != "" {
		n, err := strconv.ParseInt(pageToken, 10, 64)
		if err != nil || n < 1 {
			return nil, "", mloop.Errorf(mloop.EINVALID, "Invalid page_token %q: pass the next_page_token of the previous page.", pageToken)
		}
		before = n
	}
	vs, err := s.Store.ListVersions(ctx, name, before, maxResults+1)
	if mloop.IsNotFound(err) {
		return nil, "", mloop.Errorf(mloop.ENOTFOUND, "Dataset %q does not exist. GET /api/v1/datasets (mloop data list) lists the datasets.", name)
	} else if err != nil {
		return nil, "", err
	}
	next := ""
	if len(vs) > maxResults {
		vs = vs[:maxResults]
		next = strconv.FormatInt(vs[maxResults-1].Version, 10)
	}
	return vs, next, nil
}

// ListDatasets returns every dataset that has a version, by name.
func (s *Service) ListDatasets(ctx context.Context) ([]Summary, error) {
	return s.Store.ListDatasets(ctx)
}

// SetSchema stores the YAML text schema as the schema of dataset name, as
// given, after checking it with ParseSchema.
func (s *Service) SetSchema(ctx context.Context, name string, schema []byte) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if len(strings.TrimSpace(string(schema))) == 0 {
		return mloop.Errorf(mloop.EINVALID, "The schema of dataset %q is empty.", name)
	}
	if !utf8.Valid(schema) {
		return mloop.Errorf(mloop.EINVALID, "The schema of dataset %q is not valid UTF-8 text.", name)
	}
	if _, err := ParseSchema(schema); err != nil {
		return mloop.Errorf(mloop.EINVALID, "Invalid schema for dataset %q: %v.", name, err)
	}
	err := s.Store.SetSchema(ctx, name, string(schema), s.now().UTC())
	if mloop.IsNotFound(err) {
		return mloop.Errorf(mloop.ENOTFOUND, "Dataset %q does not exist: push a version before setting its schema.", name)
	}
	return err
}

// GetSchema returns the schema stored for dataset name, as YAML text.
func (s *Service) GetSchema(ctx context.Context, name string) ([]byte, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	text, err := s.Store.GetSchema(ctx, name)
	if err != nil {
		return nil, err
	}
	return []byte(text), nil
}

// MinLineageDigest is the fewest hex digits of a version's digest that an
// MLflow dataset input's digest must hold to link to the version: MLflow's
// clients commonly log short digests.
const MinLineageDigest = 8

// VersionRuns returns the MLflow runs that logged, as a dataset input, a
// dataset whose digest is the version's (see LineageDigests): its hex or a
// prefix of it of at least MinLineageDigest digits, alone or after "sha256:".
func (s *Service) VersionRuns(ctx context.Context, ref Ref) ([]LineageRun, error) {
	n, err := s.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	v, err := s.Store.GetVersion(ctx, ref.Name, n, false)
	if err != nil {
		return nil, err
	}
	out := []LineageRun{}
	if s.Lineage == nil {
		return out, nil
	}
	runs, err := s.Lineage.RunsWithDatasetDigest(ctx, LineageDigests(v.Digest))
	if err != nil {
		return nil, fmt.Errorf("runs of %s: %w", v.Ref(), err)
	}
	return append(out, runs...), nil
}

// LineageDigests returns the MLflow dataset digests that link to a version
// with digest ("sha256:<hex>"): every prefix of the hex of at least
// MinLineageDigest digits, the whole hex included, alone or after
// "sha256:". MLflow stores at most 36 characters of a digest, so clients
// log a prefix: hex[:36] keeps the most.
func LineageDigests(digest string) []string {
	hex := strings.TrimPrefix(digest, "sha256:")
	var out []string
	for k := len(hex); k >= MinLineageDigest; k-- {
		out = append(out, hex[:k], "sha256:"+hex[:k])
	}
	return out
}

// GCResult reports what a collection of unreferenced blobs did.
type GCResult struct {
	// Scanned counts the blobs found.
	Scanned int `json:"scanned"`
	// Referenced counts the blobs some version has as a file.
	Referenced int `json:"referenced"`
	// Recent counts the unreferenced blobs kept because they are younger
	// than the grace period (a push may be about to reference them).
	Recent int `json:"recent"`
	// Deleted lists the digests of the deleted blobs.
	Deleted []string `json:"deleted"`
	// DeletedBytes is the total size of the deleted blobs.
	DeletedBytes int64 `json:"deleted_bytes"`
}

// GC deletes the blobs that no version references and that were written at
// least olderThan ago. Blobs are written before the version that references
// them is committed, so olderThan must exceed the longest push: a younger
// unreferenced blob may belong to a push in flight. Each blob is checked
// again just before it is deleted.
func (s *Service) GC(ctx context.Context, olderThan time.Duration) (GCResult, error) {
	res := GCResult{Deleted: []string{}}
	if olderThan < 0 {
		return res, mloop.Errorf(mloop.EINVALID, "The grace period of a blob collection must not be negative, not %s.", olderThan)
	}
	type blob struct {
		hex  string
		size int64
	}
	var all []blob
	if err := s.Blobs.Walk(ctx, func(hex string, size int64) error {
		all = append(all, blob{hex, size})
		return nil
	}); err != nil {
		return res, err
	}
	res.Scanned = len(all)
	cutoff := s.now().Add(-olderThan)
	const chunk = 1000
	for lo := 0; lo < len(all); lo += chunk {
		part := all[lo:min(lo+chunk, len(all))]
		hexes := make([]string, len(part))
		for i, b := range part {
			hexes[i] = b.hex
		}
		refs, err := s.Store.ReferencedBlobs(ctx, hexes)
		if err != nil {
			return res, fmt.Errorf("collect blobs: %w", err)
		}
		for _, b := range part {
			if refs[b.hex] {
				res.Referenced++
				continue
			}
			mod, err := s.Blobs.modTime(ctx, b.hex)
			if mloop.IsNotFound(err) {
				continue // deleted meanwhile
			} else if err != nil {
				return res, fmt.Errorf("collect blobs: %w", err)
			}
			if mod.After(cutoff) {
				res.Recent++
				continue
			}
			// A version committed since the batch check may reference it
			// now; a push between its blob check and its commit holds gcMu.
			deleted, err := s.deleteIfUnreferenced(ctx, b.hex)
			if err != nil {
				return res, fmt.Errorf("collect blobs: %w", err)
			}
			if !deleted {
				res.Referenced++
				continue
			}
			res.Deleted = append(res.Deleted, b.hex)
			res.DeletedBytes += b.size
		}
	}
	if len(res.Deleted) > 0 {
		s.logger().Info("dataset blobs collected", "deleted", len(res.Deleted), "bytes", res.DeletedBytes,
			"referenced", res.Referenced, "recent", res.Recent)
	}
	return res, nil
}

// deleteIfUnreferenced deletes blob hex unless a version references it,
// excluding CreateVersion's check-to-commit window.
func (s *Service) deleteIfUnreferenced(ctx context.Context, hex string) (bool, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	refs, err := s.Store.ReferencedBlobs(ctx, []string{hex})
	if err != nil {
		return false, err
	}
	if refs[hex] {
		return false, nil
	}
	if err := s.Blobs.Delete(ctx, hex); err != nil && !mloop.IsNotFound(err) {
		return false, err
	}
	return true, nil
}

// sortFiles sorts files by path, the manifest's order.
func sortFiles(files []File) {
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
}

// profile profiles the blobs of files when a push brings no profile: each
// blob is copied from the artifact store to a temporary file, profiled, and
// the profiles are merged. Each file's Rows is set from its profile.
func (s *Service) profile(ctx context.Context, name string, files []File) (*Profile, error) {
	if s.ProfileFile == nil {
		return nil, mloop.Errorf(mloop.ENOTIMPLEMENTED, "This server does not profile data: push the version with its profile.")
	}
	var total *Profile
	for i := range files {
		f := &files[i]
		p, err := s.profileBlob(ctx, name, *f)
		if err != nil {
			return nil, err
		}
		f.Rows = p.Rows
		if total == nil {
			total = p
		} else if err := total.Merge(p); err != nil {
			return nil, mloop.Errorf(mloop.EINVALID, "File %q does not fit the files before it: %v.", f.Path, err)
		}
	}
	return total, nil
}

// profileBlob copies the blob of f to a temporary file and profiles it.
func (s *Service) profileBlob(ctx context.Context, name string, f File) (*Profile, error) {
	obj, err := s.Blobs.Open(ctx, f.SHA256)
	if err != nil {
		return nil, fmt.Errorf("profile file %q: %w", f.Path, err)
	}
	defer obj.Close()
	tmp, err := os.CreateTemp(s.TempDir, "mloop-profile-*"+path.Ext(f.Path))
	if err != nil {
		return nil, fmt.Errorf("profile file %q: %w", f.Path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, obj)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("profile file %q: copy blob %s: %w", f.Path, f.SHA256, err)
	}
	p, err := s.ProfileFile(ctx, name+"/"+f.Path, tmp.Name(), f, s.ProfileOptions)
	if err != nil {
		var ie *InputError
		if errors.As(err, &ie) {
			return nil, mloop.Errorf(mloop.EINVALID, "%v", ie)
		}
		return nil, fmt.Errorf("profile file %q: %w", f.Path, err)
	}
	return p, nil
}

// ProfileLocalFile is the default ProfileFileFunc: it reads the file at
// localPath with the reader of f's format and compression and profiles it.
func ProfileLocalFile(ctx context.Context, name, localPath string, f File, opts ProfileOptions) (*Profile, error) {
	r, err := OpenFile(ctx, localPath, ReadOptions{Format: f.Format, Compression: f.Compression, Name: name})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return ProfileReader(ctx, name, r, opts)
}

// OpenFile opens the bytes of a version's file by its SHA-256 (lower-case
// hex); ENOTFOUND when the store has no such blob.
func (s *Service) OpenFile(ctx context.Context, sha256 string) (*artifact.Object, error) {
	return s.Blobs.Open(ctx, sha256)
}
