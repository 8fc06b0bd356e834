// Package api is the gateway's HTTP surface for functions: the Lambda Invoke
// API (`POST /2015-03-31/functions/{name}/invocations` with names, partial
// and full ARNs, qualifiers), InvokeWithResponseStream
// (`POST /2021-11-15/functions/{name}/response-streaming-invocations`, the
// response as application/vnd.amazon.eventstream PayloadChunk events and a
// closing InvokeComplete; stream.go), a few control-plane reads (GetFunction,
// ListFunctions, GetAccountSettings), function URLs (payload format 2.0,
// response inference, CORS, NONE and AWS_IAM auth, BUFFERED and
// RESPONSE_STREAM), and Lambda's error catalogue (errors.go) in the wire
// shape aws-sdk-go-v2 parses.
//
// InvocationType Event is validated exactly like a synchronous call (unknown
// function or qualifier 404, non-JSON 400), refused over 1 MB (413), then
// handed to the Async enqueuer (the durable queue, gateway/queue) and
// answered 202 with x-amzn-RequestId once it is stored; a full queue is 429.
//
// Function URLs are reached two ways: host-based, `<function>.<url_domain>`
// (what DNS or Consul points at), and path-based,
// `/url/<function>/<path…>` on any gateway address (handy on localhost); the
// function sees `/<path…>` as rawPath either way. A path-based URL shares
// the gateway's origin with the web console: on a gateway with access keys
// its answers carry PathURLSandbox, so the page runs in an opaque origin
// and its scripts can neither read the console's answers nor use its
// session; host-based URLs are origins of their own.
//
// config_api.go serves reserved concurrency, provisioned concurrency
// configs (per version or alias, kept in the versions store; their status
// comes from Management.Provisioned, what actually runs), function URL
// configs (the spec's url block, one per function), tags (the spec's tags,
// addressed by function ARN) and GetAccountSettings. Every write changes
// the stored $LATEST through the same path as UpdateFunctionConfiguration.
//
// Versions, aliases and layers (versions_api.go) are served from the
// versions store: PublishVersion snapshots the function store's $LATEST, or
// zips the code directory of a function a spec file declares (bundle) so
// that $LATEST keeps running the directory; aliases carry a RevisionId of
// their own; deleted layer versions stay resolvable for the versions that
// pinned them.
//
// rollout_api.go is a Nimbus extension next to GetFunctionSpec: the record
// of an alias's rollout (nimbus rollout), GET/PUT/DELETE
// /nimbus/v1/functions/{fn}/rollouts/{alias}, admin-scoped like every
// management route and written with check-and-set on its RevisionId.
//
// It may import gateway/**, specs, driver/invokeapi, bundle and the rollout
// contract leaf.
package api
