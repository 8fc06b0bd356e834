// Package esmapi serves Lambda's event-source-mapping management API —
// CreateEventSourceMapping, GetEventSourceMapping, ListEventSourceMappings,
// UpdateEventSourceMapping and DeleteEventSourceMapping under
// /2015-03-31/event-source-mappings — in the JSON aws-sdk-go-v2's
// service/lambda and the AWS CLI speak, and keeps the mappings it creates in
// a versions.Backend (Store: one entry per mapping at
// nimbus/mappings/<uuid>, written with check-and-set).
//
// Lister merges the mappings the functions' specs declare with the stored
// ones; it is what the gateway hands the sources engine
// (sources.Deps.Mappings). Spec-declared mappings are listed and shown but
// answer ResourceConflictException to Update and Delete: the spec owns
// them.
//
// Lambda's members map onto specs.EventSource as follows (docs/event-source-
// mappings-api.md has examples):
//
//	Lambda member                                   specs.EventSource
//	SelfManagedEventSource.Endpoints
//	  .KAFKA_BOOTSTRAP_SERVERS + Topics             Type kafka, URL (servers joined by ","), Topics
//	SelfManagedKafkaEventSourceConfig
//	  .ConsumerGroupId                              Group (default "nimbus-<uuid>")
//	EventSourceArn amqp://… | amqps://… + Queues[0] Type rabbitmq, URL, Queue
//	EventSourceArn redis://host:port[/db]
//	  ?stream=KEY[&group=G] (rediss:// too)         Type redis, URL (without stream/group), Stream, Group
//	EventSourceArn nats:STREAM[?subject=S&group=G]  Type nats on the gateway's NATS: Stream, Subject, Group
//	EventSourceArn nats://host:4222[,…]
//	  ?stream=S[&subject=S&group=G]                 Type nats, URL, Stream, Subject, Group
//	EventSourceArn schedule:rate(…) | cron(…)       Type schedule, Schedule (no Input through the API)
//	Enabled (default true)                          Enabled
//	BatchSize                                       BatchSize
//	MaximumBatchingWindowInSeconds                  MaximumBatchingWindow ("Ns")
//	StartingPosition                                StartingFrom
//	StartingPositionTimestamp (epoch seconds)       StartingTimestamp (RFC 3339)
//	MaximumRetryAttempts (-1 = until expiry)        MaximumRetryAttempts
//	MaximumRecordAgeInSeconds (-1 = no limit)       MaximumRecordAge ("Ns"; "" for -1)
//	BisectBatchOnFunctionError                      BisectBatchOnFunctionError
//	FunctionResponseTypes ["ReportBatchItemFailures"] ReportBatchItemFailures
//	FilterCriteria.Filters[].Pattern                Filters
//	ScalingConfig.MaximumConcurrency                MaximumConcurrency
//	ParallelizationFactor (1–10; kafka, redis)      ParallelizationFactor (shown as 1 when unset)
//	DestinationConfig.OnFailure.Destination         OnFailure: nats:<subject> → NATS, kafka:<topic> → Kafka,
//	                                                function:<name> or a function ARN → Function,
//	                                                http(s) URL → Webhook
//
// Other EventSourceArn forms, and members nimbus has no use for
// (TumblingWindowInSeconds,
// SourceAccessConfigurations, KMSKeyArn, OnSuccess, …), are refused with
// InvalidParameterValueException. Settings are defaulted and validated by
// specs.CheckEventSource, exactly as a spec's event_source block.
//
// Shown states: Create answers Creating, Update Updating, Delete Deleting.
// Get and List show the engine's state and last processing result (Status)
// once it runs the mapping's current settings, Creating or Updating until
// then; a gateway without an engine shows Enabled or Disabled from the
// settings.
//
// It may import gateway/**, specs and third-party modules.
package esmapi
