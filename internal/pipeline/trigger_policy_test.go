package pipeline

import (
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ev := func(id int64, age time.Duration) *TriggerEvent {
		return &TriggerEvent{ID: id, Source: "event", Subject: "drift", Status: EventPending, CreatedAt: t0.Add(-age)}
	}
	run := func(id string, st RunStatus, age time.Duration, key string) *Run {
		return &Run{ID: id, Status: st, CreatedAt: t0.Add(-age), InputsKey: key}
	}
	one := []*TriggerEvent{ev(1, time.Second)}
	tests := []struct {
		name    string
		trig    Trigger
		pending []*TriggerEvent
		active  []*Run
		cand    *candidate
		want    decisionKind
		reason  string    // substring of the reason, when set
		until   time.Time // exact, when set
		cancel  []string  // run ids to cancel
	}{
		{name: "no events", trig: Trigger{}, want: decideWait},
		{name: "fires", trig: Trigger{MaxConcurrent: 1}, pending: one, want: decideFire},
		{name: "paused waits", trig: Trigger{Paused: true, PauseReason: "by alice"}, pending: one, want: decideWait, reason: "paused: by alice"},
		{name: "paused beats everything", trig: Trigger{Paused: true, Overlap: OverlapSkip, MaxConcurrent: 1}, pending: one,
			active: []*Run{run("pr-a", RunRunning, time.Minute, "k")}, want: decideWait, reason: "paused"},
		{name: "batch window open", trig: Trigger{BatchWindow: time.Minute}, pending: []*TriggerEvent{ev(1, 10*time.Second), ev(2, 40*time.Second)},
			want: decideWait, reason: "batching", until: t0.Add(20 * time.Second)},
		{name: "batch window closed fires all", trig: Trigger{BatchWindow: time.Minute}, pending: []*TriggerEvent{ev(1, 10*time.Second), ev(2, time.Minute)},
			want: decideFire},
		{name: "cooldown", trig: Trigger{Cooldown: time.Hour, LastFired: t0.Add(-10 * time.Minute)}, pending: one,
			want: decideWait, reason: "cooling down", until: t0.Add(50 * time.Minute)},
		{name: "cooldown over", trig: Trigger{Cooldown: time.Hour, LastFired: t0.Add(-time.Hour)}, pending: one, want: decideFire},
		{name: "cooldown never fired", trig: Trigger{Cooldown: time.Hour}, pending: one, want: decideFire},
		{name: "batching before cooldown", trig: Trigger{Cooldown: time.Hour, LastFired: t0.Add(-59 * time.Minute), BatchWindow: 5 * time.Minute},
			pending: one, want: decideWait, reason: "batching", until: t0.Add(5*time.Minute - time.Second)},
		{name: "batch closed then cooldown", trig: Trigger{Cooldown: time.Hour, LastFired: t0.Add(-30 * time.Minute), BatchWindow: time.Minute},
			pending: []*TriggerEvent{ev(1, 2*time.Minute)}, want: decideWait, reason: "cooling down", until: t0.Add(30 * time.Minute)},
		{name: "cooldown before overlap skip", trig: Trigger{Cooldown: time.Hour, LastFired: t0.Add(-time.Minute), Overlap: OverlapSkip, MaxConcurrent: 1},
			pending: one, active: []*Run{run("pr-a", RunRunning, time.Minute, "k")}, want: decideWait, reason: "cooling down"},
		{name: "queue waits", trig: Trigger{MaxConcurrent: 1, Overlap: OverlapQueue}, pending: one,
			active: []*Run{run("pr-a", RunRunning, time.Minute, "k")}, want: decideWait, reason: "1 run already active; queued"},
		{name: "unset overlap queues", trig: Trigger{MaxConcurrent: 1}, pending: one,
			active: []*Run{run("pr-a", RunQueued, time.Minute, "k")}, want: decideWait, reason: "queued"},
		{name: "skip", trig: Trigger{MaxConcurrent: 2, Overlap: OverlapSkip}, pending: one,
			active: []*Run{run("pr-a", RunRunning, time.Minute, "k"), run("pr-b", RunRunning, time.Second, "k")}, want: decideSkip, reason: "2 runs already active"},
		{name: "below max concurrent fires", trig: Trigger{MaxConcurrent: 2, Overlap: OverlapSkip}, pending: one,
			active: []*Run{run("pr-a", RunRunning, time.Minute, "k")}, want: decideFire},
		{name: "max concurrent 0 means 1", trig: Trigger{Overlap: OverlapSkip}, pending: one,
			active: []*Run{run("pr-a", RunRunning, time.Minute, "k")}, want: decideSkip},
		{name: "cancel oldest", trig: Trigger{MaxConcurrent: 2, Overlap: OverlapCancel}, pending: one,
			active: []*Run{run("pr-new", RunRunning, time.Second, "k"), run("pr-old", RunRunning, time.Hour, "k")}, want: decideFire, cancel: []string{"pr-old"}},
		{name: "cancel enough to fit", trig: Trigger{MaxConcurrent: 1, Overlap: OverlapCancel}, pending: one,
			active: []*Run{run("pr-b", RunRunning, time.Minute, "k"), run("pr-a", RunRunning, time.Hour, "k")}, want: decideFire, cancel: []string{"pr-a", "pr-b"}},
		{name: "runs being canceled do not count", trig: Trigger{MaxConcurrent: 1, Overlap: OverlapSkip}, pending: one,
			active: []*Run{{ID: "pr-a", Status: RunRunning, CancelRequested: true}}, want: decideFire},
		{name: "dedup needs the candidate", trig: Trigger{Dedup: true}, pending: one, want: decideBuild},
		{name: "dedup against succeeded", trig: Trigger{Dedup: true}, pending: one,
			cand: &candidate{inputsKey: "k1", succeeded: []*Run{run("pr-x", RunSucceeded, time.Hour, "k0"), run("pr-s", RunSucceeded, time.Hour, "k1")}},
			want: decideDedup, reason: "same inputs as run pr-s"},
		{name: "dedup ignores failed", trig: Trigger{Dedup: true}, pending: one,
			cand: &candidate{inputsKey: "k1", succeeded: []*Run{run("pr-f", RunFailed, time.Hour, "k1")}}, want: decideFire},
		{name: "dedup new inputs fire", trig: Trigger{Dedup: true}, pending: one,
			cand: &candidate{inputsKey: "k2", succeeded: []*Run{run("pr-s", RunSucceeded, time.Hour, "k1")}}, want: decideFire},
		{name: "dedup against active below max", trig: Trigger{Dedup: true, MaxConcurrent: 2}, pending: one,
			active: []*Run{run("pr-a", RunRunning, time.Minute, "k1")}, cand: &candidate{inputsKey: "k1"}, want: decideDedup, reason: "pr-a (still running)"},
		{name: "queue before dedup", trig: Trigger{Dedup: true, MaxConcurrent: 1, Overlap: OverlapQueue}, pending: one,
			active: []*Run{run("pr-a", RunRunning, time.Minute, "k1")}, cand: &candidate{inputsKey: "k1"}, want: decideWait, reason: "queued"},
		{name: "skip before dedup", trig: Trigger{Dedup: true, MaxConcurrent: 1, Overlap: OverlapSkip}, pending: one,
			active: []*Run{run("pr-a", RunRunning, time.Minute, "k1")}, cand: &candidate{inputsKey: "k1"}, want: decideSkip},
		{name: "cancel never cancels an identical run", trig: Trigger{Dedup: true, MaxConcurrent: 1, Overlap: OverlapCancel}, pending: one,
			active: []*Run{run("pr-a", RunRunning, time.Minute, "k1")}, cand: &candidate{inputsKey: "k1"}, want: decideDedup, reason: "pr-a"},
		{name: "cancel with other inputs", trig: Trigger{Dedup: true, MaxConcurrent: 1, Overlap: OverlapCancel}, pending: one,
			active: []*Run{run("pr-a", RunRunning, time.Minute, "k1")}, cand: &candidate{inputsKey: "k2"}, want: decideFire, cancel: []string{"pr-a"}},
		{name: "cancel build keeps the runs to cancel", trig: Trigger{Dedup: true, MaxConcurrent: 1, Overlap: OverlapCancel}, pending: one,
			active: []*Run{run("pr-a", RunRunning, time.Minute, "k1")}, want: decideBuild, cancel: []string{"pr-a"}},
		{name: "batching cooldown queue dedup all clear", trig: Trigger{Dedup: true, Cooldown: time.Minute, LastFired: t0.Add(-time.Hour), BatchWindow: time.Minute,
			MaxConcurrent: 1, Overlap: OverlapQueue}, pending: []*TriggerEvent{ev(1, 2*time.Minute), ev(2, time.Second)},
			cand: &candidate{inputsKey: "k3", succeeded: []*Run{run("pr-s", RunSucceeded, time.Hour, "k1")}}, want: decideFire},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.trig.Name = "tr"
			got := decide(&tt.trig, tt.pending, tt.active, tt.cand, t0)
			if got.kind != tt.want {
				t.Fatalf("decide = %s (%q), want %s", got.kind, got.reason, tt.want)
			}
			if !strings.Contains(got.reason, tt.reason) {
				t.Errorf("reason = %q, want it to contain %q", got.reason, tt.reason)
			}
			if !tt.until.IsZero() && !got.until.Equal(tt.until) {
				t.Errorf("until = %s, want %s", got.until, tt.until)
			}
			var ids []string
			for _, r := range got.cancel {
				ids = append(ids, r.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.cancel, ",") {
				t.Errorf("cancel = %v, want %v", ids, tt.cancel)
			}
		})
	}
}

func TestCauseOf(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		trig    Trigger
		pending []*TriggerEvent
		want    string
	}{
		{Trigger{Name: "d", Kind: OnDataset}, []*TriggerEvent{
			{ID: 2, Source: "dataset", Subject: "flights@8", CreatedAt: t0.Add(time.Second)},
			{ID: 1, Source: "dataset", Subject: "flights@7", CreatedAt: t0},
			{ID: 3, Source: "dataset", Subject: "flights@9", CreatedAt: t0.Add(2 * time.Second)},
		}, "new dataset version flights@7 (+2 more) (trigger d)"},
		{Trigger{Name: "c", Kind: OnSchedule, Cron: "@hourly"}, []*TriggerEvent{{Source: "cron", Subject: "2026-11-26T12:00:00Z"}},
			"schedule 2026-11-26T12:00:00Z (cron @hourly) (trigger c)"},
		{Trigger{Name: "e", Kind: OnEvent, Event: "drift"}, []*TriggerEvent{{Source: "event", Subject: "monitoring"}}, "event drift from monitoring (trigger e)"},
		{Trigger{Name: "e", Kind: OnEvent, Event: "drift"}, []*TriggerEvent{{Source: "event", Subject: "drift"}}, "event drift (trigger e)"},
		{Trigger{Name: "m", Kind: OnManual}, []*TriggerEvent{{Source: "manual", Subject: "alice"}}, "manual fire by alice (trigger m)"},
		{Trigger{Name: "m", Kind: OnManual}, []*TriggerEvent{{Source: "manual"}}, "manual fire (trigger m)"},
	}
	for _, tt := range tests {
		if got := causeOf(&tt.trig, tt.pending); got != tt.want {
			t.Errorf("causeOf = %q, want %q", got, tt.want)
		}
	}
}
