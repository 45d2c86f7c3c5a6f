// Package client is a Go client for mloop's own HTTP API, /api/v1: dataset
// blobs and versions (docs/datasets-api.md), and pipeline runs, their logs,
// triggers, events and lineage (docs/pipelines-api.md). Every mloop command
// other than `mloop server` talks to the server through it.
//
// Errors the server answers come back as *mloop.Error with the kind the
// server meant (ENOTFOUND for RESOURCE_DOES_NOT_EXIST, and so on), so callers
// test them with mloop.ErrorCode and mloop.IsNotFound exactly as they would
// on the server side. A server that cannot be reached is an EUNAVAILABLE
// error naming the address; a cancelled context is returned as the context's
// error, wrapped, so errors.Is(err, context.Canceled) holds.
//
// Besides the one-call-per-endpoint methods, the package holds the client
// side of the dataset protocol: Push uploads only the blobs the server lacks
// and then commits the version, Pull downloads a version's files atomically,
// and BlobCache keeps verified copies of blobs for commands that need the
// bytes of a version locally (validation, drift).
package client
