// Package server assembles and runs one gateway: configuration checked
// before listening, the router over the injected discovery source and
// scaler, the API (Invoke API and function URLs), the async queue (NATS
// connected in Start, workers run by Serve and stopped before the router
// drains, the status API at /nimbus/v1/invocations/ and
// /nimbus/v1/functions/{fn}/invocations), a health endpoint,
// Prometheus /metrics, the artifact store at /nimbus/v1/artifacts/ (a
// JetStream object store on the NATS the async queue uses, collected when
// Deps names what is still referenced), registration hooks (Consul in a
// cluster) and a graceful shutdown that deregisters first and then drains
// in-flight invocations. Cluster and local adapters come in through Deps;
// the logic is the same in both modes.
//
// It may import gateway/**, specs and driver/invokeapi.
package server
