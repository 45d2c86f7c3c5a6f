package pipeline

import (
	"testing"
	"time"

	"github.com/mloop/mloop"
)

func TestParseSchedule(t *testing.T) {
	at := time.Date(2026, 3, 28, 23, 30, 0, 0, time.UTC) // a Saturday
	tests := []struct {
		expr, tz string
		from     time.Time
		want     time.Time
	}{
		{"0 * * * *", "", at, time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)},
		{"@hourly", "", at, time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)},
		{"@daily", "", at, time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)},
		{"*/15 * * * *", "", at, time.Date(2026, 3, 28, 23, 45, 0, 0, time.UTC)},
		{"0 3 * * 1", "", at, time.Date(2026, 3, 30, 3, 0, 0, 0, time.UTC)},
		{"@every 10m", "", at, at.Add(10 * time.Minute)},
		// 03:00 in Paris on the day the clocks go forward (UTC+2 then).
		{"0 3 * * *", "Europe/Paris", at, time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)},
		// Strictly after: a time on the schedule gives the next one.
		{"0 0 * * *", "", time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 30, 0, 0, 0, 0, time.UTC)},
		{"0 0 30 2 *", "", at, time.Time{}},
	}
	for _, tt := range tests {
		s, err := parseSchedule(tt.expr, tt.tz)
		if err != nil {
			t.Errorf("parseSchedule(%q, %q): %v", tt.expr, tt.tz, err)
			continue
		}
		if got := s.next(tt.from); !got.Equal(tt.want) {
			t.Errorf("parseSchedule(%q, %q).next(%s) = %s, want %s", tt.expr, tt.tz, tt.from, got, tt.want)
		}
	}
}

func TestParseScheduleErrors(t *testing.T) {
	for _, tt := range []struct{ expr, tz string }{
		{"", ""},
		{"* * * *", ""},
		{"* * * * * *", ""},
		{"61 * * * *", ""},
		{"@fortnightly", ""},
		{"@every 10ms", ""},
		{"@every nope", ""},
		{"TZ=UTC 0 * * * *", ""},
		{"CRON_TZ=UTC 0 * * * *", ""},
		{"0 * * * *", "Mars/Olympus"},
		{"0 * * * *", "Local"},
	} {
		_, err := parseSchedule(tt.expr, tt.tz)
		if mloop.ErrorCode(err) != mloop.EINVALID {
			t.Errorf("parseSchedule(%q, %q) = %v, want an EINVALID error", tt.expr, tt.tz, err)
		}
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"0 * * * *", "@hourly", "*/5 1-3 * JAN-MAR MON,FRI", "@every 1h30m", "0 0 30 2 *", "? ? ? ? ?", "1-60/0 * * * *"} {
		f.Add(s)
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := parseSchedule(expr, "")
		if err != nil {
			if mloop.ErrorCode(err) != mloop.EINVALID {
				t.Fatalf("parseSchedule(%q) error kind %s, want invalid: %v", expr, mloop.ErrorCode(err), err)
			}
			return
		}
		if n := s.next(from); !n.IsZero() && !n.After(from) {
			t.Fatalf("parseSchedule(%q).next(%s) = %s, not after", expr, from, n)
		}
	})
}

func TestCronEventKeyAutumnChange(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	// 02:30 in Paris comes twice on 2026-10-25: at 00:30 UTC (summer time)
	// and at 01:30 UTC (winter time). One event.
	first := cronEventKey("30 2 * * *", time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), paris)
	second := cronEventKey("30 2 * * *", time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC), paris)
	if first != second || first != "cron:2026-10-25T02:30:00" {
		t.Fatalf("keys %q and %q: want both cron:2026-10-25T02:30:00", first, second)
	}
	// Intervals count real time: both instants fire.
	a := cronEventKey("@every 1h", time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), paris)
	b := cronEventKey("@every 1h", time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC), paris)
	if a == b {
		t.Fatalf("@every: same key %q for two instants an hour apart", a)
	}
}
