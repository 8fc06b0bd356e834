// Package asyncbench measures asynchronous invocation against a baseline
// measured in the same run on the same embedded JetStream server:
//
//   - raw JetStream publish: PublishMsg with an acknowledgement, on a file
//     stream shaped like the queue's (the floor: what durably storing one
//     event costs);
//   - durable enqueue: Event invocations through the Invoke API (HTTP,
//     validation, catalog lookup, acknowledged publish, 202);
//   - drain: the workers invoking the real aws-lambda-go echo function
//     (internal/testfn) in a real instance (driver/instance) through the
//     router until the queue is empty.
//
// Enqueue and raw publish run at 1, 16 and 64 concurrent clients with the
// workers stopped (so the drain does not compete); the drain runs after.
// The gateway runs in dev mode without SigV4.
//
// Test-only package: it may import gateway/**, driver/**, internal/testfn.
package asyncbench
