package rollout

import (
	"fmt"
	"net/url"
	"regexp"
	"time"
)

// Status is where a rollout is.
type Status string

// Statuses. Running is the only one a Runner drives; the others are final.
const (
	Running    Status = "Running"
	Succeeded  Status = "Succeeded"
	RolledBack Status = "RolledBack"
	Aborted    Status = "Aborted"
)

// Final reports whether nothing drives the rollout any more.
func (s Status) Final() bool { return s != Running }

// Counters are the cumulative metrics of one function version (throttles:
// of the function), summed over the gateways scraped.
type Counters struct {
	Invocations    float64 `json:"Invocations"`
	FunctionErrors float64 `json:"FunctionErrors"`
	PlatformErrors float64 `json:"PlatformErrors"`
	Throttles      float64 `json:"Throttles"`
}

// Health is what one step saw of the new version: the deltas since the
// step began, the error rate, and whether there were enough calls to judge.
type Health struct {
	Step        int     `json:"Step"`
	Percent     int     `json:"Percent"`
	Invocations float64 `json:"Invocations"`
	Errors      float64 `json:"Errors"`
	Throttles   float64 `json:"Throttles"`
	// Rate is Errors / (invocations + platform errors); 0 with no calls.
	Rate float64 `json:"Rate"`
	// TooLittleTraffic: fewer calls than MinInvocations, so the error rate
	// was not judged.
	TooLittleTraffic bool `json:"TooLittleTraffic,omitempty"`
}

// Measure is the health of the delta now - base; reset reports a counter
// that went down (a gateway restarted), when the delta means nothing.
func Measure(base, now Counters, minInvocations int) (h Health, reset bool) {
	if now.Invocations < base.Invocations || now.FunctionErrors < base.FunctionErrors ||
		now.PlatformErrors < base.PlatformErrors || now.Throttles < base.Throttles {
		return Health{}, true
	}
	inv := now.Invocations - base.Invocations
	plat := now.PlatformErrors - base.PlatformErrors
	h = Health{Invocations: inv, Errors: now.FunctionErrors - base.FunctionErrors + plat, Throttles: now.Throttles - base.Throttles}
	if calls := inv + plat; calls > 0 {
		h.Rate = h.Errors / calls
	}
	h.TooLittleTraffic = inv+plat < float64(minInvocations)
	return h, false
}

// Thresholds say when a step fails.
type Thresholds struct {
	// MaxErrorRate is a fraction in [0,1]: a judged step whose rate is
	// above it fails.
	MaxErrorRate float64 `json:"MaxErrorRate"`
	// MaxThrottles fails a step with more throttles of the function than
	// this; -1: throttles are not watched.
	MaxThrottles int `json:"MaxThrottles"`
	// MinInvocations is the sample a step needs before its rate is judged.
	MinInvocations int `json:"MinInvocations"`
}

// Breach says why h fails t, "" if it does not.
func (t Thresholds) Breach(h Health) string {
	if !h.TooLittleTraffic && h.Rate > t.MaxErrorRate {
		return fmt.Sprintf("error rate %.4g (%g errors in %g invocations) is above the threshold %.4g", h.Rate, h.Errors, h.Invocations, t.MaxErrorRate)
	}
	if t.MaxThrottles >= 0 && h.Throttles > float64(t.MaxThrottles) {
		return fmt.Sprintf("%g throttles is above the threshold %d", h.Throttles, t.MaxThrottles)
	}
	return ""
}

// Record is a rollout as the gateway stores it: enough to show it, resume
// it after the CLI that drove it died, or abort it.
type Record struct {
	Function string `json:"Function"`
	Alias    string `json:"Alias"`
	// Original is the alias exactly as it was before the rollout: a
	// rollback or an abort restores it.
	Original Alias  `json:"Original"`
	To       string `json:"To"`
	Steps    []int  `json:"Steps"`
	// IntervalMillis is how long each step below 100% is watched.
	IntervalMillis int64 `json:"IntervalMillis"`
	Thresholds
	PreTrafficHook  string   `json:"PreTrafficHook,omitempty"`
	PostTrafficHook string   `json:"PostTrafficHook,omitempty"`
	MetricsURLs     []string `json:"MetricsURLs"`

	// Step is the index of the step in progress; -1 before the first
	// shift (the pre-traffic hook), len(Steps) once the alias is on To
	// and only the post-traffic hook is left.
	Step int `json:"Step"`
	// StepStarted is when the current step's weights were written; nil
	// when they are not yet.
	StepStarted *time.Time `json:"StepStarted,omitempty"`
	// Baseline is the new version's counters when the step began.
	Baseline Counters `json:"Baseline"`
	// AliasRevision is the alias's RevisionId after the rollout's last
	// write (or as the rollout found it).
	AliasRevision string `json:"AliasRevision"`
	// Owner identifies the CLI run driving the rollout; a resume takes it over.
	Owner string `json:"Owner"`

	Status  Status    `json:"Status"`
	Reason  string    `json:"Reason,omitempty"`
	History []Health  `json:"History,omitempty"`
	Started time.Time `json:"Started"`
	Updated time.Time `json:"Updated"`
}

// Plan is the record's plan.
func (r *Record) Plan() Plan {
	return Plan{Steps: r.Steps, Interval: time.Duration(r.IntervalMillis) * time.Millisecond}
}

var (
	versionRE = regexp.MustCompile(`^[1-9][0-9]{0,9}$`)
	nameRE    = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
	// hookRE is a hook function: a name, optionally with a qualifier.
	hookRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}(:[a-zA-Z0-9$_-]{1,128})?$`)
)

// Validate checks a record is one a Runner can drive or show.
func (r *Record) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("rollout record: "+format+": %w", append(args, ErrInvalid)...)
	}
	switch {
	case !nameRE.MatchString(r.Function):
		return bad("function %q", r.Function)
	case !nameRE.MatchString(r.Alias):
		return bad("alias %q", r.Alias)
	case !versionRE.MatchString(r.Original.Version):
		return bad("original version %q is not a published version number", r.Original.Version)
	case !versionRE.MatchString(r.To):
		return bad("version %q is not a published version number", r.To)
	case r.To == r.Original.Version:
		return bad("the alias is already on version %s", r.To)
	case r.IntervalMillis < 0:
		return bad("negative interval")
	case r.MaxErrorRate < 0 || r.MaxErrorRate > 1 || r.MaxErrorRate != r.MaxErrorRate:
		return bad("MaxErrorRate %v is outside 0..1", r.MaxErrorRate)
	case r.MaxThrottles < -1:
		return bad("MaxThrottles %d (-1: not watched)", r.MaxThrottles)
	case r.MinInvocations < 1:
		return bad("MinInvocations %d must be at least 1", r.MinInvocations)
	case r.Step < -1 || r.Step > len(r.Steps):
		return bad("step %d of %d", r.Step, len(r.Steps))
	case len(r.MetricsURLs) == 0:
		return bad("no metrics URLs")
	}
	for v, w := range r.Original.Weights {
		if !versionRE.MatchString(v) || w < 0 || w > 1 {
			return bad("original weight %s=%v", v, w)
		}
	}
	if err := r.Plan().Validate(); err != nil {
		return fmt.Errorf("rollout record: %w", err)
	}
	for _, h := range []string{r.PreTrafficHook, r.PostTrafficHook} {
		if h != "" && !hookRE.MatchString(h) {
			return bad("hook function %q", h)
		}
	}
	for _, u := range r.MetricsURLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return bad("metrics URL %q is not an http(s) URL", u)
		}
	}
	switch r.Status {
	case Running, Succeeded, RolledBack, Aborted:
	default:
		return bad("status %q", r.Status)
	}
	return nil
}
