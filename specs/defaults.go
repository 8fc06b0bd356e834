package specs

// Defaults Parse fills in, so the canonical form is complete. Decode applies
// the same defaults, so hand-written canonical JSON may leave them out.
const (
	defaultMemoryMB                = 128
	defaultTimeout                 = "3s"
	defaultEphemeralStorageMB      = 512
	defaultEnvironmentsPerInstance = 1
	defaultTargetUtilization       = 0.7
	defaultScheduleDuration        = "1h0m0s"
	defaultScheduleTimezone        = "UTC"
	defaultURLAuth                 = AuthNone
	defaultInvokeMode              = InvokeModeBuffered
	defaultAsyncMaxRetries         = 2
	defaultMaxEventAge             = "6h0m0s"
	defaultBatchSize               = 10
	defaultStartingPosition        = "LATEST"
	defaultConstraintOperator      = "="
)

// Values of enumerated fields.
const (
	AuthNone                 = "NONE"
	AuthIAM                  = "AWS_IAM"
	InvokeModeBuffered       = "BUFFERED"
	InvokeModeResponseStream = "RESPONSE_STREAM"
	QualifierLatest          = "$LATEST"
	NetworkHost              = "host"
	NetworkNone              = "none"

	SourceNATS     = "nats"
	SourceKafka    = "kafka"
	SourceRedis    = "redis"
	SourceSchedule = "schedule"
	SourceRabbitMQ = "rabbitmq"
)

// DefaultGroup is the consumer group (NATS durable, Kafka group, Redis
// consumer group) of an event source that names none.
func DefaultGroup(function, source string) string {
	return "nimbus-" + function + "-" + source
}

// applyDefaults fills every unset field that has a default.
func applyDefaults(fn *Function) {
	if fn.MemoryMB == 0 {
		fn.MemoryMB = defaultMemoryMB
	}
	if fn.Timeout == "" {
		fn.Timeout = defaultTimeout
	}
	if fn.EphemeralStorageMB == 0 {
		fn.EphemeralStorageMB = defaultEphemeralStorageMB
	}
	if fn.EnvironmentsPerInstance == 0 {
		fn.EnvironmentsPerInstance = defaultEnvironmentsPerInstance
	}
	if fn.Network == NetworkHost {
		fn.Network = "" // the default: stored as absent, so no canonical form changes
	}
	if pc := fn.Provisioned; pc != nil {
		if pc.Max == 0 {
			pc.Max = pc.Min
		}
		if pc.TargetUtilization == 0 {
			pc.TargetUtilization = defaultTargetUtilization
		}
		for _, s := range pc.Schedules {
			if s.Duration == "" {
				s.Duration = defaultScheduleDuration
			}
			if s.Timezone == "" {
				s.Timezone = defaultScheduleTimezone
			}
		}
	}
	if u := fn.URL; u != nil {
		if u.Auth == "" {
			u.Auth = defaultURLAuth
		}
		if u.InvokeMode == "" {
			u.InvokeMode = defaultInvokeMode
		}
		if u.Qualifier == "" {
			u.Qualifier = QualifierLatest
		}
	}
	if a := fn.Async; a != nil && a.MaxEventAge == "" {
		a.MaxEventAge = defaultMaxEventAge
	}
	applyEventSourceDefaults(fn)
	if p := fn.Placement; p != nil {
		for _, c := range p.Constraints {
			if c.Operator == "" {
				c.Operator = defaultConstraintOperator
			}
		}
	}
}

// applyEventSourceDefaults fills the event sources' defaults.
func applyEventSourceDefaults(fn *Function) {
	for _, es := range fn.EventSources {
		if es.Type == SourceSchedule {
			if es.BatchSize == 0 {
				es.BatchSize = 1
			}
			continue
		}
		if es.BatchSize == 0 {
			es.BatchSize = defaultBatchSize
			if es.Type == SourceRabbitMQ {
				es.BatchSize = 100 // Lambda's default for Amazon MQ
			}
		}
		if es.StartingFrom == "" && es.Type != SourceRabbitMQ {
			es.StartingFrom = defaultStartingPosition
		}
		if es.Group == "" && es.Type != SourceRabbitMQ {
			es.Group = DefaultGroup(fn.Name, es.Name)
		}
		if es.MaximumRetryAttempts == nil {
			infinite := -1
			es.MaximumRetryAttempts = &infinite
		}
		if es.MaximumBatchingWindow == "" {
			// Lambda's defaults: 500 ms for Kafka, none for streams and queues.
			es.MaximumBatchingWindow = "0s"
			if es.Type == SourceKafka || es.Type == SourceRabbitMQ {
				es.MaximumBatchingWindow = "500ms"
			}
		}
	}
}
