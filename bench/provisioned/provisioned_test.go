package provisionedbench

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
)

// TestProvisionedIsWarmBeforeFirstInvokeAndSpillsOver runs one provisioned
// environment of slowinit in dev mode: it is initialised before any request,
// the first invocation is no cold start, and a second invocation while the
// first holds the environment spills over to an on-demand cold start.
func TestProvisionedIsWarmBeforeFirstInvokeAndSpillsOver(t *testing.T) {
	r := newRig(t, slowFn("warm", 1, 1))

	// Before any request: one provisioned instance, every environment
	// initialised with the provisioned initialization type.
	list, err := r.pool.Instances(t.Context(), "warm", catalog.Latest)
	if err != nil || len(list) != 1 || list[0].Group != discovery.GroupProvisioned {
		t.Fatalf("instances at load time: %+v, %v", list, err)
	}
	prov := r.handle(t, list[0].ID)
	if st := prov.Status(); st.Idle != 1 || st.Started != 1 || st.Invocations != 0 || st.InitializationType != instance.InitProvisioned {
		t.Fatalf("provisioned instance before the first request: %+v", st)
	}

	first, err := r.invoke("warm", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if first.report.InitializationType != instance.InitProvisioned || first.report.Invocations != 1 {
		t.Fatalf("first invocation: %+v", first.report)
	}
	if hasInitDuration(first.logTail) {
		t.Fatalf("first invocation on a provisioned environment reports an init:\n%s", first.logTail)
	}
	if cold := r.counter(t, "nimbus_cold_starts_total", "warm"); cold != 0 {
		t.Fatalf("cold starts after the first invocation = %v, want 0", cold)
	}

	// Hold the provisioned environment, then invoke again: the second
	// request has nowhere to go but a new on-demand instance.
	// The gate is a URL: the function runs isolated and sees no host file.
	var released atomic.Bool
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !released.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer gate.Close()
	release := gate.URL
	held := make(chan answer, 1)
	heldErr := make(chan error, 1)
	go func() {
		a, err := r.invoke("warm", map[string]any{"wait_for": release})
		held <- a
		heldErr <- err
	}()
	eventually(t, 10*time.Second, func() bool { return prov.Status().Busy == 1 }, "the provisioned environment never got the held invocation")

	spill, err := r.invoke("warm", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if spill.report.InitializationType != instance.InitOnDemand || spill.report.Invocations != 1 || !hasInitDuration(spill.logTail) {
		t.Fatalf("spill-over invocation: %+v\n%s", spill.report, spill.logTail)
	}
	if n := r.counter(t, "nimbus_provisioned_spillover_invocations_total", "warm"); n != 1 {
		t.Fatalf("spill-over count = %v, want 1", n)
	}
	if cold := r.counter(t, "nimbus_cold_starts_total", "warm"); cold != 1 {
		t.Fatalf("cold starts after spill-over = %v, want 1", cold)
	}

	released.Store(true)
	a := <-held
	if err := <-heldErr; err != nil {
		t.Fatal(err)
	}
	if a.report.InitializationType != instance.InitProvisioned || a.report.PID != first.report.PID || a.report.Invocations != 2 || hasInitDuration(a.logTail) {
		t.Fatalf("held invocation did not run warm on the provisioned environment: %+v (first %+v)\n%s", a.report, first.report, a.logTail)
	}
	if n := r.counter(t, "nimbus_provisioned_spillover_invocations_total", "warm"); n != 1 {
		t.Fatalf("spill-over count after the provisioned run = %v, want 1", n)
	}
	if n := r.counter(t, "nimbus_invocations_total", "warm"); n != 3 {
		t.Fatalf("invocations = %v, want 3", n)
	}
}

// TestProvisionedReplacedOnSpecChange edits the spec (as nimbus dev's reload
// does): the version gets a new, initialised provisioned instance and the
// outdated one is stopped, so the next invocation runs warm on the new code.
func TestProvisionedReplacedOnSpecChange(t *testing.T) {
	r := newRig(t, slowFn("edit", 1, 1))
	before, err := r.invoke("edit", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	old, _ := r.pool.Instances(t.Context(), "edit", catalog.Latest)
	if len(old) != 1 {
		t.Fatalf("instances before the edit: %+v", old)
	}

	edited := slowFn("edit", 1, 1)
	edited.Environment = map[string]string{"SLOWINIT_MS": "50"}
	r.catalog.set(edited)
	r.pool.Refresh(t.Context())

	list, _ := r.pool.Instances(t.Context(), "edit", catalog.Latest)
	if len(list) != 1 || list[0].ID == old[0].ID || list[0].Group != discovery.GroupProvisioned {
		t.Fatalf("instances after the edit: %+v (before %+v)", list, old)
	}
	if _, ok := r.launcher.local.Get(old[0].ID); ok {
		t.Fatalf("outdated provisioned instance %s still runs", old[0].ID)
	}
	if st := r.handle(t, list[0].ID).Status(); st.Idle != 1 || st.Invocations != 0 {
		t.Fatalf("replacement before its first request: %+v", st)
	}
	// The router learns of the swap at its next discovery (its refresh loop
	// runs every second); wait for it so the invocation below cannot race it.
	eventually(t, 10*time.Second, func() bool {
		ids := r.server.Router().Instances("edit", catalog.Latest)
		return len(ids) == 1 && ids[0].ID == list[0].ID
	}, "the router never saw the replacement")
	after, err := r.invoke("edit", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	// The new process shows in its init time (50 ms, the edited spec's);
	// pids cannot tell: each sandboxed environment numbers its own from 1.
	if after.report.InitMs != 50 || before.report.InitMs == 50 || after.report.InitializationType != instance.InitProvisioned || hasInitDuration(after.logTail) {
		t.Fatalf("after the edit: %+v (before %+v)\n%s", after.report, before.report, after.logTail)
	}
	if cold := r.counter(t, "nimbus_cold_starts_total", "edit"); cold != 0 {
		t.Fatalf("cold starts across the edit = %v, want 0", cold)
	}
}
