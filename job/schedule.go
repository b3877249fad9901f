package job

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is a parsed crontab schedule.
type Schedule struct {
	spec  string
	sched cron.Schedule
}

// ParseSchedule reads a crontab schedule: the standard five fields
// (minute, hour, day of month, month, day of week, with ranges, lists,
// steps and names), or a descriptor (@yearly, @monthly, @weekly, @daily,
// @hourly, @every 90m). The original's "?" is accepted wherever it means
// "any". Times are UTC unless the spec starts with CRON_TZ=Zone.
func ParseSchedule(spec string) (Schedule, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return Schedule{}, fmt.Errorf("empty schedule (want five crontab fields or a descriptor such as @hourly)")
	}
	if !strings.HasPrefix(s, "CRON_TZ=") && !strings.HasPrefix(s, "TZ=") {
		s = "CRON_TZ=UTC " + s
	}
	sched, err := cron.ParseStandard(s)
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule %q: %v", spec, err)
	}
	return Schedule{spec: spec, sched: sched}, nil
}

// MustParseSchedule is ParseSchedule for literals; it panics on an error.
func MustParseSchedule(spec string) Schedule {
	s, err := ParseSchedule(spec)
	if err != nil {
		panic(err)
	}
	return s
}

// Next returns the first scheduled time strictly after t, in UTC with
// microsecond precision; the zero time when there is none.
func (s Schedule) Next(t time.Time) time.Time {
	n := s.sched.Next(t)
	if n.IsZero() {
		return n
	}
	return n.UTC().Truncate(time.Microsecond)
}

// String returns the schedule as written.
func (s Schedule) String() string { return s.spec }

// IsZero reports whether s was never parsed.
func (s Schedule) IsZero() bool { return s.sched == nil }
