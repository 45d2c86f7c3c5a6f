// Package pipeline runs continuous-training pipelines: it reads pipeline
// specs (mloop.yaml), plans them as a DAG of steps, runs them with
// content-based caching, tracks every run as MLflow runs, records lineage,
// and starts runs from triggers within guardrails.
//
// The spec is parsed from the YAML AST so that every problem carries its
// file, line and column, and all problems found are reported together before
// anything runs (spec.go, ParseSpec). The DAG comes from the references
// between steps (plan.go). Cache keys hash everything a step's result
// depends on — command, params, allowed environment, the content of its
// code, data and upstream inputs, its declared outputs, its image and an
// engine salt — so a changed file behind an unchanged name never hits a
// stale cache (cachekey.go).
//
// Service is the control loop. Runs, steps, the cache, lineage edges,
// triggers and their events live in a Store (run.go, trigger.go; sqlstore
// implements it, storetest checks implementations), so a kill -9 at any
// moment followed by a restart resumes or cleanly fails the work in flight.
// Of the servers sharing a database, the one holding a lease runs the
// controllers (leader.go): the runner (runner.go: claiming and recovering
// runs; run_exec.go: one run; step_exec.go: one step; workspace.go: the
// work folder) and the trigger controller (trigger_controller.go, with the
// pure guardrail decision in trigger_policy.go). Steps run through an
// Executor (executor.go; the local one in local*.go; conformance suite in
// executortest) or, for `uses:`, in-process as a Builtin (builtin_*.go:
// validate, gate, register, train/gbdt).
package pipeline
