// Package dataset holds mloop's versioned data: immutable dataset versions
// identified by the SHA-256 of their manifest, with files stored
// content-addressed in the artifact store; streaming readers for CSV, TSV,
// NDJSON and Parquet (gzip and zstd compressed text); profiles computed in
// one pass in bounded memory and mergeable; schemas inferred from a profile,
// edited as YAML and used to validate new data; and drift between two
// datasets, exact from the data or approximate from two stored profiles.
//
// The statistics themselves live in package stats; this package decides
// what to compute for which column and reads the data to feed them.
package dataset
