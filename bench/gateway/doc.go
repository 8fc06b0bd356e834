// Package gatewaybench measures the gateway's warm synchronous invoke path
// against baselines measured in the same run: the same instance called
// directly through driver/invokeapi (what the gateway adds), and a plain
// loopback HTTP echo behind httputil.ReverseProxy (the floor: what any proxy
// hop costs). Each runs at 1, 16 and 64 concurrent clients and the table
// gives p50, p99 and requests per second. A throttling run drives a function
// with reserved concurrency past its limit and checks that every answer is
// 200 or 429.
//
// The function is the real aws-lambda-go echo (internal/testfn) in a real
// instance (driver/instance) in this process; the gateway runs in dev mode
// without SigV4, so the numbers are the routing path, not signing.
//
// Test-only package: it may import gateway/**, driver/**, internal/testfn.
package gatewaybench
