package images_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/oci"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/images"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/router"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/specs"
)

// activeImageFunction stores function fn running the pinned image, Active,
// and returns the store, the spec and a reader of its state.
func activeImageFunction(t *testing.T, fn, pinned string) (*functions.Store, *specs.Function, func() *functions.Function) {
	t.Helper()
	ctx := context.Background()
	b, err := versions.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := functions.NewStore(b)
	spec := &specs.Function{Name: fn, MemoryMB: 128, Timeout: "3s", EnvironmentsPerInstance: 1,
		Code: &specs.Code{Image: "registry.example/team/" + fn + ":v1", ResolvedImage: pinned}}
	if _, err := store.Create(ctx, &functions.Function{Name: fn, Spec: spec, Serving: spec,
		State: functions.StateActive, LastUpdateStatus: functions.UpdateSuccessful}); err != nil {
		t.Fatal(err)
	}
	return store, spec, func() *functions.Function {
		t.Helper()
		f, err := store.Get(ctx, fn)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
}

// An instance's pull failure after the function became Active fails the
// function with Lambda's reason code, only while the function serves that
// image and only for failures that are the image's.
func TestPullFailedMarksTheFunction(t *testing.T) {
	ctx := context.Background()
	const img = "registry.example/team/fn@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const other = "registry.example/team/fn@sha256:2222222222222222222222222222222222222222222222222222222222222222"
	store, _, state := activeImageFunction(t, "fn", img)
	unreachable := fmt.Errorf("pulling image %s: %w", img, fmt.Errorf("%w: dial tcp: connection refused", oci.ErrUnavailable))
	for name, c := range map[string]struct {
		fn, image string
		err       error
	}{
		"registry unreachable": {"fn", img, unreachable},
		"another image":        {"fn", other, fmt.Errorf("%w: gone", oci.ErrNotFound)},
		"unpinned image":       {"fn", "", fmt.Errorf("%w: gone", oci.ErrNotFound)},
		"unknown function":     {"nope", img, fmt.Errorf("%w: gone", oci.ErrNotFound)},
	} {
		if changed, err := images.PullFailed(ctx, store, c.fn, c.image, c.err); changed || err != nil {
			t.Errorf("%s: changed %v, %v", name, changed, err)
		}
	}
	if f := state(); f.State != functions.StateActive {
		t.Fatalf("state after failures that are not the image's: %s %s", f.State, f.StateReasonCode)
	}
	for _, c := range []struct {
		err  error
		code string
	}{
		{fmt.Errorf("%w: team/fn: MANIFEST_UNKNOWN", oci.ErrNotFound), functions.ReasonImageDeleted},
		{fmt.Errorf("%w: team/fn: UNAUTHORIZED", oci.ErrAccessDenied), functions.ReasonImageAccessDenied},
		{fmt.Errorf("%w: layer 0 does not match its digest", oci.ErrInvalidImage), functions.ReasonInvalidImage},
	} {
		changed, err := images.PullFailed(ctx, store, "fn", img, c.err)
		if err != nil || !changed {
			t.Fatalf("%v: changed %v, %v", c.err, changed, err)
		}
		f := state()
		if f.State != functions.StateFailed || f.StateReasonCode != c.code || f.StateReason != c.err.Error() || f.LastUpdateStatus != functions.UpdateSuccessful {
			t.Fatalf("%v: state %s %s %q, last update %s", c.err, f.State, f.StateReasonCode, f.StateReason, f.LastUpdateStatus)
		}
		// The same failure again (another instance) writes nothing.
		if changed, err := images.PullFailed(ctx, store, "fn", img, c.err); changed || err != nil {
			t.Fatalf("repeated failure: changed %v, %v", changed, err)
		}
	}
}

type snapCatalog struct{ s *catalog.Snapshot }

func (c snapCatalog) Function(_ context.Context, name string) (*catalog.Function, error) {
	return c.s.Function(name)
}

// A cluster gateway learns that an Active image function's image is gone
// from its instance's invoke answer, which carries the instance's image
// failure header: invoking through the Watch fails the function with that
// reason code. A plain function error changes nothing.
func TestWatchRecordsAnInstancesImageFailure(t *testing.T) {
	ctx := context.Background()
	pinned := "registry.example/team/img@sha256:" + strings.Repeat("ab", 32)
	store, spec, state := activeImageFunction(t, "img", pinned)
	var imageGone atomic.Bool
	handler := func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set(invokeapi.HeaderFunctionError, invokeapi.FunctionErrorUnhandled)
		if imageGone.Load() {
			w.Header().Set(invokeapi.HeaderImageFailure, functions.ReasonImageDeleted)
		}
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"errorType":"ImageDeleted","errorMessage":"pulling image: not found"}`)
	}
	key := []byte("images-test-invoke-key-0123456789")
	src := gatewaytest.NewSource()
	in := gatewaytest.StartInstance(t, "img", catalog.Latest, 1, invokeapi.DeriveSecret(key, "img", catalog.Latest), handler)
	src.Add(in.Discovery("img-1", discovery.GroupOnDemand))
	rt := router.New(router.Config{InvokeKey: key}, src, nil, metrics.New(), nil)
	t.Cleanup(rt.Close)
	go rt.Run(ctx)
	cat := snapCatalog{catalog.NewSnapshot([]*catalog.Function{{Name: "img", Versions: map[string]*specs.Function{catalog.Latest: spec}}})}
	w := images.NewWatch(rt, cat, store, gatewaytest.Logger(t))
	target := router.Target{Function: "img", Version: catalog.Latest, EnvironmentsPerInstance: 1}
	for _, gone := range []bool{false, true} {
		imageGone.Store(gone)
		resp, err := w.Invoke(ctx, target, &invokeapi.Request{Payload: []byte(`{}`), ContentType: "application/json", RequestID: fmt.Sprint("r-", gone)})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.FunctionError != invokeapi.FunctionErrorUnhandled {
			t.Fatalf("invoke: %+v", resp)
		}
		f := state()
		switch {
		case !gone && f.State != functions.StateActive:
			t.Fatalf("a function error without the instance's image failure: %s %s", f.State, f.StateReasonCode)
		case gone && (f.State != functions.StateFailed || f.StateReasonCode != functions.ReasonImageDeleted || !strings.Contains(f.StateReason, pinned)):
			t.Fatalf("after the instance's image failure: %s %s (%s)", f.State, f.StateReasonCode, f.StateReason)
		}
	}
}
