package schedexpr

import (
	"strings"
	"testing"
	"time"
)

// after is Friday 2024-03-15 10:17:30 UTC.
var after = time.Date(2024, 3, 15, 10, 17, 30, 0, time.UTC)

func TestNext(t *testing.T) {
	for _, c := range []struct {
		expr, want string
	}{
		// rate: epoch-aligned; singular and plural both accepted.
		{"rate(1 minute)", "2024-03-15T10:18:00Z"},
		{"rate(1 minutes)", "2024-03-15T10:18:00Z"},
		{"rate(5 minutes)", "2024-03-15T10:20:00Z"},
		{"rate(2 hour)", "2024-03-15T12:00:00Z"},
		{"rate(1 day)", "2024-03-16T00:00:00Z"},
		{"rate(3 days)", "2024-03-18T00:00:00Z"},
		{" rate( 15 Minutes ) ", "2024-03-15T10:30:00Z"},
		// EventBridge cron: ? in one day field, dow 1-7 from Sunday.
		{"cron(0 12 * * ? *)", "2024-03-15T12:00:00Z"},
		{"cron(0/30 * ? * * *)", "2024-03-15T10:30:00Z"},
		{"cron(0 8 ? * 1 *)", "2024-03-17T08:00:00Z"},           // 1 = Sunday
		{"cron(0 8 ? * 7 *)", "2024-03-16T08:00:00Z"},           // 7 = Saturday
		{"cron(0 8 ? * 2-6 *)", "2024-03-18T08:00:00Z"},         // Monday to Friday
		{"cron(0 8 ? * MON-FRI *)", "2024-03-18T08:00:00Z"},     // names
		{"cron(0 12 ? * sun,4 *)", "2024-03-17T12:00:00Z"},      // list, lower case
		{"cron(0 12 ? * 1-7/3 *)", "2024-03-16T12:00:00Z"},      // SUN, WED, SAT
		{"cron(15 10 ? * 6L 2024)", "2024-03-29T10:15:00Z"},     // last Friday
		{"cron(0 9 ? * 2#1 *)", "2024-04-01T09:00:00Z"},         // first Monday
		{"cron(0 9 ? * MON#3 *)", "2024-03-18T09:00:00Z"},       // third Monday
		{"cron(0 10 ? * L *)", "2024-03-16T10:00:00Z"},          // L alone = Saturday
		{"cron(0 0 L * ? *)", "2024-03-31T00:00:00Z"},           // last day of the month
		{"cron(0 0 15W * ? *)", "2024-04-15T00:00:00Z"},         // weekday nearest the 15th
		{"cron(0 0 LW * ? *)", "2024-03-29T00:00:00Z"},          // last weekday
		{"cron(0 0 1 1 ? 2030)", "2030-01-01T00:00:00Z"},        // year
		{"cron(30 10 ? * * 2024-2025)", "2024-03-15T10:30:00Z"}, // year range
		// Bare crontab forms: 5 fields, 6 (seconds first), 7 (… year).
		{"30 * * * *", "2024-03-15T10:30:00Z"},
		{"0 12 * * 7", "2024-03-17T12:00:00Z"}, // 7 = Sunday in crontab
		{"0 12 * * 0", "2024-03-17T12:00:00Z"},
		{"*/10 * * * * *", "2024-03-15T10:17:40Z"},
		{"0 0 12 * * 5 *", "2024-03-15T12:00:00Z"}, // 5 = Friday in crontab
		{"0 0 12 ? * FRI 2024", "2024-03-15T12:00:00Z"},
		{"* * * * * * *", "2024-03-15T10:17:31Z"},
		{"@daily", "2024-03-16T00:00:00Z"},
	} {
		if err := Validate(c.expr); err != nil {
			t.Errorf("Validate(%q) = %v", c.expr, err)
			continue
		}
		got, err := Next(c.expr, after)
		if err != nil || got.Format(time.RFC3339) != c.want {
			t.Errorf("Next(%q) = %s, %v; want %s", c.expr, got.Format(time.RFC3339), err, c.want)
		}
	}
}

// Next is strictly after, and in UTC whatever the input's zone.
func TestNextStrictlyAfterInUTC(t *testing.T) {
	tick := time.Date(2024, 3, 15, 10, 20, 0, 0, time.UTC)
	got, err := Next("rate(5 minutes)", tick)
	if err != nil || !got.Equal(tick.Add(5*time.Minute)) {
		t.Fatalf("Next at a tick = %s, %v", got, err)
	}
	got, err = Next("cron(0 12 * * ? *)", after.In(time.FixedZone("X", 5*3600)))
	if err != nil || got.Location() != time.UTC || got.Format(time.RFC3339) != "2024-03-15T12:00:00Z" {
		t.Fatalf("Next from another zone = %s, %v", got, err)
	}
	if _, err := Next("cron(0 0 1 1 ? 2020)", after); err == nil || !strings.Contains(err.Error(), "never fires") {
		t.Fatalf("a past year: %v", err)
	}
}

func TestValidateRejects(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{"", "empty"},
		{"rate(0 minutes)", "positive"},
		{"rate(5 weeks)", "minute(s), hour(s) or day(s)"},
		{"rate(-1 minutes)", "rate(5 minutes)"},
		{"rate(1.5 hours)", "rate(5 minutes)"},
		{"rate(5minutes)", "rate(5 minutes)"},
		{"rate(5 minutes", "rate(5 minutes)"},
		{"rate(99999999 days)", "century"},
		{"cron(0 12 * * * *)", "must be ?"},
		{"cron(0 12 ? * ? *)", "only one"},
		{"cron(0 12 ? * 0 *)", "1-7"},
		{"cron(0 12 ? * 8 *)", "1-7"},
		{"cron(0 12 ? * 1-9 *)", "1-7"},
		{"cron(0 12 ? * 9#1 *)", "1-7"},
		{"cron(0 12 ? * MON#6 *)", "syntax error"},
		{"cron(0 12 ? * FUNDAY *)", "1-7"},
		{"cron(0 12 * * ?)", "six fields"},
		{"cron(0 12 * * ? * *)", "six fields"},
		{"cron(0 12 32 * ? *)", "day-of-month"},
		{"cron(60 * * * ? *)", "minute"},
		{"cron(0 25 * * ? *)", "hour"},
		{"cron(0 0 30 2 ? *)", "never fires"},
		{"cron(0 0 1 1 ? 1969)", "year"},
		{"cron(0 12 * * ? *", "closing parenthesis"},
		{"* * * *", "5, 6"},
		{"1 2 3 4 5 6 7 8", "5, 6"},
		{"5-1 * * * *", "never fires"},
		{"@reboot", "5, 6"},
		{"every day", "5, 6"},
	} {
		err := Validate(c.expr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%q) = %v; want an error mentioning %q", c.expr, err, c.want)
		}
	}
}

func TestLatestIn(t *testing.T) {
	s, err := Parse("rate(1 minute)")
	if err != nil {
		t.Fatal(err)
	}
	floor := time.Date(2024, 3, 15, 10, 0, 0, 0, time.UTC)
	// A day-long outage: only the last missed minute.
	got, ok := LatestIn(s, floor, floor.Add(24*time.Hour+30*time.Second))
	if !ok || !got.Equal(floor.Add(24*time.Hour)) {
		t.Fatalf("latestIn after a day = %s, %v", got, ok)
	}
	if _, ok := LatestIn(s, floor, floor.Add(59*time.Second)); ok {
		t.Fatal("no tick is due within the first minute")
	}
	if got, ok := LatestIn(s, floor, floor.Add(time.Minute)); !ok || !got.Equal(floor.Add(time.Minute)) {
		t.Fatalf("a tick exactly at now = %s, %v", got, ok)
	}
	c, _ := Parse("cron(0 10 ? * 2#1 *)")
	got, ok = LatestIn(c, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), after)
	if !ok || got.Format(time.RFC3339) != "2024-03-04T10:00:00Z" {
		t.Fatalf("latest first-Monday = %s, %v", got, ok)
	}
}
