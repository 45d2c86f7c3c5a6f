package pipeline

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/mloop/mloop"
)

// cronParser reads the standard five cron fields (minute, hour, day of
// month, month, day of week) and the descriptors @yearly, @annually,
// @monthly, @weekly, @daily, @midnight, @hourly and @every DURATION.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// maxCronLength bounds a cron expression; real ones are a few dozen bytes.
const maxCronLength = 256

// schedule is a parsed cron expression in its time zone.
type schedule struct {
	sched cron.Schedule
	loc   *time.Location
}

// parseSchedule parses a cron expression and a time zone name (an IANA name
// such as "Europe/Paris"; "" means UTC). Errors are EINVALID and say how to
// fix the expression.
func parseSchedule(expr, tz string) (*schedule, error) {
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return nil, mloop.Errorf(mloop.EINVALID, "The cron expression is empty: give five fields (minute hour day-of-month month day-of-week, such as \"0 3 * * *\") or a descriptor such as @hourly.")
	}
	if len(expr) > maxCronLength {
		return nil, mloop.Errorf(mloop.EINVALID, "The cron expression is %d bytes long; at most %d are allowed.", len(expr), maxCronLength)
	}
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, mloop.Errorf(mloop.EINVALID, "Cron expression %q: give the time zone in the trigger's timezone field, not as a TZ= prefix.", expr)
	}
	loc := time.UTC
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil || tz == "Local" {
			return nil, mloop.Errorf(mloop.EINVALID, "Unknown time zone %q: give an IANA name such as \"UTC\" or \"Europe/Paris\".", tz)
		}
		loc = l
	}
	sched, err := parseCron(expr)
	if err != nil {
		return nil, mloop.Errorf(mloop.EINVALID, "Invalid cron expression %q: %s. Give five fields (minute hour day-of-month month day-of-week, such as \"0 3 * * *\") or a descriptor (@hourly, @daily, @weekly, @monthly, @yearly, @every 30m).", expr, err)
	}
	if d, ok := strings.CutPrefix(expr, "@every "); ok {
		// The parser rounds shorter delays up to 1s; say so instead.
		if every, err := time.ParseDuration(strings.TrimSpace(d)); err != nil || every < time.Second {
			return nil, mloop.Errorf(mloop.EINVALID, "Cron expression %q: @every needs a duration of at least 1s (such as @every 30m).", expr)
		}
	}
	return &schedule{sched: sched, loc: loc}, nil
}

// parseCron parses expr, turning the parser's panics on pathological input
// into errors.
func parseCron(expr string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, mloop.Errorf(mloop.EINVALID, "unreadable expression")
		}
	}()
	return cronParser.Parse(expr)
}

// next returns the first time of the schedule strictly after t, in the
// schedule's time zone, or the zero time when the schedule never fires (such
// as "0 0 30 2 *", February 30th).
func (s *schedule) next(t time.Time) time.Time {
	return s.sched.Next(t.In(s.loc))
}

// cronEventKey is the dedup key of the schedule event due at due: one event
// per wall-clock time of the schedule's zone, so that when clocks go back a
// time that comes twice (02:30 on the autumn change) fires once, as cron
// does; intervals (@every) count real time instead.
func cronEventKey(expr string, due time.Time, loc *time.Location) string {
	if strings.HasPrefix(strings.TrimSpace(expr), "@every") {
		return "cron:" + due.UTC().Format(time.RFC3339)
	}
	return "cron:" + due.In(loc).Format("2006-01-02T15:04:05")
}
