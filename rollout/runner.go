package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Errors a Gateway returns and a Runner reports.
var (
	// ErrNoRecord: no rollout is recorded for the alias.
	ErrNoRecord = errors.New("no rollout recorded")
	// ErrConflict: the alias or the record is not at the revision given.
	ErrConflict = errors.New("changed concurrently")
	// ErrRunning: a rollout of the alias is already Running.
	ErrRunning = errors.New("a rollout is running")
	// ErrNotRunning: resume or abort of a rollout that is over.
	ErrNotRunning = errors.New("the rollout is not running")
	// ErrRefused: the gateway refused a write for good (a client error
	// such as a version that does not exist); retrying will not help.
	ErrRefused = errors.New("refused by the gateway")
)

// Gateway is what a Runner needs of the management API.
type Gateway interface {
	// Version reports whether a published version of fn exists (an error
	// wrapping ErrRefused when it does not).
	Version(ctx context.Context, fn, version string) error
	// Alias returns the alias with its RevisionID.
	Alias(ctx context.Context, fn, alias string) (Alias, error)
	// UpdateAlias makes the alias exactly a if it is at revision, and
	// returns it with its new RevisionID; ErrConflict otherwise.
	UpdateAlias(ctx context.Context, fn, alias string, a Alias, revision string) (Alias, error)
	// Record returns the alias's rollout and its revision, or ErrNoRecord.
	Record(ctx context.Context, fn, alias string) (*Record, string, error)
	// PutRecord writes the rollout if its revision is revision ("": only if
	// there is none) and returns the new revision; ErrConflict otherwise.
	PutRecord(ctx context.Context, fn, alias string, r *Record, revision string) (string, error)
	// Invoke calls a hook function synchronously: an error for a function
	// error or a refused call.
	Invoke(ctx context.Context, fn string, payload []byte) error
}

// CountersSource reads a version's cumulative counters.
type CountersSource interface {
	Counters(ctx context.Context, fn, version string) (Counters, error)
}

// Runner drives rollouts. Its zero values are usable except Gateway and
// Metrics.
type Runner struct {
	Gateway Gateway
	// Metrics returns the counters source of a record's metrics URLs.
	Metrics func(urls []string) CountersSource
	// Log receives one line per step and outcome. Optional.
	Log io.Writer
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Poll is how often health is read during a step. Default: a quarter
	// of the interval, within 100ms..5s.
	Poll time.Duration
}

// Outcome is the error of a rollout that ended RolledBack or Aborted.
type Outcome struct{ Record *Record }

func (o *Outcome) Error() string {
	r := o.Record
	return fmt.Sprintf("rollout of %s:%s to version %s %s: %s", r.Function, r.Alias, r.To, r.Status, r.Reason)
}

// Spec is what a new rollout is asked to do.
type Spec struct {
	Function, Alias, To string
	Plan                Plan
	Thresholds
	PreTrafficHook, PostTrafficHook string
	MetricsURLs                     []string
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, format+"\n", args...)
	}
}

func newOwner() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Start records a new rollout of s and drives it to its end. A rollout
// that ends other than Succeeded returns its record and an *Outcome.
func (r *Runner) Start(ctx context.Context, s Spec) (*Record, error) {
	if err := s.Plan.Validate(); err != nil {
		return nil, err
	}
	prev, rev, err := r.Gateway.Record(ctx, s.Function, s.Alias)
	switch {
	case err == nil && prev.Status == Running:
		return nil, runningErr(prev)
	case err != nil && !errors.Is(err, ErrNoRecord):
		return nil, err
	case err != nil:
		rev = ""
	}
	cur, err := r.Gateway.Alias(ctx, s.Function, s.Alias)
	if err != nil {
		return nil, err
	}
	if cur.Version == s.To {
		return nil, fmt.Errorf("alias %s of %s is already on version %s: %w", s.Alias, s.Function, s.To, ErrInvalid)
	}
	if err := r.Gateway.Version(ctx, s.Function, s.To); err != nil {
		return nil, err
	}
	if len(cur.Weights) > 0 {
		return nil, fmt.Errorf("alias %s of %s already splits traffic (version %s with weights %v); "+
			"a rollout starts from an alias on one version: %w", s.Alias, s.Function, cur.Version, cur.Weights, ErrInvalid)
	}
	rec := &Record{
		Function: s.Function, Alias: s.Alias, Original: Alias{Version: cur.Version, Description: cur.Description},
		To: s.To, Steps: s.Plan.Steps, IntervalMillis: s.Plan.Interval.Milliseconds(), Thresholds: s.Thresholds,
		PreTrafficHook: s.PreTrafficHook, PostTrafficHook: s.PostTrafficHook, MetricsURLs: s.MetricsURLs,
		Step: -1, AliasRevision: cur.RevisionID, Owner: newOwner(), Status: Running, Started: r.now(),
	}
	rec.Updated = rec.Started
	if err := rec.Validate(); err != nil {
		return nil, err
	}
	newRev, err := r.Gateway.PutRecord(ctx, s.Function, s.Alias, rec, rev)
	if errors.Is(err, ErrConflict) {
		if now, _, gerr := r.Gateway.Record(ctx, s.Function, s.Alias); gerr == nil && now.Status == Running {
			return nil, runningErr(now)
		}
		return nil, fmt.Errorf("another command wrote the rollout of %s:%s at the same time: %w", s.Function, s.Alias, err)
	}
	if err != nil {
		return nil, err
	}
	r.logf("rollout of %s:%s from version %s to %s: steps %v%%, every %s", rec.Function, rec.Alias, rec.Original.Version, rec.To, rec.Steps, rec.Plan().Interval)
	return r.drive(ctx, &run{Runner: r, rec: rec, rev: newRev})
}

func runningErr(rec *Record) error {
	return fmt.Errorf("a rollout of %s:%s to version %s is Running since %s (step %d of %d); "+
		"see nimbus rollout status, continue it with nimbus rollout resume or stop it with nimbus rollout abort: %w",
		rec.Function, rec.Alias, rec.To, rec.Started.Format(time.RFC3339), max(rec.Step+1, 0), len(rec.Steps), ErrRunning)
}

// Resume takes over a Running rollout (its CLI died or was stopped) and
// drives it on from its recorded step.
func (r *Runner) Resume(ctx context.Context, fn, alias string) (*Record, error) {
	rec, rev, err := r.Gateway.Record(ctx, fn, alias)
	if err != nil {
		return nil, err
	}
	if rec.Status.Final() {
		return rec, fmt.Errorf("the rollout of %s:%s to version %s is %s (%s): %w", fn, alias, rec.To, rec.Status, rec.Reason, ErrNotRunning)
	}
	rec.Owner = newOwner()
	x := &run{Runner: r, rec: rec, rev: rev}
	if err := x.save(ctx); err != nil {
		return nil, err
	}
	r.logf("resuming the rollout of %s:%s to version %s at step %d of %d", fn, alias, rec.To, max(rec.Step+1, 0), len(rec.Steps))
	return r.drive(ctx, x)
}

// Abort restores the alias of a Running rollout and records it Aborted
// with reason. The CLI driving it (if any) stops at its next write.
func (r *Runner) Abort(ctx context.Context, fn, alias, reason string) (*Record, error) {
	for range 5 {
		rec, rev, err := r.Gateway.Record(ctx, fn, alias)
		if err != nil {
			return nil, err
		}
		if rec.Status.Final() {
			return rec, fmt.Errorf("the rollout of %s:%s to version %s is %s (%s): %w", fn, alias, rec.To, rec.Status, rec.Reason, ErrNotRunning)
		}
		x := &run{Runner: r, rec: rec, rev: rev}
		werr := x.write(ctx, rec.Original)
		switch {
		case errors.Is(werr, ErrConflict):
			reason += "; " + werr.Error() + ", so it was not restored"
		case werr != nil:
			return nil, werr
		}
		rec.Status, rec.Reason, rec.Updated = Aborted, reason, r.now()
		_, err = r.Gateway.PutRecord(ctx, fn, alias, rec, rev)
		if errors.Is(err, ErrConflict) {
			continue // the runner wrote a step meanwhile: look again
		}
		if err != nil {
			return nil, err
		}
		r.logf("aborted the rollout of %s:%s; alias %s is %s", fn, alias, alias, describe(rec.Original))
		return rec, nil
	}
	return nil, fmt.Errorf("the rollout of %s:%s kept changing while aborting: %w", fn, alias, ErrConflict)
}

// run is one Runner's hold on one record.
type run struct {
	*Runner
	rec *Record
	rev string
}

// errTakenOver: another run (a resume) owns the record now.
var errTakenOver = errors.New("another nimbus rollout resume took this rollout over")

// save writes the record at the revision this run last wrote.
func (x *run) save(ctx context.Context) error {
	x.rec.Updated = x.now()
	rev, err := x.Gateway.PutRecord(ctx, x.rec.Function, x.rec.Alias, x.rec, x.rev)
	if errors.Is(err, ErrConflict) {
		cur, _, gerr := x.Gateway.Record(ctx, x.rec.Function, x.rec.Alias)
		switch {
		case gerr != nil:
			return fmt.Errorf("the rollout record changed and cannot be read: %w", gerr)
		case cur.Status.Final():
			if cur.Status != Succeeded {
				// Its alias write may have raced ours: put the
				// original back if the alias is still one of ours.
				_ = (&run{Runner: x.Runner, rec: cur}).write(ctx, cur.Original)
			}
			return &Outcome{Record: cur}
		case cur.Owner != x.rec.Owner:
			return errTakenOver
		}
		return fmt.Errorf("writing the rollout record: %w", err)
	}
	if err != nil {
		return fmt.Errorf("writing the rollout record: %w", err)
	}
	x.rev = rev
	return nil
}

// stillOurs reads the record while a step is watched: an abort or a
// resume elsewhere ends this run at once rather than at the step's end.
func (x *run) stillOurs(ctx context.Context) error {
	cur, rev, err := x.Gateway.Record(ctx, x.rec.Function, x.rec.Alias)
	switch {
	case err != nil:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		x.logf("step %d: reading the rollout record: %v", x.rec.Step+1, err)
		return nil // judged on the next read; the record write will tell
	case rev == x.rev:
		return nil
	case cur.Status.Final():
		return &Outcome{Record: cur}
	case cur.Owner != x.rec.Owner:
		return errTakenOver
	}
	return nil
}

// ours reports whether a is a definition this rollout writes.
func (x *run) ours(a Alias) bool {
	if a.Same(x.rec.Original) {
		return true
	}
	for _, p := range x.rec.Steps {
		if a.Same(AliasAt(x.rec.Original, x.rec.To, p)) {
			return true
		}
	}
	return false
}

// write makes the alias want, with the revision precondition: an alias at
// another revision than the rollout's is written only when its content is
// one of the rollout's; ErrConflict otherwise.
func (x *run) write(ctx context.Context, want Alias) error {
	cur, err := x.Gateway.Alias(ctx, x.rec.Function, x.rec.Alias)
	if err != nil {
		return err
	}
	if cur.Same(want) {
		x.rec.AliasRevision = cur.RevisionID
		return nil
	}
	if cur.RevisionID != x.rec.AliasRevision && !x.ours(cur) {
		return fmt.Errorf("alias %s was changed by someone else (it is now %s): %w", x.rec.Alias, describe(cur), ErrConflict)
	}
	got, err := x.Gateway.UpdateAlias(ctx, x.rec.Function, x.rec.Alias, want, cur.RevisionID)
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("alias %s was changed by someone else while the rollout wrote it: %w", x.rec.Alias, err)
	}
	if err != nil {
		return err
	}
	x.rec.AliasRevision = got.RevisionID
	return nil
}

func describe(a Alias) string {
	s := "version " + a.Version
	for v, w := range a.Weights {
		s += fmt.Sprintf(" + version %s at %g%%", v, w*100)
	}
	return s
}

// finish records a final status; anything but Succeeded is an *Outcome.
func (x *run) finish(ctx context.Context, st Status, reason string) (*Record, error) {
	x.rec.Status, x.rec.Reason = st, reason
	if err := x.save(ctx); err != nil {
		return x.rec, err
	}
	x.logf("rollout of %s:%s to version %s: %s%s", x.rec.Function, x.rec.Alias, x.rec.To, st, map[bool]string{true: ": " + reason, false: ""}[reason != ""])
	if st != Succeeded {
		return x.rec, &Outcome{Record: x.rec}
	}
	return x.rec, nil
}

// rollback restores the original alias and records why.
func (x *run) rollback(ctx context.Context, reason string) (*Record, error) {
	err := x.write(ctx, x.rec.Original)
	switch {
	case errors.Is(err, ErrConflict):
		return x.finish(ctx, Aborted, reason+"; "+err.Error()+", so it was not restored")
	case err != nil:
		if ctx.Err() != nil {
			return x.rec, ctx.Err()
		}
		return x.rec, fmt.Errorf("rolling back (%s): %w", reason, err)
	}
	return x.finish(ctx, RolledBack, reason)
}

// hook invokes a traffic hook with the rollout's description.
func (x *run) hook(ctx context.Context, kind, fn string) error {
	payload, _ := json.Marshal(map[string]string{
		"Hook": kind, "Function": x.rec.Function, "Alias": x.rec.Alias,
		"FromVersion": x.rec.Original.Version, "ToVersion": x.rec.To,
	})
	x.logf("%s hook %s", kind, fn)
	if err := x.Gateway.Invoke(ctx, fn, payload); err != nil {
		return fmt.Errorf("%s hook %s failed: %w", kind, fn, err)
	}
	return nil
}

func (r *Runner) drive(ctx context.Context, x *run) (*Record, error) {
	rec := x.rec
	src := r.Metrics(rec.MetricsURLs)
	if rec.Step < 0 {
		if rec.PreTrafficHook != "" {
			if err := x.hook(ctx, "PreTraffic", rec.PreTrafficHook); err != nil {
				if ctx.Err() != nil {
					return rec, ctx.Err()
				}
				return x.finish(ctx, Aborted, err.Error()+"; the alias was not changed")
			}
		}
		rec.Step, rec.StepStarted = 0, nil
		if err := x.save(ctx); err != nil {
			return rec, err
		}
	}
	for rec.Step < len(rec.Steps) {
		pct := rec.Steps[rec.Step]
		if rec.StepStarted == nil {
			if err := x.write(ctx, AliasAt(rec.Original, rec.To, pct)); errors.Is(err, ErrConflict) {
				return x.finish(ctx, Aborted, err.Error()+"; the rollout leaves it as it is")
			} else if errors.Is(err, ErrRefused) {
				return x.rollback(ctx, fmt.Sprintf("step %d (%d%%): %v", rec.Step+1, pct, err))
			} else if err != nil {
				return rec, err
			}
			base, err := src.Counters(ctx, rec.Function, rec.To)
			if err != nil {
				if ctx.Err() != nil {
					return rec, ctx.Err()
				}
				return x.rollback(ctx, "cannot read the new version's metrics: "+err.Error())
			}
			started := r.now()
			rec.StepStarted, rec.Baseline = &started, base
			if err := x.save(ctx); err != nil {
				return rec, err
			}
			r.logf("step %d of %d: version %s gets %d%% of %s", rec.Step+1, len(rec.Steps), rec.To, pct, rec.Alias)
		}
		if pct == 100 {
			rec.Step, rec.StepStarted = len(rec.Steps), nil
			if err := x.save(ctx); err != nil {
				return rec, err
			}
			break
		}
		h, breach, err := x.watch(ctx, pct, src)
		if err != nil {
			return rec, err
		}
		rec.History = append(rec.History, h)
		if breach != "" {
			return x.rollback(ctx, fmt.Sprintf("step %d (%d%%): %s", rec.Step+1, pct, breach))
		}
		if h.TooLittleTraffic {
			r.logf("step %d (%d%%): too little traffic to judge: %g calls, fewer than %d (%g errors)", rec.Step+1, pct, h.Invocations, rec.MinInvocations, h.Errors)
		} else {
			r.logf("step %d (%d%%): healthy: %g invocations, %g errors, rate %.4g (threshold %.4g)", rec.Step+1, pct, h.Invocations, h.Errors, h.Rate, rec.MaxErrorRate)
		}
		rec.Step, rec.StepStarted = rec.Step+1, nil
		if err := x.save(ctx); err != nil {
			return rec, err
		}
	}
	if rec.PostTrafficHook != "" {
		if err := x.hook(ctx, "PostTraffic", rec.PostTrafficHook); err != nil {
			if ctx.Err() != nil {
				return rec, ctx.Err()
			}
			return x.rollback(ctx, err.Error())
		}
	}
	return x.finish(ctx, Succeeded, "")
}

// watch reads the new version's health until the step's interval is over
// or a threshold is passed (breach names it).
func (x *run) watch(ctx context.Context, pct int, src CountersSource) (h Health, breach string, err error) {
	rec := x.rec
	interval := rec.Plan().Interval
	end := rec.StepStarted.Add(interval)
	poll := x.Poll
	if poll <= 0 {
		poll = min(max(interval/4, 100*time.Millisecond), 5*time.Second)
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	var lastErr error
	read := false
	for {
		c, err := src.Counters(ctx, rec.Function, rec.To)
		switch {
		case ctx.Err() != nil:
			return h, "", ctx.Err()
		case err != nil:
			lastErr = err
			x.logf("step %d: %v", rec.Step+1, err)
		default:
			got, reset := Measure(rec.Baseline, c, rec.MinInvocations)
			if reset {
				x.logf("step %d: a counter went down (a gateway restarted): counting again from now", rec.Step+1)
				rec.Baseline = c
				if err := x.save(ctx); err != nil {
					return h, "", err
				}
				got, _ = Measure(c, c, rec.MinInvocations)
			}
			got.Step, got.Percent = rec.Step+1, pct
			h, read = got, true
			if b := rec.Breach(h); b != "" {
				return h, b, nil
			}
		}
		if err := x.stillOurs(ctx); err != nil {
			return h, "", err
		}
		if !x.now().Before(end) {
			if !read && lastErr != nil {
				return h, "cannot read the new version's metrics: " + lastErr.Error(), nil
			}
			return h, "", nil
		}
		select {
		case <-ctx.Done():
			return h, "", ctx.Err()
		case <-t.C:
		}
	}
}
