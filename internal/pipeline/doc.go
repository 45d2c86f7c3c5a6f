// Package pipeline reads pipeline specs (mloop.yaml), plans them as a DAG of
// steps, and computes the content-based cache keys that decide whether a
// step must run again.
//
// The spec is parsed from the YAML AST so that every problem carries its
// file, line and column, and all problems found are reported together before
// anything runs (see ParseSpec). The DAG comes from the references between
// steps (see Spec.Plan). Cache keys hash everything a step's result depends
// on — command, params, allowed environment, the content of its code, data
// and upstream inputs, its image and an engine salt — so a changed file
// behind an unchanged name never hits a stale cache (see CacheKey and
// HashTree).
//
// Executors, which run a step's process, live in this package too
// (executor*.go, local*.go); the runner, tracking of runs and triggers are
// built on top of these pieces.
package pipeline
