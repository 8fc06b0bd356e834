// Package router admits invocations and places them on execution
// environments. It keeps one pool per function version (the instances a
// discovery.Source reports, each hosting some environments), counts what is
// in flight through this gateway, prefers provisioned instances and spills
// over to on-demand ones (counting each spill-over in
// nimbus_provisioned_spillover_invocations_total), and parks requests in a
// bounded FIFO wait queue while a Scaler adds on-demand capacity (scale from
// zero included). Idle on-demand capacity is lowered after the configured
// idle time. Run refreshes every pool each RefreshInterval: discovery reads
// and instance status calls run RefreshConcurrency at a time, each bounded
// by StatusTimeout, so unreachable instances delay a round (and with it
// scale-in) by about one timeout, not one per instance.
//
// Admission follows Lambda: reserved concurrency caps a function, the
// account limit caps the unreserved pool (never below its minimum), and every
// refusal is a *ThrottleError carrying Lambda's TooManyRequestsException
// reason — never a 5xx. Those counts are this gateway's; with a Shared set
// (SetShared: gateway/slots, leases in the NATS the gateways share) an
// invocation of a function with reserved concurrency must also take one of
// the function's slots across all gateways, so N gateways together admit
// the reservation, not N times it; when the shared state cannot be reached
// the invocation is refused (ErrShared), never admitted unchecked. The
// unreserved pool (the account limit less the reservations) is shared the
// same way when asked (SetShared's account), its slots named
// UnreservedSlots; otherwise it stays per gateway.
//
// A Scaler that answers *LaunchError (capacity cannot start: broken code, a
// missing layer) fails the version's waiting requests with it at once,
// unless a live instance will still serve them.
//
// Lock rules: one mutex (Router.mu) guards every pool, instance and
// function counter; methods suffixed Locked must be called with it held.
// Network calls (invoke, status, scaler, discovery) are never made with it
// held.
//
// It may import gateway/** and driver/invokeapi.
package router
