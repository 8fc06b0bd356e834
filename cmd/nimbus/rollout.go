package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/nimbus-fn/nimbus/gateway/api"
	"github.com/nimbus-fn/nimbus/rollout"
)

func init() {
	register("rollout", command{
		summary: "shift an alias to a new version step by step, rolling back on errors (CodeDeploy-style)",
		run:     runRollout,
	})
	register("rollout status", command{summary: "show an alias's rollout", run: runRolloutStatus})
	register("rollout resume", command{summary: "continue a Running rollout whose CLI stopped", run: runRolloutResume})
	register("rollout abort", command{summary: "stop a Running rollout and restore its alias", run: runRolloutAbort})
}

// rolloutFlags are the flags every rollout command has.
type rolloutFlags struct {
	endpoint string
	alias    string
}

func addRolloutFlags(env *cliEnv, fs *flag.FlagSet) *rolloutFlags {
	f := &rolloutFlags{}
	fs.StringVar(&f.endpoint, "endpoint", endpointFlagDefault(env), "gateway URL (env NIMBUS_ENDPOINT)")
	fs.StringVar(&f.alias, "alias", "live", "the alias to shift")
	return f
}

// metricsFlag is the repeatable --metrics-url.
func metricsHelp() string {
	return "a gateway's Prometheus page to read health from; repeat it for every gateway (each counts only what it served). " +
		"Default: the endpoint's /metrics"
}

func runRollout(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "rollout", "FUNCTION --to VERSION (--strategy NAME | --steps 10,50,100 --interval 2m)")
	rf := addRolloutFlags(env, fs)
	to := fs.String("to", "", "the published version to shift the alias to (required)")
	strategy := fs.String("strategy", "", "a CodeDeploy configuration, any case: "+strings.Join(rollout.StrategyNames(), ", "))
	steps := fs.String("steps", "", "custom percentages of traffic for the new version, rising and ending at 100 (e.g. 10,50,100)")
	interval := fs.Duration("interval", 0, "with --steps: how long each step below 100% is watched (e.g. 2m)")
	rate := fs.String("max-error-rate", "0.05", "roll back when the new version's error rate in a step is above this: a fraction (0.05) or a percentage (5%)")
	throttles := fs.Int("max-throttles", -1, "roll back when the function is throttled more than this many times in a step (-1: not watched)")
	minInv := fs.Int("min-invocations", 10, "calls of the new version a step needs before its error rate is judged")
	pre := fs.String("pre-traffic-hook", "", "function invoked before any traffic shifts; a function error or refused call aborts")
	post := fs.String("post-traffic-hook", "", "function invoked once the new version has 100%; a failure rolls back")
	var metrics listFlag
	fs.Var(&metrics, "metrics-url", metricsHelp())
	pos, err := positional(fs, args, 1, 1)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var plan rollout.Plan
	switch {
	case set["strategy"] && (set["steps"] || set["interval"]):
		return fmt.Errorf("--strategy sets the steps and interval itself: give either --strategy or --steps with --interval")
	case set["strategy"]:
		plan, err = rollout.ParseStrategy(*strategy)
	case set["steps"]:
		plan, err = rollout.ParseSteps(*steps, *interval)
		if err == nil && len(plan.Steps) == 1 && set["interval"] {
			err = fmt.Errorf("--interval does nothing with the single step 100: the alias moves at once")
		}
	case set["interval"]:
		err = fmt.Errorf("--interval goes with --steps")
	default:
		err = fmt.Errorf("give --strategy NAME or --steps 10,50,100 --interval 2m")
	}
	if err != nil {
		return err
	}
	if *to == "" {
		return fmt.Errorf("--to VERSION is required")
	}
	maxRate, err := rollout.ParseRate(*rate)
	if err != nil {
		return err
	}
	if *throttles < -1 {
		return fmt.Errorf("--max-throttles %d: give a count, or -1 not to watch throttles", *throttles)
	}
	if *minInv < 1 {
		return fmt.Errorf("--min-invocations %d: must be at least 1", *minInv)
	}
	urls, err := metricsURLs(rf.endpoint, metrics)
	if err != nil {
		return err
	}
	r, err := newRolloutRunner(env, rf.endpoint)
	if err != nil {
		return err
	}
	rec, err := r.Start(ctx, rollout.Spec{
		Function: pos[0], Alias: rf.alias, To: strings.TrimPrefix(*to, "v"), Plan: plan,
		Thresholds:     rollout.Thresholds{MaxErrorRate: maxRate, MaxThrottles: *throttles, MinInvocations: *minInv},
		PreTrafficHook: *pre, PostTrafficHook: *post, MetricsURLs: urls,
	})
	return rolloutResult(env, rec, err)
}

// metricsURLs are the pages given, or the endpoint's /metrics.
func metricsURLs(endpoint string, given []string) ([]string, error) {
	if len(given) == 0 {
		given = []string{strings.TrimRight(endpoint, "/") + "/metrics"}
	}
	for _, u := range given {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("--metrics-url %q: want an http(s) URL such as http://gateway:9000/metrics", u)
		}
	}
	return given, nil
}

// rolloutResult prints how a run ended and turns it into the exit status.
func rolloutResult(env *cliEnv, rec *rollout.Record, err error) error {
	var out *rollout.Outcome
	switch {
	case err == nil:
		fmt.Fprintf(env.stdout, "rollout of %s:%s succeeded: the alias is on version %s\n", rec.Function, rec.Alias, rec.To)
		return nil
	case errors.As(err, &out):
		printRollout(env, out.Record, nil)
		return err
	case errors.Is(err, context.Canceled) && rec != nil:
		return fmt.Errorf("stopped at step %d of %d; the rollout stays Running: continue it with nimbus rollout resume, or nimbus rollout abort",
			max(rec.Step+1, 0), len(rec.Steps))
	}
	return err
}

func runRolloutResume(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "rollout resume", "FUNCTION")
	rf := addRolloutFlags(env, fs)
	var metrics listFlag
	fs.Var(&metrics, "metrics-url", "replace the recorded metrics pages: "+metricsHelp())
	pos, err := positional(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if _, err := metricsURLs(rf.endpoint, metrics); err != nil {
		return err
	}
	r, err := newRolloutRunner(env, rf.endpoint)
	if err != nil {
		return err
	}
	if len(metrics) > 0 {
		r.override = metrics
	}
	rec, err := r.Resume(ctx, pos[0], rf.alias)
	return rolloutResult(env, rec, err)
}

func runRolloutAbort(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "rollout abort", "FUNCTION")
	rf := addRolloutFlags(env, fs)
	reason := fs.String("reason", "aborted with nimbus rollout abort", "why, as recorded")
	pos, err := positional(fs, args, 1, 1)
	if err != nil {
		return err
	}
	r, err := newRolloutRunner(env, rf.endpoint)
	if err != nil {
		return err
	}
	rec, err := r.Abort(ctx, pos[0], rf.alias, *reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "aborted the rollout of %s:%s to version %s\n", rec.Function, rec.Alias, rec.To)
	return nil
}

func runRolloutStatus(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "rollout status", "FUNCTION")
	rf := addRolloutFlags(env, fs)
	pos, err := positional(fs, args, 1, 1)
	if err != nil {
		return err
	}
	r, err := newRolloutRunner(env, rf.endpoint)
	if err != nil {
		return err
	}
	rec, _, err := r.gw.Record(ctx, pos[0], rf.alias)
	if err != nil {
		return err
	}
	var live *rollout.Health
	if rec.Status == rollout.Running && rec.StepStarted != nil && rec.Step < len(rec.Steps) {
		if c, err := r.Runner.Metrics(rec.MetricsURLs).Counters(ctx, rec.Function, rec.To); err == nil {
			h, _ := rollout.Measure(rec.Baseline, c, rec.MinInvocations)
			live = &h
		} else {
			fmt.Fprintf(env.stderr, "reading the current step's metrics: %v\n", err)
		}
	}
	if a, err := r.gw.Alias(ctx, rec.Function, rec.Alias); err == nil {
		defer fmt.Fprintf(env.stdout, "alias now:   %s\n", describeRolloutAlias(a))
	}
	printRollout(env, rec, live)
	return nil
}

func describeRolloutAlias(a rollout.Alias) string {
	s := "version " + a.Version
	for v, w := range a.Weights {
		s += fmt.Sprintf(", version %s at %g%%", v, w*100)
	}
	return s
}

// printRollout writes a record (and the current step's health so far).
func printRollout(env *cliEnv, rec *rollout.Record, live *rollout.Health) {
	w := env.stdout
	fmt.Fprintf(w, "rollout of %s:%s: %s\n", rec.Function, rec.Alias, rec.Status)
	pcts := make([]string, len(rec.Steps))
	for i, p := range rec.Steps {
		pcts[i] = fmt.Sprintf("%d%%", p)
	}
	fmt.Fprintf(w, "versions:    %s -> %s, steps %s every %s\n", rec.Original.Version, rec.To, strings.Join(pcts, ","), rec.Plan().Interval)
	thr := "not watched"
	if rec.MaxThrottles >= 0 {
		thr = fmt.Sprintf("more than %d rolls back", rec.MaxThrottles)
	}
	fmt.Fprintf(w, "thresholds:  error rate above %.4g rolls back (judged from %d calls); throttles: %s\n", rec.MaxErrorRate, rec.MinInvocations, thr)
	fmt.Fprintf(w, "started:     %s, updated %s\n", rec.Started.Format(time.RFC3339), rec.Updated.Format(time.RFC3339))
	for _, h := range rec.History {
		fmt.Fprintf(w, "step %d (%d%%): %s\n", h.Step, h.Percent, healthLine(h, rec))
	}
	switch {
	case rec.Status != rollout.Running:
	case rec.Step < 0:
		fmt.Fprintln(w, "now:         before the first step (pre-traffic hook)")
	case rec.Step >= len(rec.Steps):
		fmt.Fprintln(w, "now:         version at 100%, post-traffic hook")
	case rec.StepStarted == nil:
		fmt.Fprintf(w, "now:         step %d (%d%%) about to shift\n", rec.Step+1, rec.Steps[rec.Step])
	default:
		fmt.Fprintf(w, "now:         step %d (%d%%) since %s\n", rec.Step+1, rec.Steps[rec.Step], rec.StepStarted.Format(time.RFC3339))
		if live != nil {
			fmt.Fprintf(w, "so far:      %s\n", healthLine(*live, rec))
		}
	}
	if rec.Reason != "" {
		fmt.Fprintf(w, "reason:      %s\n", rec.Reason)
	}
}

func healthLine(h rollout.Health, rec *rollout.Record) string {
	s := fmt.Sprintf("%g invocations, %g errors, error rate %.4g (threshold %.4g), %g throttles", h.Invocations, h.Errors, h.Rate, rec.MaxErrorRate, h.Throttles)
	if h.TooLittleTraffic {
		s += fmt.Sprintf("; too little traffic to judge (fewer than %d calls)", rec.MinInvocations)
	}
	return s
}

// rolloutRunner is a Runner on the gateway's API.
type rolloutRunner struct {
	*rollout.Runner
	gw       *rolloutGateway
	override []string
}

func newRolloutRunner(env *cliEnv, endpoint string) (*rolloutRunner, error) {
	c, err := newMgmtClient(env, endpoint)
	if err != nil {
		return nil, err
	}
	gw := &rolloutGateway{c: c, lc: lambdaClient(env, endpoint)}
	rr := &rolloutRunner{gw: gw}
	client := &http.Client{Timeout: 30 * time.Second}
	rr.Runner = &rollout.Runner{
		Gateway: gw,
		Metrics: func(urls []string) rollout.CountersSource {
			if rr.override != nil {
				urls = rr.override
			}
			return &rollout.Scraper{Client: client, URLs: urls}
		},
		Log: env.stdout,
	}
	return rr, nil
}

// rolloutGateway is rollout.Gateway over the management API.
type rolloutGateway struct {
	c  *mgmtClient
	lc *lambda.Client
}

var _ rollout.Gateway = (*rolloutGateway)(nil)

func rolloutPath(fn, alias string) string {
	return api.SpecPathPrefix + url.PathEscape(fn) + "/rollouts/" + url.PathEscape(alias)
}

type aliasWire struct {
	FunctionVersion string
	Description     string
	RoutingConfig   *struct{ AdditionalVersionWeights map[string]float64 }
	RevisionId      string //nolint:revive // Lambda's name
}

func (w *aliasWire) alias() rollout.Alias {
	a := rollout.Alias{Version: w.FunctionVersion, Description: w.Description, RevisionID: w.RevisionId}
	if w.RoutingConfig != nil && len(w.RoutingConfig.AdditionalVersionWeights) > 0 {
		a.Weights = w.RoutingConfig.AdditionalVersionWeights
	}
	return a
}

// refused marks a client error (4xx) as one retrying will not fix.
func refused(err error) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 {
		return fmt.Errorf("%w: %w", err, rollout.ErrRefused)
	}
	return err
}

func (g *rolloutGateway) Version(ctx context.Context, fn, version string) error {
	err := g.c.call(ctx, http.MethodGet, fnPath(fn)+"/configuration?Qualifier="+url.QueryEscape(version), nil, nil)
	if err != nil {
		return fmt.Errorf("version %s of %s: %w", version, fn, refused(err))
	}
	return nil
}

func (g *rolloutGateway) Alias(ctx context.Context, fn, alias string) (rollout.Alias, error) {
	var w aliasWire
	if err := g.c.call(ctx, http.MethodGet, aliasPath(fn, alias), nil, &w); err != nil {
		return rollout.Alias{}, fmt.Errorf("GetAlias %s of %s: %w", alias, fn, err)
	}
	return w.alias(), nil
}

func (g *rolloutGateway) UpdateAlias(ctx context.Context, fn, alias string, a rollout.Alias, revision string) (rollout.Alias, error) {
	weights := a.Weights
	if weights == nil {
		weights = map[string]float64{}
	}
	var w aliasWire
	err := g.c.call(ctx, http.MethodPut, aliasPath(fn, alias), map[string]any{
		"FunctionVersion": a.Version, "Description": a.Description, "RevisionId": revision,
		"RoutingConfig": map[string]any{"AdditionalVersionWeights": weights},
	}, &w)
	if isCode(err, api.CodePreconditionFailed) {
		return rollout.Alias{}, fmt.Errorf("UpdateAlias %s of %s: %w: %w", alias, fn, err, rollout.ErrConflict)
	}
	if err != nil {
		return rollout.Alias{}, fmt.Errorf("UpdateAlias %s of %s: %w", alias, fn, refused(err))
	}
	return w.alias(), nil
}

func (g *rolloutGateway) Record(ctx context.Context, fn, alias string) (*rollout.Record, string, error) {
	var st api.RolloutState
	err := g.c.call(ctx, http.MethodGet, rolloutPath(fn, alias), nil, &st)
	if isCode(err, api.CodeResourceNotFound) && strings.HasPrefix(err.(*apiError).Message, "No rollout") {
		return nil, "", fmt.Errorf("alias %s of %s: %w", alias, fn, rollout.ErrNoRecord)
	}
	if err != nil {
		return nil, "", fmt.Errorf("GetRollout %s of %s: %w", alias, fn, err)
	}
	if st.Rollout == nil {
		return nil, "", fmt.Errorf("GetRollout %s of %s: the answer holds no rollout", alias, fn)
	}
	return st.Rollout, st.RevisionID, nil
}

func (g *rolloutGateway) PutRecord(ctx context.Context, fn, alias string, r *rollout.Record, revision string) (string, error) {
	var st api.RolloutState
	err := g.c.call(ctx, http.MethodPut, rolloutPath(fn, alias), &api.RolloutState{Rollout: r, RevisionID: revision}, &st)
	if isCode(err, api.CodePreconditionFailed) {
		return "", fmt.Errorf("PutRollout %s of %s: %w", alias, fn, rollout.ErrConflict)
	}
	if err != nil {
		return "", fmt.Errorf("PutRollout %s of %s: %w", alias, fn, err)
	}
	return st.RevisionID, nil
}

func (g *rolloutGateway) Invoke(ctx context.Context, fn string, payload []byte) error {
	out, err := g.lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: payload})
	if err != nil {
		return err
	}
	if out.FunctionError != nil {
		return fmt.Errorf("function error %s: %s", *out.FunctionError, truncate(string(out.Payload), 300))
	}
	if out.StatusCode < 200 || out.StatusCode > 299 {
		return fmt.Errorf("status %d", out.StatusCode)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
