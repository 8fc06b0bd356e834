package specs

// This file is the canonical model: what Parse produces, what Encode writes
// as canonical JSON (job meta, catalog) and what jobs.Compile and the gateway
// read. Durations are Go duration strings in the model's JSON ("3s", "6h0m0s"
// normalised by Parse); absent optional blocks are nil.

// File is everything declared in one directory (or one file) of specs.
type File struct {
	Functions []*Function `json:"functions,omitempty"`
	Layers    []*Layer    `json:"layers,omitempty"`
}

// Function is one `function "name" { … }` block.
type Function struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Runtime: "provided", "provided.al2", "provided.al2023", "python3.N", "nodejsNN.x".
	// Empty for an image function (Code.Image): the image carries its runtime.
	Runtime string `json:"runtime,omitempty"`
	// Handler: "module.function" (python), "file.function" (node); ignored by provided.
	// Empty for an image function: image_config's command says what runs.
	Handler string `json:"handler,omitempty"`
	Code    *Code  `json:"code"`
	// ImageConfig overrides the image's ENTRYPOINT, CMD and WORKDIR (Lambda's
	// ImageConfig); only with Code.Image.
	ImageConfig *ImageConfig `json:"image_config,omitempty"`
	// Build is the `build { }` block: how the client turns Code.Dir into
	// what it packages. A client-side input, so not part of the canonical
	// JSON (job meta, catalog, version config hashes); nil means the
	// runtime's default build.
	Build *Build `json:"-"`
	// Layers are layer references "name" or "name:version", in order (at most 5).
	Layers []string `json:"layers,omitempty"`
	// MemoryMB 128–10240. Default 128.
	MemoryMB int `json:"memory_mb"`
	// Timeout 1s–900s. Default "3s".
	Timeout string `json:"timeout"`
	// EphemeralStorageMB 512–10240. Default 512.
	EphemeralStorageMB int `json:"ephemeral_storage_mb"`
	// Environment variables (aggregate ≤4 KB).
	Environment map[string]string `json:"environment,omitempty"`
	// Secrets maps environment variable names to Nomad Variables.
	Secrets []*Secret `json:"secrets,omitempty"`
	// EnvironmentsPerInstance 1–64. Default 1.
	EnvironmentsPerInstance int `json:"environments_per_instance"`
	// Network is the environments' network: "" (the host's, the default)
	// or "none" (a network namespace of their own with only loopback).
	// "host" written in a spec is stored as "".
	Network string `json:"network,omitempty"`
	// ReservedConcurrency nil = unreserved; 0 = throttled.
	ReservedConcurrency *int                    `json:"reserved_concurrency,omitempty"`
	Provisioned         *ProvisionedConcurrency `json:"provisioned_concurrency,omitempty"`
	URL                 *URLConfig              `json:"url,omitempty"`
	Async               *AsyncConfig            `json:"async,omitempty"`
	EventSources        []*EventSource          `json:"event_sources,omitempty"`
	Aliases             []*Alias                `json:"aliases,omitempty"`
	Placement           *Placement              `json:"placement,omitempty"`
	Tags                map[string]string       `json:"tags,omitempty"`
	// Pos is where the block starts ("file:line:col"); not part of the canonical JSON.
	Pos string `json:"-"`
	// Dir is the directory of the spec file that declared the function: Code.Dir
	// and Code.Zip are relative to it. Set by Parse/Load; not part of the
	// canonical JSON (empty after Decode).
	Dir string `json:"-"`
}

// Code says where a function's or layer's code comes from: exactly one of
// Dir, Zip or URL, or (functions only) Image.
type Code struct {
	// Dir is a directory, relative to the spec file.
	Dir string `json:"dir,omitempty"`
	// Zip is a zip file, relative to the spec file.
	Zip string `json:"zip,omitempty"`
	// URL is an artifact URL Nomad's go-getter can fetch; Checksum is required with it.
	URL string `json:"url,omitempty"`
	// Checksum is "sha256:<hex>" (required with URL; computed at packaging for Dir/Zip).
	Checksum string `json:"checksum,omitempty"`
	// Image is an OCI image reference, "registry/repo:tag" or
	// "registry/repo@sha256:<hex>" (Lambda's PackageType Image, ImageUri).
	Image string `json:"image,omitempty"`
	// ResolvedImage is Image pinned to its manifest digest
	// ("registry/repo@sha256:<hex>"): written at deploy time, when a tag
	// is resolved (Lambda's ResolvedImageUri), never in a spec file. The
	// compiler puts it in the job; a digest-pinned Image needs no resolve.
	ResolvedImage string `json:"resolved_image,omitempty"`
}

// IsImage reports whether the function is packaged as a container image.
func (f *Function) IsImage() bool { return f.Code != nil && f.Code.Image != "" }

// PinnedImage is the image reference that runs: ResolvedImage when deploy
// resolved it, else Image if Image names a digest, else "" (a tag nobody
// resolved yet).
func (c *Code) PinnedImage() string {
	switch {
	case c == nil:
		return ""
	case c.ResolvedImage != "":
		return c.ResolvedImage
	case ImageDigestRE.MatchString(c.Image):
		return c.Image
	}
	return ""
}

// ImageConfig is the `image_config { … }` block: what Lambda's ImageConfig
// overrides in the image's config. Empty fields keep the image's own.
type ImageConfig struct {
	// Entrypoint replaces the image's ENTRYPOINT.
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Command replaces the image's CMD (for Lambda base images, the handler).
	Command []string `json:"command,omitempty"`
	// WorkingDirectory replaces the image's WORKDIR; an absolute path.
	WorkingDirectory string `json:"working_directory,omitempty"`
}

// Build is a function's `build { … }` block. Exactly one of Command or Skip
// is set.
type Build struct {
	// Command is a shell command line (run with `sh -c`) run in the code
	// directory before packaging.
	Command string
	// Output is the directory, relative to the code directory, whose
	// contents are packaged instead of the code directory ("" = the code
	// directory).
	Output string
	// Skip turns the runtime's default build off: the code directory is
	// packaged as it is.
	Skip bool
	// Pos is where the block starts ("file:line:col").
	Pos string
}

// Secret maps one environment variable to an item of a Nomad Variable.
type Secret struct {
	Env  string `json:"env"`
	Path string `json:"path"` // Nomad Variable path, e.g. "nimbus/fn/db"
	Key  string `json:"key"`  // item key inside the variable
}

// ProvisionedConcurrency is the `provisioned_concurrency { … }` block.
type ProvisionedConcurrency struct {
	Min int `json:"min"`
	// Max defaults to Min (no target tracking) unless set.
	Max int `json:"max"`
	// TargetUtilization in (0,1]. Default 0.7.
	TargetUtilization float64     `json:"target_utilization"`
	Schedules         []*Schedule `json:"schedules,omitempty"`
}

// Schedule raises the floor during a cron window.
type Schedule struct {
	Name string `json:"name"`
	// Cron is a cron expression for the window's start as Nomad's cronexpr
	// reads it: 5 fields, 6 (a year last, like Lambda's cron()) or 7 (seconds first).
	Cron string `json:"cron"`
	// Duration of the window. Default "1h".
	Duration string `json:"duration"`
	// Timezone of Cron (IANA). Default "UTC".
	Timezone string `json:"timezone,omitempty"`
	Min      int    `json:"min"`
}

// URLConfig is the `url { … }` block (function URL).
type URLConfig struct {
	// Auth "NONE" or "AWS_IAM". Default "NONE".
	Auth string `json:"auth"`
	// InvokeMode "BUFFERED" or "RESPONSE_STREAM". Default "BUFFERED".
	InvokeMode string `json:"invoke_mode"`
	// Qualifier the URL invokes: "$LATEST" or an alias. Default "$LATEST".
	Qualifier string `json:"qualifier,omitempty"`
	CORS      *CORS  `json:"cors,omitempty"`
}

// CORS is the `cors { … }` block with Lambda's limits.
type CORS struct {
	AllowOrigins     []string `json:"allow_origins,omitempty"`
	AllowMethods     []string `json:"allow_methods,omitempty"`
	AllowHeaders     []string `json:"allow_headers,omitempty"`
	ExposeHeaders    []string `json:"expose_headers,omitempty"`
	AllowCredentials bool     `json:"allow_credentials,omitempty"`
	MaxAge           int      `json:"max_age,omitempty"`
}

// AsyncConfig is the `async { … }` block.
type AsyncConfig struct {
	// MaxRetries 0–2. Default 2.
	MaxRetries int `json:"max_retries"`
	// MaxEventAge 60s–6h. Default "6h0m0s".
	MaxEventAge string `json:"max_event_age"`
	// OnSuccess, OnFailure, DeadLetter are destinations (see Destination).
	OnSuccess  *Destination `json:"on_success,omitempty"`
	OnFailure  *Destination `json:"on_failure,omitempty"`
	DeadLetter *Destination `json:"dead_letter,omitempty"`
}

// Destination is a target for invocation records: one of Function (a
// function name, optionally ":qualifier"), NATS (subject), Kafka (topic) or
// Webhook (http/https URL).
type Destination struct {
	Function string `json:"function,omitempty"`
	NATS     string `json:"nats,omitempty"`
	Kafka    string `json:"kafka,omitempty"`
	Webhook  string `json:"webhook,omitempty"`
}

// EventSource is an `event_source "name" { … }` block (an event-source mapping).
type EventSource struct {
	Name string `json:"name"`
	// Type: "nats", "kafka", "redis", "rabbitmq", "schedule".
	Type    string `json:"type"`
	Enabled bool   `json:"enabled"`
	// Broker-specific settings.
	URL          string   `json:"url,omitempty"`               // broker address(es)
	Stream       string   `json:"stream,omitempty"`            // NATS stream / Redis stream key
	Subject      string   `json:"subject,omitempty"`           // NATS subject filter
	Topics       []string `json:"topics,omitempty"`            // Kafka topics
	Queue        string   `json:"queue,omitempty"`             // RabbitMQ queue
	Group        string   `json:"group,omitempty"`             // consumer group / durable name
	Schedule     string   `json:"schedule,omitempty"`          // cron or rate() for type schedule
	Input        string   `json:"input,omitempty"`             // constant event for schedule
	StartingFrom string   `json:"starting_position,omitempty"` // "LATEST", "TRIM_HORIZON", "AT_TIMESTAMP"
	// StartingTimestamp is the RFC 3339 time AT_TIMESTAMP starts from.
	StartingTimestamp string `json:"starting_position_timestamp,omitempty"`
	// Batching: BatchSize 1–10000 (default 10; always 1 for type schedule),
	// MaximumBatchingWindow 0–300s (default "0s", "500ms" for kafka).
	// For nats/kafka/redis Parse also fills StartingFrom ("LATEST"), Group
	// (DefaultGroup) and MaximumRetryAttempts (-1); type schedule leaves
	// every broker, batching and error-handling field empty.
	BatchSize             int    `json:"batch_size"`
	MaximumBatchingWindow string `json:"maximum_batching_window,omitempty"`
	// Error handling.
	MaximumRetryAttempts       *int   `json:"maximum_retry_attempts,omitempty"` // -1 = infinite
	MaximumRecordAge           string `json:"maximum_record_age,omitempty"`
	BisectBatchOnFunctionError bool   `json:"bisect_batch_on_function_error,omitempty"`
	ReportBatchItemFailures    bool   `json:"report_batch_item_failures,omitempty"`
	MaximumConcurrency         int    `json:"maximum_concurrency,omitempty"`
	// ParallelizationFactor (kafka, redis; 1–10, 0 = unset = 1) splits each
	// partition into that many lanes, batches of different lanes running at
	// once; records with the same key (Kafka record key, Redis field "key")
	// share a lane, so their order holds. The partition's checkpoint only
	// advances past records every lane has finished.
	ParallelizationFactor int          `json:"parallelization_factor,omitempty"`
	OnFailure             *Destination `json:"on_failure,omitempty"`
	Filters               []string     `json:"filters,omitempty"` // Lambda filter-pattern JSON
}

// Alias is an `alias "name" { … }` block.
type Alias struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Version is a published version number as a string ("3"); aliases cannot
	// point at other aliases.
	Version string `json:"version"`
	// Routing adds at most one other version with a weight in [0,1].
	Routing map[string]float64 `json:"routing,omitempty"`
}

// Placement is the `placement { … }` block.
type Placement struct {
	Region      string        `json:"region,omitempty"`
	Datacenters []string      `json:"datacenters,omitempty"`
	Namespace   string        `json:"namespace,omitempty"`
	NodePool    string        `json:"node_pool,omitempty"`
	Priority    int           `json:"priority,omitempty"`
	Constraints []*Constraint `json:"constraints,omitempty"`
}

// Constraint is a Nomad constraint.
type Constraint struct {
	Attribute string `json:"attribute"`
	Operator  string `json:"operator,omitempty"`
	Value     string `json:"value,omitempty"`
}

// Layer is a `layer "name" { … }` block.
type Layer struct {
	Name               string   `json:"name"`
	Description        string   `json:"description,omitempty"`
	Code               *Code    `json:"code"`
	CompatibleRuntimes []string `json:"compatible_runtimes,omitempty"`
	// Pos is where the block starts ("file:line:col"); not part of the canonical JSON.
	Pos string `json:"-"`
	// Dir is the directory of the spec file that declared the layer (see Function.Dir).
	Dir string `json:"-"`
}
