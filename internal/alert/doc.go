// Package alert turns closed monitoring windows into alerts and actions.
//
// A Rule names a deployment (or "*" for all), a Condition on a window
// (dataset drift, one feature's drift, a live quality metric below a bound,
// the error rate or the p99 latency above a bound), how long the condition
// must hold (Windows consecutive windows and, optionally, a duration For),
// a minimum sample size (MinSamples) below which a window neither fires nor
// resolves anything, and Actions: a webhook (JSON, HMAC-SHA256 signed,
// retried with exponential backoff) and a continuous-training trigger (an
// event posted for the pipeline triggers listening to its type).
//
// The Engine evaluates every rule that matches a window
// (monitor.Config.OnWindow calls Engine.OnWindow). Each rule, deployment and
// model version has a state in the Store: ok, then firing once the condition
// held long enough (an Alert is recorded and the actions run), then resolved
// when a window shows the condition cleared. Evaluating the same window twice
// changes nothing, and the trigger action's event carries a dedup key made of
// the rule, the deployment and the window, so an event is never posted twice
// for one window. Actions run in the background from a bounded queue: every
// attempt is recorded as a Delivery, an unreachable webhook is retried and
// then recorded as failed, and Evaluate never waits for a delivery.
package alert
