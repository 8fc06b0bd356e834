package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/internal/testfn"
	"github.com/nimbus-fn/nimbus/rollout"
)

// rolloutSpec: fn is the function rolled out (its code dir is swapped
// between publishes), hookok and hookfail are traffic hooks.
const rolloutSpec = `function "fn" {
  runtime = "provided.al2023"
  code { dir = "code" }
}

function "hookok" {
  runtime = "provided.al2023"
  code { dir = "ok" }
}

function "hookfail" {
  runtime = "provided.al2023"
  code { dir = "fail" }
}
`

func copyBootstrap(t *testing.T, fn, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testfn.Dir(t, fn), "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Write a new file (not over the old one): a running instance keeps
	// its executable, and publish snapshots what is there now.
	tmp := filepath.Join(dir, ".bootstrap.new")
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "bootstrap")); err != nil {
		t.Fatal(err)
	}
}

// traffic invokes fn:live from a few goroutines until stopped, counting
// the calls each version ran and its function errors.
type traffic struct {
	mu       sync.Mutex
	ran      map[string]int
	failed   map[string]int
	other    []string
	stop     context.CancelFunc
	finished sync.WaitGroup
}

func startTraffic(endpoint string) *traffic {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &traffic{ran: map[string]int{}, failed: map[string]int{}, stop: cancel}
	client := &http.Client{Timeout: 30 * time.Second}
	for range 3 {
		tr.finished.Add(1)
		go func() {
			defer tr.finished.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/2015-03-31/functions/fn/invocations?Qualifier=live", strings.NewReader(`{"n":1}`))
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				_ = resp.Body.Close()
				v := resp.Header.Get("X-Amz-Executed-Version")
				tr.mu.Lock()
				switch {
				case resp.StatusCode != http.StatusOK:
					tr.other = append(tr.other, resp.Status)
				case resp.Header.Get("X-Amz-Function-Error") != "":
					tr.failed[v]++
				default:
					tr.ran[v]++
				}
				tr.mu.Unlock()
			}
		}()
	}
	return tr
}

func (tr *traffic) counts() (ran, failed map[string]int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	ran, failed = map[string]int{}, map[string]int{}
	for k, v := range tr.ran {
		ran[k] = v
	}
	for k, v := range tr.failed {
		failed[k] = v
	}
	return ran, failed
}

func (tr *traffic) end() {
	tr.stop()
	tr.finished.Wait()
}

// TestRolloutUnderNimbusDev: under a real nimbus dev with real invocations
// of fn:live running all along, a failing version rolls back on its own
// (non-zero exit, the alias exactly as before), a good one ends at 100%, a
// CLI stopped mid-rollout is resumed, abort restores the alias (and stops
// the CLI driving it), and a failing pre-traffic hook never shifts.
func TestRolloutUnderNimbusDev(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"nimbus.hcl": rolloutSpec})
	copyBootstrap(t, "echo", filepath.Join(dir, "code"))
	copyBootstrap(t, "echo", filepath.Join(dir, "ok"))
	copyBootstrap(t, "error", filepath.Join(dir, "fail"))
	environ := map[string]string{envStateDir: filepath.Join(dir, "state")}
	dev := startDev(t, environ, dir)

	publish := func(want string) {
		t.Helper()
		if code, out, errOut := specCLI(t, "", environ, "publish", "fn", dir); code != 0 || !strings.Contains(out, "published fn version "+want) {
			t.Fatalf("publish: exit %d\n%s\n%s", code, out, errOut)
		}
	}
	publish("1") // echo
	copyBootstrap(t, "error", filepath.Join(dir, "code"))
	publish("2") // fails every call
	copyBootstrap(t, "echo", filepath.Join(dir, "code"))
	publish("3") // echo again
	ep := []string{"--endpoint", dev.endpoint}
	cli := func(args ...string) result {
		t.Helper()
		return runCLI(t, environ, append(args, ep...)...)
	}
	if r := cli("alias", "set", "--description", "prod", "fn", "live", "1"); r.code != 0 {
		t.Fatalf("alias set: %d %s", r.code, r.stderr)
	}
	gw, err := newRolloutRunner(&cliEnv{getenv: func(k string) string { return environ[k] }}, dev.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	alias := func() rollout.Alias {
		t.Helper()
		a, err := gw.gw.Alias(ctx, "fn", "live")
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	before := alias()
	if !before.Same(rollout.Alias{Version: "1", Description: "prod"}) {
		t.Fatalf("alias before: %+v", before)
	}

	tr := startTraffic(dev.endpoint)
	defer tr.end()
	gatewaytest.Eventually(t, 60*time.Second, func() bool { ran, _ := tr.counts(); return ran["1"] >= 5 },
		"fn:live to serve version 1 (log:\n%s)", dev.stderr)

	// Refusals before anything is recorded.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--to", "9", "--strategy", "allatonce"}, "ResourceNotFoundException"},
		{[]string{"--to", "1", "--strategy", "allatonce"}, "already on version 1"},
		{[]string{"--to", "2", "--strategy", "canary"}, "unknown strategy"},
		{[]string{"--to", "2", "--strategy", "allatonce", "--steps", "10,100"}, "either --strategy or --steps"},
		{[]string{"--to", "2", "--steps", "10,50", "--interval", "1s"}, "ends with the new version at 100%"},
		{[]string{"--to", "2", "--steps", "100", "--interval", "1s"}, "--interval does nothing"},
		{[]string{"--to", "2", "--strategy", "allatonce", "--max-error-rate", "5"}, "give a fraction"},
		{[]string{"--to", "2", "--strategy", "allatonce", "--metrics-url", "file:///x"}, "want an http(s) URL"},
	} {
		r := cli(append([]string{"rollout", "fn"}, tc.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("rollout %v: exit %d %s, want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if _, _, err := gw.gw.Record(ctx, "fn", "live"); !errors.Is(err, rollout.ErrNoRecord) {
		t.Fatalf("a refused rollout left a record: %v", err)
	}

	// 1. Version 2 fails every call: rolled back with the numbers.
	r := cli("rollout", "fn", "--alias", "live", "--to", "2", "--steps", "20,50,100", "--interval", "1s",
		"--max-error-rate", "10%", "--min-invocations", "3")
	if r.code == 0 || !strings.Contains(r.stdout, "rollout of fn:live: RolledBack") || !strings.Contains(r.stderr, "is above the threshold 0.1") ||
		!strings.Contains(r.stderr, "errors in") {
		t.Fatalf("failing version: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("failing rollout:\n%s%s", r.stdout, r.stderr)
	if got := alias(); !got.Same(before) || got.RevisionID == before.RevisionID {
		t.Fatalf("after the rollback the alias is %+v, want exactly %+v (rewritten)", got, before)
	}
	if _, failed := tr.counts(); failed["2"] == 0 {
		t.Fatalf("no call ran version 2 during its rollout: the weights never shifted")
	}
	st := cli("rollout", "status", "fn", "--alias", "live")
	if st.code != 0 || !strings.Contains(st.stdout, "RolledBack") || !strings.Contains(st.stdout, "alias now:   version 1\n") {
		t.Fatalf("status after rollback: %d\n%s%s", st.code, st.stdout, st.stderr)
	}

	// 2. Version 3 is good: it ends at 100% with the post-traffic hook run.
	r = cli("rollout", "fn", "--alias", "live", "--to", "3", "--steps", "20,50,100", "--interval", "1s",
		"--max-error-rate", "0.1", "--min-invocations", "3", "--post-traffic-hook", "hookok", "--pre-traffic-hook", "hookok")
	if r.code != 0 || !strings.Contains(r.stdout, "succeeded: the alias is on version 3") {
		t.Fatalf("good version: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("good rollout:\n%s%s", r.stdout, r.stderr)
	if got := alias(); !got.Same(rollout.Alias{Version: "3", Description: "prod"}) {
		t.Fatalf("after the rollout the alias is %+v, want version 3 alone", got)
	}
	gatewaytest.Eventually(t, 30*time.Second, func() bool { ran, _ := tr.counts(); return ran["3"] > 0 }, "calls to run version 3")

	// 3. A failing pre-traffic hook aborts before any shift.
	onThree := alias()
	r = cli("rollout", "fn", "--to", "1", "--strategy", "AllAtOnce", "--pre-traffic-hook", "hookfail")
	if r.code == 0 || !strings.Contains(r.stderr, "PreTraffic hook hookfail failed") || !strings.Contains(r.stdout, "Aborted") {
		t.Fatalf("failing pre-traffic hook: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := alias(); got.RevisionID != onThree.RevisionID {
		t.Fatalf("a failed pre-traffic hook changed the alias: %+v", got)
	}

	// A failing post-traffic hook rolls back from 100%.
	r = cli("rollout", "fn", "--to", "1", "--strategy", "AllAtOnce", "--post-traffic-hook", "hookfail")
	if r.code == 0 || !strings.Contains(r.stderr, "PostTraffic hook hookfail failed") || !strings.Contains(r.stdout, "RolledBack") {
		t.Fatalf("failing post-traffic hook: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := alias(); !got.Same(onThree) || got.RevisionID == onThree.RevisionID {
		t.Fatalf("after a failed post-traffic hook the alias is %+v, want %+v rewritten", got, onThree)
	}

	// 4. A CLI stopped mid-rollout leaves it Running; another rollout is
	// refused; resume finishes it.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan result, 1)
	go func() {
		out, errb := &syncBuffer{}, &syncBuffer{}
		env := &cliEnv{stdin: strings.NewReader(""), stdout: out, stderr: errb, getenv: func(k string) string { return environ[k] }}
		code := run(runCtx, env, append([]string{"rollout", "fn", "--to", "1", "--steps", "20,50,100", "--interval", "1s", "--min-invocations", "3"}, ep...))
		done <- result{code, out.String(), errb.String()}
	}()
	gatewaytest.Eventually(t, 30*time.Second, func() bool {
		rec, _, err := gw.gw.Record(ctx, "fn", "live")
		return err == nil && rec.To == "1" && rec.StepStarted != nil
	}, "the rollout to version 1 to start its first step")
	cancel()
	var stopped result
	select {
	case stopped = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the rollout did not stop within 60s of its context ending")
	}
	if stopped.code == 0 || !strings.Contains(stopped.stderr, "stays Running") {
		t.Fatalf("stopped rollout: exit %d\n%s\n%s", stopped.code, stopped.stdout, stopped.stderr)
	}
	if got := alias(); got.Version != "3" || got.Weights["1"] == 0 {
		t.Fatalf("the stopped rollout's alias is %+v, want version 3 with a share for 1", got)
	}
	r = cli("rollout", "fn", "--to", "2", "--strategy", "allatonce")
	if r.code == 0 || !strings.Contains(r.stderr, "is Running since") {
		t.Fatalf("a second rollout of a Running alias: exit %d\n%s", r.code, r.stderr)
	}
	st = cli("rollout", "status", "fn")
	if st.code != 0 || !strings.Contains(st.stdout, "rollout of fn:live: Running") || !strings.Contains(st.stdout, "now:") {
		t.Fatalf("status of the stopped rollout: %d\n%s%s", st.code, st.stdout, st.stderr)
	}
	// The same definition written again (a CLI that died between its
	// alias write and its record write leaves a revision the record does
	// not know): still one of the rollout's, so resume takes it over.
	mid := alias()
	if _, err := gw.gw.UpdateAlias(ctx, "fn", "live", mid, mid.RevisionID); err != nil {
		t.Fatal(err)
	}
	if got := alias(); got.RevisionID == mid.RevisionID {
		t.Fatal("rewriting the alias kept its revision")
	}
	r = cli("rollout", "resume", "fn")
	if r.code != 0 || !strings.Contains(r.stdout, "resuming the rollout") || !strings.Contains(r.stdout, "succeeded: the alias is on version 1") {
		t.Fatalf("resume: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := alias(); !got.Same(rollout.Alias{Version: "1", Description: "prod"}) {
		t.Fatalf("after resume the alias is %+v", got)
	}

	// 5. Abort restores the alias and stops the CLI driving the rollout.
	onOne := alias()
	runCtx, cancel = context.WithCancel(ctx)
	defer cancel()
	go func() {
		out, errb := &syncBuffer{}, &syncBuffer{}
		env := &cliEnv{stdin: strings.NewReader(""), stdout: out, stderr: errb, getenv: func(k string) string { return environ[k] }}
		code := run(runCtx, env, append([]string{"rollout", "fn", "--to", "3", "--strategy", "Canary10Percent30Minutes"}, ep...))
		done <- result{code, out.String(), errb.String()}
	}()
	gatewaytest.Eventually(t, 30*time.Second, func() bool {
		rec, _, err := gw.gw.Record(ctx, "fn", "live")
		return err == nil && rec.To == "3" && rec.Status == rollout.Running && rec.StepStarted != nil
	}, "the canary to start")
	if got := alias(); got.Weights["3"] != 0.1 {
		t.Fatalf("canary alias: %+v, want 10%% on version 3", got)
	}
	r = cli("rollout", "abort", "fn", "--reason", "test says stop")
	if r.code != 0 || !strings.Contains(r.stdout, "aborted the rollout of fn:live") {
		t.Fatalf("abort: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := alias(); !got.Same(onOne) {
		t.Fatalf("after abort the alias is %+v, want %+v", got, onOne)
	}
	select {
	case stopped = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the aborted rollout's CLI did not stop")
	}
	if stopped.code == 0 || !strings.Contains(stopped.stderr, "Aborted: test says stop") {
		t.Fatalf("the aborted rollout's CLI: exit %d\n%s\n%s", stopped.code, stopped.stdout, stopped.stderr)
	}
	if r := cli("rollout", "abort", "fn"); r.code == 0 || !strings.Contains(r.stderr, "is Aborted") {
		t.Fatalf("a second abort: exit %d %s", r.code, r.stderr)
	}
	// 6. Someone else edits the alias mid-rollout: abort records it and
	// leaves their alias alone.
	runCtx, cancel = context.WithCancel(ctx)
	defer cancel()
	go func() {
		out, errb := &syncBuffer{}, &syncBuffer{}
		env := &cliEnv{stdin: strings.NewReader(""), stdout: out, stderr: errb, getenv: func(k string) string { return environ[k] }}
		code := run(runCtx, env, append([]string{"rollout", "fn", "--to", "3", "--strategy", "canary10percent30minutes"}, ep...))
		done <- result{code, out.String(), errb.String()}
	}()
	gatewaytest.Eventually(t, 30*time.Second, func() bool {
		rec, _, err := gw.gw.Record(ctx, "fn", "live")
		return err == nil && rec.Status == rollout.Running && rec.StepStarted != nil
	}, "the second canary to start")
	if r := cli("alias", "set", "--description", "hotfix", "fn", "live", "3"); r.code != 0 {
		t.Fatalf("alias set: %d %s", r.code, r.stderr)
	}
	hotfix := alias()
	if r := cli("rollout", "abort", "fn"); r.code != 0 {
		t.Fatalf("abort after a concurrent edit: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := alias(); got.RevisionID != hotfix.RevisionID {
		t.Fatalf("abort clobbered a concurrent edit: %+v, was %+v", got, hotfix)
	}
	st = cli("rollout", "status", "fn")
	if !strings.Contains(st.stdout, "was changed by someone else") || !strings.Contains(st.stdout, "not restored") {
		t.Fatalf("status after a concurrent edit:\n%s", st.stdout)
	}
	select {
	case stopped = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the second canary's CLI did not stop")
	}
	if stopped.code == 0 {
		t.Fatalf("the second canary's CLI: exit 0\n%s", stopped.stdout)
	}

	// 7. The record's API: check-and-set, validation, delete at a revision.
	rec, rev, err := gw.gw.Record(ctx, "fn", "live")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gw.gw.PutRecord(ctx, "fn", "live", rec, ""); !errors.Is(err, rollout.ErrConflict) {
		t.Fatalf("create over an existing record: %v, want a conflict", err)
	}
	bad := *rec
	bad.Steps = []int{50}
	if _, err := gw.gw.PutRecord(ctx, "fn", "live", &bad, rev); !isCode(err, "InvalidParameterValueException") {
		t.Fatalf("an invalid record: %v", err)
	}
	if err := gw.gw.c.call(ctx, http.MethodDelete, rolloutPath("fn", "live")+"?RevisionId=1", nil, nil); !isCode(err, "PreconditionFailedException") {
		t.Fatalf("delete at a stale revision: %v", err)
	}
	if err := gw.gw.c.call(ctx, http.MethodDelete, rolloutPath("fn", "live")+"?RevisionId="+rev, nil, nil); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, _, err := gw.gw.Record(ctx, "fn", "live"); !errors.Is(err, rollout.ErrNoRecord) {
		t.Fatalf("after delete: %v", err)
	}
	if r := cli("rollout", "status", "fn"); r.code == 0 || !strings.Contains(r.stderr, "no rollout recorded") {
		t.Fatalf("status without a record: exit %d %s", r.code, r.stderr)
	}

	tr.end()
	if _, _, ot := func() (map[string]int, map[string]int, []string) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return nil, nil, tr.other
	}(); len(ot) > 0 {
		t.Errorf("calls of fn:live answered other than 200 during the rollouts: %v", ot)
	}
}
