// Package scalebench simulates a large installation to show the gateway's
// routing and scaling design holds past one machine: many functions, many
// gateways, bursty traffic, with Nomad's scheduling simulated.
//
// Real parts: one gateway/router per simulated gateway, each over its own
// gateway/cluster Scaler (the multi-gateway check-and-set rules), all
// sharing one simulated Nomad (job counts with modify indexes, scaling
// events, and instances that start after a random scheduling delay and
// stop after a scale-in) and one discovery view of the started instances.
// Each instance is a loopback HTTP server speaking the instance invoke
// API (driver/invokeapi: invoke, status, health) with one environment and
// a short simulated function duration.
//
// The benchmark prints, for the run: calls and their p50/p99 latency,
// cold starts, errors, Nomad scale API calls per second (reads and
// writes), the routers' heap for tracking every function before traffic
// and the process heap under traffic, and CPU per call through the routers
// next to the same calls made straight to an instance (the baseline,
// measured in the same run).
//
// Test-only package: it may import anything.
package scalebench
