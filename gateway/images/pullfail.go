package images

import (
	"context"
	"fmt"

	"github.com/nimbus-fn/nimbus/driver/oci"
	"github.com/nimbus-fn/nimbus/gateway/functions"
)

// PullFailed feeds an instance's failure to pull image (its digest-pinned
// reference) for function fn back into the function's state: when the
// failure is the image's (oci.Reason: deleted, access refused, unusable)
// and fn still serves that image, the store marks it Failed with Lambda's
// reason code, so GetFunction shows why its invocations fail. A failure
// that says nothing about the image (the registry could not be reached)
// changes nothing. It reports whether the state changed.
func PullFailed(ctx context.Context, store *functions.Store, fn, image string, pullErr error) (bool, error) {
	code := oci.Reason(pullErr)
	if code == "" {
		return false, nil
	}
	changed, err := store.ImageFailed(ctx, fn, image, code, pullErr.Error())
	if err != nil {
		return false, fmt.Errorf("recording the image failure of function %s: %w", fn, err)
	}
	return changed, nil
}
