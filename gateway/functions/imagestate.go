package functions

import (
	"context"
	"errors"
)

// ImageFailed records that an instance could not pull image (a
// digest-pinned reference) for function name: State Failed with Lambda's
// reason code for it (ReasonImageDeleted, ReasonImageAccessDenied,
// ReasonInvalidImage) and reason, as Lambda does when a function's image
// goes from its registry after the function became Active. It reports
// whether it changed the state. A function the store does not hold, or
// whose serving revision runs another image (an update came since), is
// left alone, and so is one already Failed for that reason (the first
// report's words stay); the next successful update makes the function Active again.
func (s *Store) ImageFailed(ctx context.Context, name, image, code, reason string) (bool, error) {
	runs := func(f *Function) bool {
		return image != "" && f.Serving != nil && f.Serving.IsImage() && f.Serving.Code.PinnedImage() == image
	}
	f, err := s.Get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !runs(f) || (f.State == StateFailed && f.StateReasonCode == code) {
		return false, nil
	}
	changed := false
	err = s.SetStatus(ctx, name, f.RevisionID, func(n *Function) {
		if changed = runs(n); changed {
			n.State, n.StateReason, n.StateReasonCode = StateFailed, reason, code
		}
	})
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return changed, err
}
