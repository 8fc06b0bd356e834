package images_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nimbus-fn/nimbus/driver/oci"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/gateway/images"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/specs"
)

// An instance's pull failure after the function became Active fails the
// function with Lambda's reason code, only while the function serves that
// image and only for failures that are the image's; a later update makes
// it Active again (the controller), which this does not undo.
func TestPullFailedMarksTheFunction(t *testing.T) {
	ctx := context.Background()
	b, err := versions.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := functions.NewStore(b)
	const img = "registry.example/team/fn@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const other = "registry.example/team/fn@sha256:2222222222222222222222222222222222222222222222222222222222222222"
	spec := &specs.Function{Name: "fn", Code: &specs.Code{Image: "registry.example/team/fn:v1", ResolvedImage: img}}
	if _, err := store.Create(ctx, &functions.Function{Name: "fn", Spec: spec, Serving: spec,
		State: functions.StateActive, LastUpdateStatus: functions.UpdateSuccessful}); err != nil {
		t.Fatal(err)
	}
	state := func() *functions.Function {
		t.Helper()
		f, err := store.Get(ctx, "fn")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	unreachable := fmt.Errorf("pulling image %s: %w", img, fmt.Errorf("%w: dial tcp: connection refused", oci.ErrUnavailable))
	for name, c := range map[string]struct {
		fn, image string
		err       error
	}{
		"registry unreachable": {"fn", img, unreachable},
		"another image":        {"fn", other, fmt.Errorf("%w: gone", oci.ErrNotFound)},
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
