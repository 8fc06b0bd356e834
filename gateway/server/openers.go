package server

import (
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/gateway/sources/kafka"
	"github.com/nimbus-fn/nimbus/gateway/sources/natsjs"
	"github.com/nimbus-fn/nimbus/gateway/sources/rabbitmq"
	"github.com/nimbus-fn/nimbus/gateway/sources/redis"
	"github.com/nimbus-fn/nimbus/gateway/sources/schedule"
	"github.com/nimbus-fn/nimbus/specs"
)

// DefaultOpeners are the event-source types built into the gateway.
func DefaultOpeners() map[string]sources.Opener {
	return map[string]sources.Opener{
		specs.SourceKafka:    kafka.Open,
		specs.SourceNATS:     natsjs.Open,
		specs.SourceRedis:    redis.Open,
		specs.SourceRabbitMQ: rabbitmq.Open,
		specs.SourceSchedule: schedule.Open,
	}
}
