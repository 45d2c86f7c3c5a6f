// Package artifact stores artifacts (files of runs, models, datasets) in a
// blob bucket through gocloud.dev/blob: a local folder or any S3-compatible store.
package artifact

// Store is an artifact store.
type Store struct{}
