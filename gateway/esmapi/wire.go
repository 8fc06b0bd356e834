package esmapi

import (
	"encoding/json"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/destinations"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/specs"
)

// mappingConfig is Lambda's EventSourceMappingConfiguration as
// aws-sdk-go-v2's service/lambda reads it (restJson1; timestamps are epoch
// seconds).
type mappingConfig struct {
	UUID                              string                  `json:"UUID"`
	EventSourceMappingArn             string                  `json:"EventSourceMappingArn,omitempty"`
	FunctionArn                       string                  `json:"FunctionArn"`
	EventSourceArn                    string                  `json:"EventSourceArn,omitempty"`
	BatchSize                         *int                    `json:"BatchSize,omitempty"`
	MaximumBatchingWindowInSeconds    *int                    `json:"MaximumBatchingWindowInSeconds,omitempty"`
	StartingPosition                  string                  `json:"StartingPosition,omitempty"`
	StartingPositionTimestamp         *float64                `json:"StartingPositionTimestamp,omitempty"`
	MaximumRetryAttempts              *int                    `json:"MaximumRetryAttempts,omitempty"`
	MaximumRecordAgeInSeconds         *int                    `json:"MaximumRecordAgeInSeconds,omitempty"`
	BisectBatchOnFunctionError        *bool                   `json:"BisectBatchOnFunctionError,omitempty"`
	FunctionResponseTypes             []string                `json:"FunctionResponseTypes,omitempty"`
	FilterCriteria                    *filterCriteria         `json:"FilterCriteria,omitempty"`
	ScalingConfig                     *scalingConfig          `json:"ScalingConfig,omitempty"`
	ParallelizationFactor             *int                    `json:"ParallelizationFactor,omitempty"`
	DestinationConfig                 *destinationConfig      `json:"DestinationConfig,omitempty"`
	Topics                            []string                `json:"Topics,omitempty"`
	Queues                            []string                `json:"Queues,omitempty"`
	SelfManagedEventSource            *selfManagedEventSource `json:"SelfManagedEventSource,omitempty"`
	SelfManagedKafkaEventSourceConfig *kafkaConfig            `json:"SelfManagedKafkaEventSourceConfig,omitempty"`
	State                             string                  `json:"State"`
	StateTransitionReason             string                  `json:"StateTransitionReason,omitempty"`
	LastProcessingResult              string                  `json:"LastProcessingResult,omitempty"`
	LastModified                      *float64                `json:"LastModified,omitempty"`
}

type filterCriteria struct {
	Filters []filter `json:"Filters"`
}

type filter struct {
	Pattern *string `json:"Pattern,omitempty"`
}

type scalingConfig struct {
	MaximumConcurrency *int `json:"MaximumConcurrency,omitempty"`
}

type destinationConfig struct {
	OnSuccess *onDestination `json:"OnSuccess,omitempty"`
	OnFailure *onDestination `json:"OnFailure,omitempty"`
}

type onDestination struct {
	Destination *string `json:"Destination,omitempty"`
}

type selfManagedEventSource struct {
	Endpoints map[string][]string `json:"Endpoints"`
}

type kafkaConfig struct {
	ConsumerGroupId *string `json:"ConsumerGroupId,omitempty"`
}

// endpointKafka is SelfManagedEventSource's only endpoint key.
const endpointKafka = "KAFKA_BOOTSTRAP_SERVERS"

// request is the body of CreateEventSourceMapping and
// UpdateEventSourceMapping. Pointers and nil slices tell absent members
// from zero values.
type request struct {
	FunctionName                      *string                 `json:"FunctionName"`
	EventSourceArn                    *string                 `json:"EventSourceArn"`
	Enabled                           *bool                   `json:"Enabled"`
	BatchSize                         *int                    `json:"BatchSize"`
	MaximumBatchingWindowInSeconds    *int                    `json:"MaximumBatchingWindowInSeconds"`
	StartingPosition                  *string                 `json:"StartingPosition"`
	StartingPositionTimestamp         *float64                `json:"StartingPositionTimestamp"`
	MaximumRetryAttempts              *int                    `json:"MaximumRetryAttempts"`
	MaximumRecordAgeInSeconds         *int                    `json:"MaximumRecordAgeInSeconds"`
	BisectBatchOnFunctionError        *bool                   `json:"BisectBatchOnFunctionError"`
	FunctionResponseTypes             []string                `json:"FunctionResponseTypes"`
	FilterCriteria                    *filterCriteria         `json:"FilterCriteria"`
	ScalingConfig                     *scalingConfig          `json:"ScalingConfig"`
	ParallelizationFactor             *int                    `json:"ParallelizationFactor"`
	DestinationConfig                 *destinationConfig      `json:"DestinationConfig"`
	Topics                            []string                `json:"Topics"`
	Queues                            []string                `json:"Queues"`
	SelfManagedEventSource            *selfManagedEventSource `json:"SelfManagedEventSource"`
	SelfManagedKafkaEventSourceConfig *kafkaConfig            `json:"SelfManagedKafkaEventSourceConfig"`
}

// Members each operation accepts. Any other non-null member (Kinesis'
// TumblingWindowInSeconds,
// SourceAccessConfigurations, KMSKeyArn, …) is refused rather than ignored.
var (
	createMembers = memberSet("FunctionName", "EventSourceArn", "Enabled", "BatchSize", "MaximumBatchingWindowInSeconds",
		"StartingPosition", "StartingPositionTimestamp", "MaximumRetryAttempts", "MaximumRecordAgeInSeconds",
		"BisectBatchOnFunctionError", "FunctionResponseTypes", "FilterCriteria", "ScalingConfig", "ParallelizationFactor",
		"DestinationConfig", "Topics", "Queues", "SelfManagedEventSource", "SelfManagedKafkaEventSourceConfig")
	updateMembers = memberSet("FunctionName", "Enabled", "BatchSize", "MaximumBatchingWindowInSeconds",
		"MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError", "FunctionResponseTypes",
		"FilterCriteria", "ScalingConfig", "ParallelizationFactor", "DestinationConfig", "SelfManagedKafkaEventSourceConfig")
)

func memberSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// decodeRequest parses body, refusing members op does not accept.
func decodeRequest(body []byte, allowed map[string]bool, op string) (*request, *apiError) {
	in := &request{}
	if len(strings.TrimSpace(string(body))) == 0 {
		return in, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, &apiError{Code: codeInvalidRequestContent, Message: "Could not parse request body into json: " + err.Error()}
	}
	var refused []string
	for k, v := range raw {
		if !allowed[k] && string(v) != "null" {
			refused = append(refused, k)
		}
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return nil, invalid(strings.Join(refused, ", ") + " not supported by " + op + " on this gateway")
	}
	if err := json.Unmarshal(body, in); err != nil {
		return nil, &apiError{Code: codeInvalidRequestContent, Message: "Could not parse request body into json: " + err.Error()}
	}
	return in, nil
}

// The source forms EventSourceArn accepts, for error messages.
const acceptedSources = "EventSourceArn must be amqp://… or amqps://… with Queues (RabbitMQ), " +
	"redis://host:port[/db]?stream=KEY[&group=G] (Redis Streams), " +
	"nats:STREAM[?subject=S&group=G] (the gateway's NATS) or nats://host:4222[,…]?stream=S[&subject=S&group=G], " +
	"or schedule:rate(…) / schedule:cron(…); Kafka is SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS with Topics"

// applySource reads the source members of a create request into es: Type,
// URL, Stream, Subject, Topics, Queue, Group, Schedule. With filter it reads
// List's EventSourceArn parameter, which names a RabbitMQ broker without a
// queue.
func applySource(in *request, es *specs.EventSource, filter bool) *apiError {
	arn := ""
	if in.EventSourceArn != nil {
		arn = *in.EventSourceArn
	}
	if in.SelfManagedKafkaEventSourceConfig != nil && in.SelfManagedEventSource == nil {
		return invalid("SelfManagedKafkaEventSourceConfig is only for Kafka mappings (SelfManagedEventSource)")
	}
	if in.SelfManagedEventSource != nil {
		if arn != "" {
			return invalid("give either EventSourceArn or SelfManagedEventSource, not both")
		}
		if len(in.Queues) > 0 {
			return invalid("Queues is not used by Kafka mappings")
		}
		var servers []string
		for k, v := range in.SelfManagedEventSource.Endpoints {
			if k != endpointKafka {
				return invalid("SelfManagedEventSource.Endpoints supports only " + endpointKafka + "; got " + k)
			}
			servers = v
		}
		if len(servers) == 0 {
			return invalid("SelfManagedEventSource.Endpoints." + endpointKafka + " needs at least one host:port")
		}
		for _, s := range servers {
			if s == "" || strings.ContainsAny(s, ", \t") {
				return invalid("bootstrap server " + strconv.Quote(s) + " must be one host:port")
			}
		}
		es.Type, es.URL, es.Topics = specs.SourceKafka, strings.Join(servers, ","), in.Topics
		if c := in.SelfManagedKafkaEventSourceConfig; c != nil && c.ConsumerGroupId != nil {
			es.Group = *c.ConsumerGroupId
		}
		return nil
	}
	if len(in.Topics) > 0 {
		return invalid("Topics is only for Kafka mappings (SelfManagedEventSource)")
	}
	if len(in.Queues) > 0 && !strings.HasPrefix(arn, "amqp://") && !strings.HasPrefix(arn, "amqps://") {
		return invalid("Queues is only for RabbitMQ mappings (EventSourceArn amqp://… or amqps://…)")
	}
	switch {
	case arn == "":
		return invalid("an event source is required: " + acceptedSources)
	case strings.HasPrefix(arn, "amqp://"), strings.HasPrefix(arn, "amqps://"):
		if _, err := url.Parse(arn); err != nil {
			return invalid("EventSourceArn is not a valid amqp URL: " + err.Error())
		}
		es.Type, es.URL = specs.SourceRabbitMQ, arn
		if !filter {
			if len(in.Queues) != 1 {
				return invalid("a RabbitMQ mapping needs exactly one queue in Queues")
			}
			es.Queue = in.Queues[0]
		}
	case strings.HasPrefix(arn, "redis://"), strings.HasPrefix(arn, "rediss://"):
		u, err := url.Parse(arn)
		if err != nil {
			return invalid("EventSourceArn is not a valid redis URL: " + err.Error())
		}
		q := u.Query()
		es.Type, es.Stream, es.Group = specs.SourceRedis, q.Get("stream"), q.Get("group")
		if es.Stream == "" {
			return invalid("a Redis EventSourceArn names its stream: redis://host:port[/db]?stream=KEY")
		}
		q.Del("stream")
		q.Del("group")
		u.RawQuery = q.Encode()
		es.URL = u.String()
	case strings.HasPrefix(arn, "schedule:"):
		es.Type, es.Schedule = specs.SourceSchedule, strings.TrimPrefix(arn, "schedule:")
		if es.Schedule == "" {
			return invalid("a schedule EventSourceArn is schedule:rate(5 minutes) or schedule:cron(0 12 * * ? *)")
		}
	case strings.HasPrefix(arn, "nats:"):
		base, query, _ := strings.Cut(arn, "?")
		q, err := url.ParseQuery(query)
		if err != nil {
			return invalid("EventSourceArn's query is not valid: " + err.Error())
		}
		for k := range q {
			if k != "stream" && k != "subject" && k != "group" {
				return invalid("a NATS EventSourceArn takes stream, subject and group parameters; got " + k)
			}
		}
		es.Type, es.Subject, es.Group = specs.SourceNATS, q.Get("subject"), q.Get("group")
		if strings.HasPrefix(base, "nats://") {
			es.URL, es.Stream = base, q.Get("stream")
			if es.Stream == "" {
				return invalid("a NATS EventSourceArn with a server names its stream: nats://host:4222?stream=S")
			}
		} else {
			es.Stream = strings.TrimPrefix(base, "nats:")
			if q.Has("stream") || es.Stream == "" || strings.Contains(es.Stream, "/") {
				return invalid("the gateway's NATS is EventSourceArn nats:STREAM[?subject=S&group=G]")
			}
		}
	default:
		return invalid("unsupported event source " + strconv.Quote(arn) + ": " + acceptedSources)
	}
	return nil
}

// applySettings writes the settings members of in into es (create and
// update). Absent members leave es as it is.
func (h *handler) applySettings(in *request, es *specs.EventSource) *apiError {
	if in.Enabled != nil {
		es.Enabled = *in.Enabled
	}
	if in.BatchSize != nil {
		if *in.BatchSize < 1 {
			return invalid("BatchSize must be at least 1; got " + strconv.Itoa(*in.BatchSize))
		}
		es.BatchSize = *in.BatchSize
	}
	if in.MaximumBatchingWindowInSeconds != nil {
		es.MaximumBatchingWindow = seconds(*in.MaximumBatchingWindowInSeconds)
	}
	if in.StartingPosition != nil {
		es.StartingFrom = *in.StartingPosition
	}
	if in.StartingPositionTimestamp != nil {
		t := *in.StartingPositionTimestamp
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return invalid("StartingPositionTimestamp is not a time")
		}
		sec, frac := math.Modf(t)
		es.StartingTimestamp = time.Unix(int64(sec), int64(math.Round(frac*1e3))*1e6).UTC().Format(time.RFC3339Nano)
	}
	if in.MaximumRetryAttempts != nil {
		n := *in.MaximumRetryAttempts
		es.MaximumRetryAttempts = &n
	}
	if in.MaximumRecordAgeInSeconds != nil {
		if n := *in.MaximumRecordAgeInSeconds; n == -1 {
			es.MaximumRecordAge = ""
		} else {
			es.MaximumRecordAge = seconds(n)
		}
	}
	if in.BisectBatchOnFunctionError != nil {
		es.BisectBatchOnFunctionError = *in.BisectBatchOnFunctionError
	}
	if in.FunctionResponseTypes != nil {
		es.ReportBatchItemFailures = false
		for _, t := range in.FunctionResponseTypes {
			if t != "ReportBatchItemFailures" {
				return invalid("FunctionResponseTypes supports only ReportBatchItemFailures; got " + strconv.Quote(t))
			}
			es.ReportBatchItemFailures = true
		}
	}
	if in.FilterCriteria != nil {
		es.Filters = nil
		for _, f := range in.FilterCriteria.Filters {
			if f.Pattern == nil {
				return invalid("every filter in FilterCriteria.Filters needs a Pattern")
			}
			es.Filters = append(es.Filters, *f.Pattern)
		}
	}
	if in.ScalingConfig != nil {
		es.MaximumConcurrency = 0
		if c := in.ScalingConfig.MaximumConcurrency; c != nil {
			if *c < 1 {
				return invalid("ScalingConfig.MaximumConcurrency must be between 2 and 1000; got " + strconv.Itoa(*c))
			}
			es.MaximumConcurrency = *c
		}
	}
	if in.ParallelizationFactor != nil {
		n := *in.ParallelizationFactor
		if n < 1 || n > 10 {
			return invalid("ParallelizationFactor must be between 1 and 10; got " + strconv.Itoa(n))
		}
		if !parallelizable(es.Type) {
			return invalid("ParallelizationFactor applies to Kafka and Redis mappings (ordered partitions split into lanes by record key); " +
				"a NATS mapping already runs each subject as its own ordered unit, and " + strconv.Quote(es.Type) + " mappings have no partitions to split")
		}
		es.ParallelizationFactor = n
	}
	if dc := in.DestinationConfig; dc != nil {
		if dc.OnSuccess != nil && dc.OnSuccess.Destination != nil && *dc.OnSuccess.Destination != "" {
			return invalid("DestinationConfig.OnSuccess is not supported for event-source mappings; use OnFailure")
		}
		if dc.OnFailure != nil {
			es.OnFailure = nil
			if dc.OnFailure.Destination != nil && *dc.OnFailure.Destination != "" {
				d, e := h.parseDestination(*dc.OnFailure.Destination)
				if e != nil {
					return e
				}
				es.OnFailure = d
			}
		}
	}
	return nil
}

// seconds is n seconds as the canonical model writes durations ("1h0m0s").
// Values beyond int32 (Lambda's member type) are clamped so they cannot
// overflow into range.
func seconds(n int) string {
	n = min(max(n, math.MinInt32), math.MaxInt32)
	return (time.Duration(n) * time.Second).String()
}

// parseDestination reads an on-failure destination: nats:<subject>,
// kafka:<topic>, function:<name>[:qualifier], a Lambda function ARN of
// this gateway's region and account, or an http(s) URL (webhook).
func (h *handler) parseDestination(s string) (*specs.Destination, *apiError) {
	if d, ok := destinations.Parse(s, h.arnPrefix()+"function:"); ok {
		return d, nil
	}
	return nil, invalid("the destination " + strconv.Quote(s) + " is not supported: use nats:<subject>, kafka:<topic>, " +
		"function:<name>, a Lambda function ARN in " + h.opts.Region + "/" + h.opts.AccountID + " or an http(s) URL")
}

func (h *handler) destinationString(d *specs.Destination) string {
	return destinations.Format(d, h.functionARN)
}

func (h *handler) arnPrefix() string {
	return "arn:aws:lambda:" + h.opts.Region + ":" + h.opts.AccountID + ":"
}

func (h *handler) functionARN(name, qualifier string) string {
	s := h.arnPrefix() + "function:" + name
	if qualifier != "" {
		s += ":" + qualifier
	}
	return s
}

// eventSourceArn is the EventSourceArn shown for es (passwords redacted;
// "" for Kafka, which Lambda describes with SelfManagedEventSource).
func eventSourceArn(es *specs.EventSource) string {
	var params []string
	add := func(k, v string) {
		if v != "" {
			params = append(params, k+"="+url.QueryEscape(v))
		}
	}
	withParams := func(base string) string {
		if len(params) == 0 {
			return base
		}
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		return base + sep + strings.Join(params, "&")
	}
	switch es.Type {
	case specs.SourceRabbitMQ:
		return redact(es.URL)
	case specs.SourceRedis:
		add("stream", es.Stream)
		add("group", es.Group)
		return withParams(redact(es.URL))
	case specs.SourceNATS:
		if es.URL == "" {
			add("subject", es.Subject)
			add("group", es.Group)
			return withParams("nats:" + es.Stream)
		}
		add("stream", es.Stream)
		add("subject", es.Subject)
		add("group", es.Group)
		return withParams(redact(es.URL))
	case specs.SourceSchedule:
		return "schedule:" + es.Schedule
	}
	return ""
}

// redact hides the password of every URL in a comma-separated list.
func redact(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if u, err := url.Parse(p); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				parts[i] = u.Redacted()
			}
		}
	}
	return strings.Join(parts, ",")
}

// sourceIdentity says what a mapping reads from, for duplicate checks and
// List's EventSourceArn filter: two mappings of one function with the same
// identity would read the same records.
func sourceIdentity(es *specs.EventSource) string {
	u := es.URL
	topics := append([]string(nil), es.Topics...)
	sort.Strings(topics)
	if es.Type == specs.SourceKafka {
		servers := strings.Split(u, ",")
		sort.Strings(servers)
		u = strings.Join(servers, ",")
	}
	return strings.Join([]string{es.Type, u, es.Stream, es.Subject, strings.Join(topics, ","), es.Queue, es.Schedule, es.Input}, "\x00")
}

// config renders a mapping as Lambda's EventSourceMappingConfiguration.
func (h *handler) config(m sources.Mapping, state, reason, result string) *mappingConfig {
	es := m.Spec
	c := &mappingConfig{
		UUID:                  m.UUID,
		EventSourceMappingArn: h.arnPrefix() + "event-source-mapping:" + m.UUID,
		FunctionArn:           h.functionARN(m.Function, m.Qualifier),
		EventSourceArn:        eventSourceArn(es),
		State:                 state,
		StateTransitionReason: reason,
		LastProcessingResult:  result,
	}
	if !m.LastModified.IsZero() {
		t := float64(m.LastModified.UnixMilli()) / 1000
		c.LastModified = &t
	}
	batch := es.BatchSize
	c.BatchSize = &batch
	switch es.Type {
	case specs.SourceKafka:
		c.SelfManagedEventSource = &selfManagedEventSource{Endpoints: map[string][]string{endpointKafka: strings.Split(es.URL, ",")}}
		c.Topics = es.Topics
		g := es.Group
		c.SelfManagedKafkaEventSourceConfig = &kafkaConfig{ConsumerGroupId: &g}
	case specs.SourceRabbitMQ:
		c.Queues = []string{es.Queue}
	case specs.SourceSchedule:
		return c // no batching, position or error handling
	}
	if d, err := time.ParseDuration(es.MaximumBatchingWindow); err == nil {
		n := int(d / time.Second)
		c.MaximumBatchingWindowInSeconds = &n
	}
	c.StartingPosition = es.StartingFrom
	if t, err := time.Parse(time.RFC3339, es.StartingTimestamp); err == nil {
		f := float64(t.UnixMilli()) / 1000
		c.StartingPositionTimestamp = &f
	}
	if es.MaximumRetryAttempts != nil {
		n := *es.MaximumRetryAttempts
		c.MaximumRetryAttempts = &n
	}
	age := -1
	if d, err := time.ParseDuration(es.MaximumRecordAge); err == nil {
		age = int(d / time.Second)
	}
	c.MaximumRecordAgeInSeconds = &age
	bisect := es.BisectBatchOnFunctionError
	c.BisectBatchOnFunctionError = &bisect
	if es.ReportBatchItemFailures {
		c.FunctionResponseTypes = []string{"ReportBatchItemFailures"}
	}
	if len(es.Filters) > 0 {
		fc := &filterCriteria{}
		for _, p := range es.Filters {
			fc.Filters = append(fc.Filters, filter{Pattern: &p})
		}
		c.FilterCriteria = fc
	}
	if es.MaximumConcurrency > 0 {
		n := es.MaximumConcurrency
		c.ScalingConfig = &scalingConfig{MaximumConcurrency: &n}
	}
	if parallelizable(es.Type) {
		n := max(es.ParallelizationFactor, 1)
		c.ParallelizationFactor = &n
	}
	if s := h.destinationString(es.OnFailure); s != "" {
		c.DestinationConfig = &destinationConfig{OnFailure: &onDestination{Destination: &s}}
	}
	return c
}

// parallelizable says whether mappings of the source type take a
// ParallelizationFactor (shown as 1 when unset, as Lambda shows it for
// stream sources).
func parallelizable(typ string) bool { return typ == specs.SourceKafka || typ == specs.SourceRedis }

// apiNames turns the spec setting names in specs.CheckEventSource's
// messages into the API's member names.
var apiNames = strings.NewReplacer(
	"starting_position_timestamp", "StartingPositionTimestamp",
	"starting_position", "StartingPosition",
	"maximum_batching_window", "MaximumBatchingWindowInSeconds",
	"maximum_retry_attempts", "MaximumRetryAttempts",
	"maximum_record_age", "MaximumRecordAgeInSeconds",
	"bisect_batch_on_function_error", "BisectBatchOnFunctionError",
	"report_batch_item_failures", "FunctionResponseTypes",
	"maximum_concurrency", "ScalingConfig.MaximumConcurrency",
	"parallelization_factor", "ParallelizationFactor",
	"batch_size", "BatchSize",
	"on_failure", "DestinationConfig.OnFailure",
	"filters", "FilterCriteria.Filters",
)

// functionNamePattern is Lambda's FunctionName pattern for event-source
// mappings: a name, a partial ARN or a full ARN, with an optional qualifier.
var functionNamePattern = regexp.MustCompile(`^(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?$`)

// functionRef is a parsed FunctionName.
type functionRef struct {
	Name, Qualifier, Region, Account string
}

func parseFunctionName(s string) (*functionRef, *apiError) {
	if s == "" || len(s) > 140 {
		return nil, invalid("1 validation error detected: Value '" + s + "' at 'functionName' failed to satisfy constraint: Member must have length between 1 and 140")
	}
	m := functionNamePattern.FindStringSubmatch(s)
	if m == nil || len(m[7]) > 64 {
		return nil, invalid("1 validation error detected: Value '" + s + "' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: " + functionNamePattern.String())
	}
	ref := &functionRef{Name: m[7], Qualifier: m[9]}
	if m[3] != "" {
		ref.Region = strings.TrimSuffix(m[3], ":")
	}
	if m[5] != "" {
		ref.Account = strings.TrimSuffix(m[5], ":")
	}
	return ref, nil
}
