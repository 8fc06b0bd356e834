package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Group values of the group label (the function job's task groups).
const (
	GroupProvisioned = "provisioned"
	GroupOnDemand    = "ondemand"
)

// PoolStat is one function version's accounting at scrape time.
type PoolStat struct {
	Function string
	Version  string
	// Environments available in the instances this gateway sees, per group.
	Environments map[string]int
	// InFlight invocations through this gateway, per group.
	InFlight map[string]int
	// Waiting requests in the version's wait queue.
	Waiting int
}

// FunctionStat is one function's admitted concurrency (running + waiting).
type FunctionStat struct {
	Function    string
	Concurrency int
}

// StatsSource is what the collector reads at scrape time (the router).
type StatsSource interface {
	PoolStats() []PoolStat
	FunctionStats() []FunctionStat
}

// Metrics is the gateway's metric set, registered on its own registry.
type Metrics struct {
	Registry *prometheus.Registry

	invocations   *prometheus.CounterVec
	errors        *prometheus.CounterVec
	throttles     *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	initDuration  *prometheus.HistogramVec
	coldStarts    *prometheus.CounterVec
	waitTime      *prometheus.HistogramVec
	waitTimeouts  *prometheus.CounterVec
	queueRejected *prometheus.CounterVec
	spillover     *prometheus.CounterVec
	usage         usageMetrics

	// observers see the invocation, error and throttle events as they are
	// recorded (set before serving: Observe is not safe during recording).
	observers []Observer
}

// Observer receives the per-function events the metrics record (the
// console's in-memory history).
type Observer interface {
	Invocation(function, version string, functionError bool, d, initD time.Duration, cold bool)
	PlatformError(function, version string)
	Throttle(function, reason string)
}

// Observe adds o to the observers; call it before the gateway serves.
func (m *Metrics) Observe(o Observer) { m.observers = append(m.observers, o) }

// New creates the metric set on a fresh registry (with Go and process
// collectors).
func New() *Metrics {
	reg := prometheus.NewRegistry()
	fv := []string{"function", "version"}
	m := &Metrics{
		Registry: reg,
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nimbus_invocations_total", Help: "Invocations that reached a function (success or function error).",
		}, fv),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nimbus_errors_total", Help: "Failed invocations; kind is function (X-Amz-Function-Error) or platform.",
		}, []string{"function", "version", "kind"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nimbus_throttles_total", Help: "Requests answered 429 TooManyRequestsException, by reason.",
		}, []string{"function", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nimbus_invocation_duration_seconds", Help: "Function duration as the instance reports it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}, fv),
		initDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nimbus_init_duration_seconds", Help: "Init duration of cold starts.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, fv),
		coldStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nimbus_cold_starts_total", Help: "Invocations that initialised a new execution environment.",
		}, fv),
		waitTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nimbus_wait_seconds", Help: "Time requests spent in the wait queue for capacity.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}, fv),
		waitTimeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nimbus_wait_timeouts_total", Help: "Requests that gave up waiting for capacity.",
		}, fv),
		queueRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nimbus_wait_queue_rejected_total", Help: "Requests refused because the function's wait queue was full.",
		}, []string{"function"}),
		spillover: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nimbus_provisioned_spillover_invocations_total",
			Help: "Invocations of a version with provisioned instances that ran on an on-demand instance (Lambda's ProvisionedConcurrencySpilloverInvocations).",
		}, fv),
	}
	m.usage = newUsageMetrics(reg)
	reg.MustRegister(m.invocations, m.errors, m.throttles, m.duration, m.initDuration,
		m.coldStarts, m.waitTime, m.waitTimeouts, m.queueRejected, m.spillover,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Invocation records one completed invocation.
func (m *Metrics) Invocation(function, version string, functionError bool, d, initD time.Duration, cold bool) {
	if m == nil {
		return
	}
	for _, o := range m.observers {
		o.Invocation(function, version, functionError, d, initD, cold)
	}
	m.invocations.WithLabelValues(function, version).Inc()
	if functionError {
		m.errors.WithLabelValues(function, version, "function").Inc()
	}
	if d > 0 {
		m.duration.WithLabelValues(function, version).Observe(d.Seconds())
	}
	if cold {
		m.coldStarts.WithLabelValues(function, version).Inc()
		if initD > 0 {
			m.initDuration.WithLabelValues(function, version).Observe(initD.Seconds())
		}
	}
}

// PlatformError records an invocation that failed for a platform reason.
func (m *Metrics) PlatformError(function, version string) {
	if m == nil {
		return
	}
	for _, o := range m.observers {
		o.PlatformError(function, version)
	}
	m.errors.WithLabelValues(function, version, "platform").Inc()
}

// Throttle records a 429.
func (m *Metrics) Throttle(function, reason string) {
	if m == nil {
		return
	}
	for _, o := range m.observers {
		o.Throttle(function, reason)
	}
	m.throttles.WithLabelValues(function, reason).Inc()
}

// Waited records time spent in a wait queue; timedOut when it gave up.
func (m *Metrics) Waited(function, version string, d time.Duration, timedOut bool) {
	if m == nil {
		return
	}
	m.waitTime.WithLabelValues(function, version).Observe(d.Seconds())
	if timedOut {
		m.waitTimeouts.WithLabelValues(function, version).Inc()
	}
}

// QueueFull records a request refused by a full wait queue.
func (m *Metrics) QueueFull(function string) {
	if m == nil {
		return
	}
	m.queueRejected.WithLabelValues(function).Inc()
}

// Spillover records an invocation that ran on an on-demand instance although
// the version has provisioned instances (they were all busy).
func (m *Metrics) Spillover(function, version string) {
	if m == nil {
		return
	}
	m.spillover.WithLabelValues(function, version).Inc()
}

// WatchStats registers the scrape-time gauges read from src.
func (m *Metrics) WatchStats(src StatsSource) {
	m.Registry.MustRegister(&statsCollector{src: src})
}

var (
	descEnvironments = prometheus.NewDesc("nimbus_environments",
		"Execution environments available in the instances this gateway sees.",
		[]string{"function", "version", "group"}, nil)
	descInFlight = prometheus.NewDesc("nimbus_in_flight",
		"Invocations in flight through this gateway.",
		[]string{"function", "version", "group"}, nil)
	descUtilization = prometheus.NewDesc("nimbus_provisioned_utilization",
		"In-flight invocations on provisioned environments / provisioned environments (0 when none).",
		[]string{"function", "version"}, nil)
	descQueueDepth = prometheus.NewDesc("nimbus_wait_queue_depth",
		"Requests waiting for capacity.", []string{"function", "version"}, nil)
	descConcurrency = prometheus.NewDesc("nimbus_concurrent_executions",
		"Admitted invocations (running or waiting) per function.", []string{"function"}, nil)
)

type statsCollector struct{ src StatsSource }

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEnvironments
	ch <- descInFlight
	ch <- descUtilization
	ch <- descQueueDepth
	ch <- descConcurrency
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.src.PoolStats() {
		for _, g := range []string{GroupProvisioned, GroupOnDemand} {
			ch <- prometheus.MustNewConstMetric(descEnvironments, prometheus.GaugeValue, float64(p.Environments[g]), p.Function, p.Version, g)
			ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(p.InFlight[g]), p.Function, p.Version, g)
		}
		ch <- prometheus.MustNewConstMetric(descUtilization, prometheus.GaugeValue, Utilization(p), p.Function, p.Version)
		ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, float64(p.Waiting), p.Function, p.Version)
	}
	for _, f := range c.src.FunctionStats() {
		ch <- prometheus.MustNewConstMetric(descConcurrency, prometheus.GaugeValue, float64(f.Concurrency), f.Function)
	}
}

// Utilization is in-flight on provisioned / provisioned environments, 0 when
// there are none.
func Utilization(p PoolStat) float64 {
	envs := p.Environments[GroupProvisioned]
	if envs == 0 {
		return 0
	}
	return float64(p.InFlight[GroupProvisioned]) / float64(envs)
}
