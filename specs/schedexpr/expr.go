package schedexpr

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/cronexpr"
)

// Next returns the first tick of the schedule expression expr strictly
// after after, in UTC. It fails when expr is invalid or never fires after
// after.
func Next(expr string, after time.Time) (time.Time, error) {
	s, err := Parse(expr)
	if err != nil {
		return time.Time{}, err
	}
	t := s.Next(after)
	if t.IsZero() {
		return time.Time{}, fmt.Errorf("schedule %q never fires after %s", expr, after.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// Validate reports why expr is not a schedule expression (nil when it is):
// rate(…), EventBridge cron(…) or a bare cron expression; see the package
// documentation.
func Validate(expr string) error {
	_, err := Parse(expr)
	return err
}

// Schedule is a parsed schedule.
type Schedule interface {
	// next is the first tick strictly after t (UTC), zero when none.
	Next(t time.Time) time.Time
}

var (
	rateRE      = regexp.MustCompile(`^rate\(\s*(\d+)\s+([A-Za-z]+)\s*\)$`)
	dowNames    = map[string]bool{"sun": true, "mon": true, "tue": true, "wed": true, "thu": true, "fri": true, "sat": true}
	dowEntryRE  = regexp.MustCompile(`^([0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?(?:/(\d+))?$`)
	dowNthRE    = regexp.MustCompile(`^([0-9A-Za-z]+)#(\d+)$`)
	dowLastRE   = regexp.MustCompile(`^([0-9A-Za-z]+)[Ll]$`)
	macroCronRE = regexp.MustCompile(`^@(yearly|annually|monthly|weekly|daily|hourly)$`)
	rateUnits   = map[string]time.Duration{
		"minute": time.Minute, "minutes": time.Minute,
		"hour": time.Hour, "hours": time.Hour,
		"day": 24 * time.Hour, "days": 24 * time.Hour,
	}
)

func Parse(expr string) (Schedule, error) {
	e := strings.TrimSpace(expr)
	switch {
	case e == "":
		return nil, errors.New("empty schedule expression")
	case strings.HasPrefix(e, "rate("):
		return parseRate(e)
	case strings.HasPrefix(e, "cron("):
		if !strings.HasSuffix(e, ")") {
			return nil, fmt.Errorf("schedule %q: cron( without a closing parenthesis", expr)
		}
		return parseEventBridgeCron(expr, e[len("cron("):len(e)-1])
	default:
		return parseBareCron(expr, e)
	}
}

// rate is rate(N unit): ticks every period, aligned to the Unix epoch so
// every gateway computes the same ticks.
type rate struct{ period time.Duration }

func parseRate(e string) (Schedule, error) {
	m := rateRE.FindStringSubmatch(e)
	if m == nil {
		return nil, fmt.Errorf("schedule %q must look like rate(5 minutes): a whole number and minute(s), hour(s) or day(s)", e)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("schedule %q: the rate must be a positive whole number", e)
	}
	unit, ok := rateUnits[strings.ToLower(m[2])]
	if !ok {
		return nil, fmt.Errorf("schedule %q: unit %q must be minute(s), hour(s) or day(s)", e, m[2])
	}
	if n > int64((100*365*24*time.Hour)/unit) {
		return nil, fmt.Errorf("schedule %q: the period is longer than a century", e)
	}
	return rate{period: time.Duration(n) * unit}, nil
}

func (r rate) Next(t time.Time) time.Time {
	p := int64(r.period / time.Second)
	k := floorDiv(t.Unix(), p)
	return time.Unix((k+1)*p, 0).UTC()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// cron wraps a cronexpr expression in its 7-field form (seconds … year).
// cronexpr.Expression.Next writes to the expression, so calls are
// serialised.
type cron struct {
	mu   sync.Mutex
	expr *cronexpr.Expression
}

// parseSeven parses a 7-field cronexpr line and checks that it can fire
// at all (an empty field such as the range 5-1 would never match, and
// cronexpr panics on some).
func parseSeven(expr, line string) (*cron, error) {
	ce, err := cronexpr.Parse(line)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", expr, err)
	}
	c := &cron{expr: ce}
	if c.Next(time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("schedule %q never fires (an empty range, a day that does not exist or a year outside 1970–2099)", expr)
	}
	return c, nil
}

func (c *cron) Next(t time.Time) (out time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() {
		if recover() != nil {
			out = time.Time{}
		}
	}()
	return c.expr.Next(t.UTC())
}

// parseEventBridgeCron takes cron()'s six fields: minutes hours
// day-of-month month day-of-week year, with exactly one of day-of-month
// and day-of-week "?", and days of the week numbered 1-7 from Sunday.
func parseEventBridgeCron(expr, inner string) (Schedule, error) {
	f := strings.Fields(inner)
	if len(f) != 6 {
		return nil, fmt.Errorf("schedule %q: cron() takes six fields (minutes hours day-of-month month day-of-week year), got %d", expr, len(f))
	}
	dom, dow := f[2], f[4]
	switch {
	case dom == "?" && dow == "?":
		return nil, fmt.Errorf("schedule %q: only one of day-of-month and day-of-week may be ?", expr)
	case dom != "?" && dow != "?":
		return nil, fmt.Errorf("schedule %q: one of day-of-month and day-of-week must be ? (EventBridge does not combine them)", expr)
	}
	if dom == "?" {
		dom = "*"
	}
	dow, err := translateDOW(dow)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", expr, err)
	}
	return parseSeven(expr, strings.Join([]string{"0", f[0], f[1], dom, f[3], dow, f[5]}, " "))
}

// translateDOW rewrites an EventBridge day-of-week field (1-7 = SUN-SAT,
// names, ranges, steps, nL, n#k, L) into cronexpr's (0-6 = SUN-SAT).
func translateDOW(field string) (string, error) {
	if field == "?" || field == "*" {
		return "*", nil
	}
	entries := strings.Split(field, ",")
	for i, e := range entries {
		var err error
		if entries[i], err = translateDOWEntry(e); err != nil {
			return "", err
		}
	}
	return strings.Join(entries, ","), nil
}

func translateDOWEntry(e string) (string, error) {
	if strings.EqualFold(e, "L") {
		return "6", nil // L alone: the last day of the week, Saturday
	}
	if strings.HasPrefix(e, "*/") {
		return e, nil // from Sunday in both numberings
	}
	if m := dowNthRE.FindStringSubmatch(e); m != nil {
		d, err := dowValue(m[1])
		return d + "#" + m[2], err
	}
	if m := dowLastRE.FindStringSubmatch(e); m != nil {
		d, err := dowValue(m[1])
		return d + "L", err
	}
	m := dowEntryRE.FindStringSubmatch(e)
	if m == nil {
		return "", fmt.Errorf("day-of-week entry %q is not a day (1-7 or SUN-SAT), a range, a step, nL or n#k", e)
	}
	out, err := dowValue(m[1])
	if err != nil {
		return "", err
	}
	if m[2] != "" {
		last, err := dowValue(m[2])
		if err != nil {
			return "", err
		}
		out += "-" + last
	}
	if m[3] != "" {
		out += "/" + m[3]
	}
	return out, nil
}

// dowValue maps an EventBridge day (1-7 from Sunday, or a name) to
// cronexpr's (0-6, or the name).
func dowValue(s string) (string, error) {
	if dowNames[strings.ToLower(s)] {
		return strings.ToLower(s), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 7 {
		return "", fmt.Errorf("day-of-week %q must be 1-7 (1 = SUN) or SUN-SAT", s)
	}
	return strconv.Itoa(n - 1), nil
}

// parseBareCron takes a cron expression without cron(): 5 fields (minutes
// hours day-of-month month day-of-week), 6 (seconds first) or 7 (seconds
// first, year last), or @hourly/@daily/@weekly/@monthly/@yearly/@annually.
// Days of the week are 0-7 (0 and 7 = Sunday) or names, as in crontab.
func parseBareCron(expr, e string) (Schedule, error) {
	if macroCronRE.MatchString(e) {
		return parseSeven(expr, e)
	}
	f := strings.Fields(e)
	switch len(f) {
	case 5:
		return parseSeven(expr, "0 "+e+" *")
	case 6:
		return parseSeven(expr, e+" *")
	case 7:
		return parseSeven(expr, e)
	default:
		return nil, fmt.Errorf("schedule %q is not rate(…), cron(…) or a cron expression of 5, 6 (seconds first) or 7 (seconds first, year last) fields", expr)
	}
}

// latestIn returns the last tick in (floor, now], if any.
func LatestIn(s Schedule, floor, now time.Time) (time.Time, bool) {
	first := s.Next(floor)
	if first.IsZero() || first.After(now) {
		return time.Time{}, false
	}
	// Search backwards from now in doubling steps for a window holding a
	// tick, then walk forward to the last one: a few steps even after a
	// long outage.
	for d := time.Second; ; d *= 2 {
		from := now.Add(-d)
		if !from.After(floor) {
			from = floor
		}
		t := s.Next(from)
		if !t.IsZero() && !t.After(now) {
			for {
				n := s.Next(t)
				if n.IsZero() || n.After(now) {
					return t, true
				}
				t = n
			}
		}
		if from.Equal(floor) {
			return first, true // unreachable: first is in (floor, now]
		}
	}
}
