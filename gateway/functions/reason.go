package functions

import "errors"

// Lambda's StateReasonCode / LastUpdateStatusReasonCode values this
// package sets (the SDK's StateReasonCode enum names them).
const (
	ReasonInternalError     = "InternalError"
	ReasonImageDeleted      = "ImageDeleted"
	ReasonImageAccessDenied = "ImageAccessDenied"
	ReasonInvalidImage      = "InvalidImage"
)

// ReasonError is an apply error that names Lambda's reason code for it
// (ImageDeleted when a function's image is gone from its registry, …).
// The controller records Code as the StateReasonCode or
// LastUpdateStatusReasonCode; other errors are InternalError.
type ReasonError struct {
	Code string
	Err  error
}

// Error implements error.
func (e *ReasonError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *ReasonError) Unwrap() error { return e.Err }

// WithReason wraps err (nil stays nil) with Lambda's reason code for it.
func WithReason(code string, err error) error {
	if err == nil {
		return nil
	}
	return &ReasonError{Code: code, Err: err}
}

// ReasonCode is the reason code err carries, ReasonInternalError if none.
func ReasonCode(err error) string {
	var re *ReasonError
	if errors.As(err, &re) && re.Code != "" {
		return re.Code
	}
	return ReasonInternalError
}
