// Package apm is the nimbus APM plugin: it answers the autoscaler's check
// queries with provisioned-concurrency utilisation per function version,
// read from every gateway's Prometheus /metrics.
//
// Gateways are found through Consul (passing instances of the service
// `nimbus-gateway`, via hashicorp/consul/api) or a configured address list.
// From each gateway it reads two gauges, labelled function, version and
// group (provisioned | ondemand):
//
//   - nimbus_environments: environments available. Every gateway sees the
//     same instances, so the value is the maximum across gateways.
//   - nimbus_in_flight: invocations in flight through that gateway, summed
//     across gateways.
//
// Query syntax (see autoscaler/policy): `[<metric>:]<function>/<version>`.
// The default metric, utilization, is in-flight on provisioned environments
// divided by provisioned environments (0 when there are none); in_flight and
// environments give the raw provisioned values. A version nobody serves is 0,
// not an error; an unreachable gateway is skipped, and the query fails only
// when no gateway answered.
//
// Each query's answer is a series: the plugin keeps the samples it took for
// that query (up to `retention`) and returns those inside the requested time
// range plus the fresh sample, so the strategy sees the whole query window.
// One scrape of all gateways serves every query for `cache_ttl`.
//
// It imports autoscaler/policy and autoscaler/sdk, consul/api,
// prometheus/common and hclog.
package apm
