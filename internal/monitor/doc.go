// Package monitor watches deployments while they serve: per deployment and
// per model version, time windows of mergeable profiles of every input
// feature and of the predictions; drift of each window against the
// reference (by default the training dataset version found in the served
// model's lineage) and of its predictions against the model version's first
// window; data quality against the training schema; ground-truth feedback
// joined by request id to the predictions it labels, giving live quality
// metrics per window and per model version; Prometheus metrics.
//
// # The hot path
//
// The router calls Monitor.Observe for every answered request. Observe never
// blocks on I/O and never waits for window work: it copies the request's
// values into a per-model-version buffer picked among several stripes (each
// with its own lock, chosen by a per-P random number, so concurrent requests
// rarely share one) and, when the buffer holds Config.BufferRows rows, hands
// it to the aggregator over a bounded channel. A full channel drops the
// buffer; its rows and requests are counted (Stats, and the Prometheus
// counter mloop_monitor_dropped_total), never silently lost.
//
// # Background work
//
// One aggregator goroutine adds buffers to the open windows (profiles,
// data-quality counts, latency sketch) and records the predictions that
// feedback may later label; every Config.FlushInterval it also collects
// partly filled buffers and closes windows that are due. A window of a
// deployment closes after Config.Window, or after Config.WindowRequests
// requests, whichever comes first; all the model versions the deployment
// served in it close together, each into its own WindowSummary. A finisher
// goroutine computes drift (which may read the reference from SQL and is
// cached per model version), saves summaries through the Store, and writes
// quality that labels add to windows already saved.
//
// # Feedback
//
// Labels join the predictions by request id through an in-memory index
// bounded by Config.MaxTracked entries (oldest evicted first) and by age
// (entries older than twice Config.Horizon are swept; labels for requests
// older than Horizon are counted late and not joined). An entry costs about
// 100 bytes (a 64-bit hash of the request id as map key and ring slot, 40
// bytes of ring entry, the map's own overhead) plus 4 bytes per class for
// multi-output models: 2,000,000 entries take about 200 MB. Request ids are
// kept as 64-bit hashes (xxhash), so two distinct ids collide with
// probability about n²/2⁶⁵ (10⁻⁷ for two million tracked requests).
//
// Joined pairs update the live quality of the window the prediction fell in
// (and of its model version). A label for a window already saved is merged
// into the saved window's quality by the finisher (Store.MergeWindowQuality),
// so late labels keep stored history right.
package monitor
