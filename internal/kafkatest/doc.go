// Package kafkatest runs a real Kafka protocol cluster for tests: franz-go's
// kfake, in-process, listening on loopback ports chosen by the kernel, with
// the topics a test asks for created up front and the cluster closed on test
// cleanup. Clients talk to it with the real franz-go client over TCP, so
// group membership, rebalances, commits and fetches go through the wire
// protocol exactly as against a broker.
//
// The kfakeserver command runs the same cluster in its own process, for tests
// that kill or restart the consumer while Kafka keeps its data.
//
// It is test support only: production packages must not import it. It may
// import anything.
package kafkatest
