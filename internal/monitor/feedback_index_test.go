package monitor

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestFeedbackIndexModel tracks, evicts, sweeps and joins predictions of
// one to five outputs at random and checks the index against a plain
// model after every step: which predictions are tracked, their windows and
// outputs (through ring wrap, ring growth and arena growth), the windows'
// counts and indices (freed and reused), and the quality labels give.
func TestFeedbackIndexModel(t *testing.T) {
	type pred struct {
		id  string
		t   int64
		w   *winRef
		out []float32
	}
	for _, maxTracked := range []int{1, 2, 7, 64, 500} {
		t.Run(fmt.Sprint("max=", maxTracked), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(maxTracked), 7))
			mvs := []*mvState{
				{task: Regression, outputs: 1, quality: NewQuality(Regression)},
				{task: Multiclass, outputs: 3, quality: NewQuality(Multiclass)},
				{task: Multiclass, outputs: 5, quality: NewQuality(Multiclass)},
			}
			want := map[*mvState]*Quality{}
			for _, mv := range mvs {
				want[mv] = NewQuality(mv.task)
			}
			var f feedbackIndex
			f.init(maxTracked)
			var model []pred
			var evicted int64
			var windows []*winRef // every window made
			pool := make([]*winRef, 4)
			newWindow := func() *winRef {
				w := &winRef{id: fmt.Sprint("w", len(windows)), mv: mvs[r.IntN(len(mvs))]}
				windows = append(windows, w)
				return w
			}
			for i := range pool {
				pool[i] = newWindow()
			}
			var now int64
			req := 0
			for step := range 3000 {
				switch k := r.IntN(20); {
				case k == 0:
					// A window closes, another opens.
					pool[r.IntN(len(pool))] = newWindow()
				case k == 1:
					// Sweep the oldest few.
					cutoff := now - int64(r.IntN(2*maxTracked+2))
					f.sweep(cutoff)
					for len(model) > 0 && model[0].t < cutoff {
						model = model[1:]
						evicted++
					}
				case k == 2 && len(model) > 0:
					// Label a tracked prediction (class 0 is valid for
					// every task here).
					p := &model[r.IntN(len(model))]
					o := f.join(Label{RequestID: p.id}, time.Unix(0, now), 1<<62)
					switch {
					case p.w == nil && o != outcomeDuplicate:
						t.Fatalf("step %d: label of labelled %s: got outcome %d, want duplicate", step, p.id, o)
					case p.w != nil && o != outcomeAccepted:
						t.Fatalf("step %d: label of %s: got outcome %d, want accepted", step, p.id, o)
					case p.w != nil:
						want[p.w.mv].add(0, p.out, false)
						p.w = nil // labelled
					}
				default:
					w := pool[r.IntN(len(pool))]
					outs := w.mv.outputs
					var seg []reqRec
					var y []float32
					for range 1 + r.IntN(3) {
						now++
						req++
						rows := 1 + r.IntN(3)
						id := fmt.Sprint("q-", req)
						if r.IntN(10) == 0 {
							id = "" // no request id: not tracked
						}
						seg = append(seg, reqRec{t: now, id: id, rows: int32(rows)})
						for i := range rows {
							out := make([]float32, outs)
							for j := range out {
								out[j] = r.Float32()
							}
							y = append(y, out...)
							if id == "" {
								continue
							}
							p := pred{id: id, t: now, w: w, out: out}
							if rows > 1 {
								p.id = fmt.Sprintf("%s#%d", id, i)
							}
							model = append(model, p)
							if len(model) > maxTracked {
								model = model[1:]
								evicted++
							}
						}
					}
					f.track(w, seg, y, outs)
				}
				checkIndex := func() {
					n, ev := f.size()
					if n != len(model) || ev != evicted {
						t.Fatalf("step %d: got %d tracked, %d evicted; want %d and %d", step, n, ev, len(model), evicted)
					}
					tracked := map[*winRef]int{}
					for _, p := range model {
						e := f.lookup(p.id)
						if e == nil {
							t.Fatalf("step %d: %s is not tracked", step, p.id)
						}
						if e.t != p.t || e.labeled != (p.w == nil) {
							t.Fatalf("step %d: %s: got time %d labelled %v, want %d %v", step, p.id, e.t, e.labeled, p.t, p.w == nil)
						}
						w := f.wins[e.win]
						tracked[w]++
						if p.w != nil && w != p.w {
							t.Fatalf("step %d: %s: got window %s, want %s", step, p.id, w.id, p.w.id)
						}
						got := []float32{e.pred}
						if e.outs > 0 {
							got = make([]float32, e.outs)
							f.outs.read(e.off, got)
						}
						if p.w != nil && !slices.Equal(got, p.out) {
							t.Fatalf("step %d: %s: got outputs %v, want %v", step, p.id, got, p.out)
						}
					}
					used := 0
					for _, w := range windows {
						if w.tracked != tracked[w] {
							t.Fatalf("step %d: window %s counts %d predictions, want %d", step, w.id, w.tracked, tracked[w])
						}
						if (w.slot == 0) != (w.tracked == 0) || (w.slot != 0 && f.wins[w.slot-1] != w) {
							t.Fatalf("step %d: window %s with %d predictions has index %d", step, w.id, w.tracked, w.slot)
						}
						if w.slot != 0 {
							used++
						}
					}
					for i, w := range f.wins {
						if (w == nil) != slices.Contains(f.free, int32(i)) || (w != nil && w.slot != int32(i)+1) {
							t.Fatalf("step %d: window index %d holds %v, free %v", step, i, w, f.free)
						}
					}
					if len(f.wins)-len(f.free) != used || len(f.wins) > maxTracked {
						t.Fatalf("step %d: %d window indices, %d free, %d windows tracked (at most %d)", step, len(f.wins), len(f.free), used, maxTracked)
					}
				}
				checkIndex()
			}
			for _, mv := range mvs {
				if !reflect.DeepEqual(mv.quality, want[mv]) {
					t.Fatalf("quality of %d outputs: got %+v, want %+v", mv.outputs, mv.quality, want[mv])
				}
			}
		})
	}
}

// TestFloatRing pushes and pops runs through wrap and growth.
func TestFloatRing(t *testing.T) {
	var r floatRing
	type run struct {
		off int64
		v   []float32
	}
	var live []run
	next := float32(0)
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 20000 {
		if len(live) > 0 && rng.IntN(2) == 0 {
			r.pop(live[0].off, uint32(len(live[0].v)))
			live = live[1:]
		} else {
			v := make([]float32, 2+rng.IntN(30))
			for i := range v {
				next++
				v[i] = next
			}
			live = append(live, run{r.push(v), v})
		}
		for _, l := range live {
			got := make([]float32, len(l.v))
			r.read(l.off, got)
			if !slices.Equal(got, l.v) {
				t.Fatalf("step %d: run at %d: got %v, want %v", step, l.off, got, l.v)
			}
		}
	}
	if len(r.buf) > 4096 {
		t.Fatalf("the buffer grew to %d floats for at most a few hundred live", len(r.buf))
	}
}
