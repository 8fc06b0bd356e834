package metrics

import "github.com/prometheus/client_golang/prometheus"

// UsageSink receives what each invocation is billed for (the usage
// ledger, which keeps it by hour for `nimbus usage`).
type UsageSink interface {
	Billed(function, version string, memoryMB, billedMs int64)
}

// usageMetrics are the metering counters: Lambda bills requests (counted
// by nimbus_invocations_total), GB-seconds of memory × billed duration at
// 1 ms granularity, and provisioned GB-seconds.
type usageMetrics struct {
	billed      *prometheus.CounterVec
	provisioned *prometheus.CounterVec
	sink        UsageSink
}

func newUsageMetrics(reg *prometheus.Registry) usageMetrics {
	u := usageMetrics{
		billed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nimbus_billed_gb_seconds_total",
			Help: "Memory size (GB) × billed duration (1 ms granularity) of completed invocations, as Lambda bills duration.",
		}, []string{"function", "version"}),
		provisioned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nimbus_provisioned_gb_seconds_total",
			Help: "Memory size (GB) × time of provisioned execution environments this gateway saw running.",
		}, []string{"function", "version"}),
	}
	reg.MustRegister(u.billed, u.provisioned)
	return u
}

// SetUsageSink sends every billed invocation to s as well; call it before
// the gateway serves.
func (m *Metrics) SetUsageSink(s UsageSink) { m.usage.sink = s }

// Billed records one completed invocation's billing: its memory size and
// billed duration in ms. An invocation without a memory size (an instance
// older than the header) is billed nothing rather than guessed.
func (m *Metrics) Billed(function, version string, memoryMB, billedMs int64) {
	if m == nil || memoryMB <= 0 || billedMs < 0 {
		return
	}
	m.usage.billed.WithLabelValues(function, version).Add(float64(memoryMB) / 1024 * float64(billedMs) / 1000)
	if m.usage.sink != nil {
		m.usage.sink.Billed(function, version, memoryMB, billedMs)
	}
}

// ProvisionedUsage adds mbMs (memory MB × ms) of provisioned environments.
func (m *Metrics) ProvisionedUsage(function, version string, mbMs int64) {
	if m == nil || mbMs <= 0 {
		return
	}
	m.usage.provisioned.WithLabelValues(function, version).Add(float64(mbMs) / 1024 / 1000)
}
