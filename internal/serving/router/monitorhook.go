package router

import (
	"strconv"
	"sync"
	"time"

	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/serving/deploy"
)

// obsPool holds the observations handed to Config.Monitor, so that
// observing allocates nothing (an observation passed through an interface
// would otherwise escape to the heap).
var obsPool = sync.Pool{New: func() any { return new(monitor.Observation) }}

// observe hands one answered request to Config.Monitor, unless there is
// none or e is the shadow. features are the revision's input columns;
// out, when not nil, holds perRow outputs per row of batch.
func (r *Router) observe(d *deployment, e *entry, now time.Time, latency time.Duration, id string, status int,
	features []serving.Feature, batch serving.Batch, out []float32, perRow int) {
	mon := r.cfg.Monitor
	if mon == nil || e.role == deploy.RoleShadow {
		return
	}
	if out == nil {
		perRow = 0
	}
	rev := e.rev
	o := obsPool.Get().(*monitor.Observation)
	*o = monitor.Observation{
		Time:          now,
		Deployment:    d.name,
		Revision:      rev.key.revision,
		ModelVersion:  rev.modelVersion,
		Model:         rev.key.model,
		Version:       rev.key.version,
		RequestID:     id,
		Features:      features,
		Inputs:        batch,
		Outputs:       out,
		OutputsPerRow: perRow,
		Objective:     rev.objective,
		Status:        status,
		Latency:       latency,
	}
	mon.Observe(o)
	*o = monitor.Observation{} // drop the references before pooling
	obsPool.Put(o)
}

// procFeatures returns the input columns of a process revision for a batch
// of cols columns: the model's declared features when they fit, else
// columns named input_0, input_1, … (built once per revision and column
// count, then shared).
func (rev *revision) procFeatures(cols int) []serving.Feature {
	if rev.info != nil && len(rev.info.Features) == cols {
		return rev.info.Features
	}
	if f := rev.monFeatures.Load(); f != nil && len(*f) == cols {
		return *f
	}
	f := make([]serving.Feature, cols)
	for i := range f {
		f[i] = serving.Feature{Name: "input_" + strconv.Itoa(i), Type: serving.Numeric}
	}
	rev.monFeatures.Store(&f)
	return f
}
