// Package usage keeps the metered usage of functions by hour so an
// operator can charge teams back: requests, GB-seconds (memory size ×
// billed duration, 1 ms granularity, as Lambda bills) and provisioned
// GB-seconds, per function version.
//
// Each gateway adds up what it served in memory and flushes it every
// FlushInterval into a JetStream KV bucket (default nimbus_usage) shared by
// every gateway of one NATS system, under one key per function, version,
// hour and gateway ("<fn>.<version>.<yyyymmddhh>.<gateway>"), so no two
// gateways write the same key. A query sums requests and GB-seconds over
// gateways. Provisioned environments are seen by every gateway (they come
// from discovery), so for them a query takes the largest figure any
// gateway recorded for the hour instead of the sum.
//
// Lost on a crash: at most the last FlushInterval of one gateway's counts.
// Kept: the bucket's max age (Config.Retention, default 35 days).
//
// It may import gateway/metrics and the NATS client.
package usage
