package sources

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nimbus-fn/nimbus/gateway/metrics"
)

// Metrics are the event-source series on the gateway's registry. A nil
// *Metrics records nothing.
type Metrics struct {
	gateway      *metrics.Metrics
	receivedC    *prometheus.CounterVec
	filteredC    *prometheus.CounterVec
	batchesC     *prometheus.CounterVec
	batchRecsC   *prometheus.CounterVec
	fnErrorsC    *prometheus.CounterVec
	retriesC     *prometheus.CounterVec
	failedC      *prometheus.CounterVec
	destFailureC *prometheus.CounterVec
	lagG         *prometheus.GaugeVec
	ageG         *prometheus.GaugeVec
}

var mappingLabels = []string{"function", "mapping", "type"}

func withLabels(extra ...string) []string {
	return append(append([]string{}, mappingLabels...), extra...)
}

// NewMetrics registers the series on the gateway's registry (m may be nil
// in tests: then only the gateway-level invocation metrics are skipped).
func NewMetrics(m *metrics.Metrics) *Metrics {
	cv := func(name, help string, extra ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, withLabels(extra...))
	}
	s := &Metrics{
		gateway:      m,
		receivedC:    cv("nimbus_esm_records_received_total", "Records read from the event source."),
		filteredC:    cv("nimbus_esm_records_filtered_total", "Records no filter matched (dropped and checkpointed)."),
		batchesC:     cv("nimbus_esm_batches_total", "Batches the function was invoked with."),
		batchRecsC:   cv("nimbus_esm_batch_records_total", "Records in the batches the function was invoked with."),
		fnErrorsC:    cv("nimbus_esm_function_errors_total", "Batches the function failed (errors and partial batch failures)."),
		retriesC:     cv("nimbus_esm_retries_total", "Retries of a batch; reason is function_error or unavailable (throttles, no capacity, outages).", "reason"),
		failedC:      cv("nimbus_esm_records_on_failure_total", "Records discarded to on_failure (or dropped when the mapping has none), by condition.", "condition"),
		destFailureC: cv("nimbus_esm_on_failure_errors_total", "Failure records the on_failure destination did not take."),
		lagG: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nimbus_esm_lag_records",
			Help: "Records not yet consumed by the mapping's group, per partition or queue."}, withLabels("partition")),
		ageG: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nimbus_esm_oldest_record_age_seconds",
			Help: "Age of the oldest record read but not yet finished on this gateway (0 when none)."}, withLabels()),
	}
	if m != nil {
		m.Registry.MustRegister(s.receivedC, s.filteredC, s.batchesC, s.batchRecsC, s.fnErrorsC, s.retriesC, s.failedC, s.destFailureC, s.lagG, s.ageG)
	}
	return s
}

func labels(mp Mapping) []string { return []string{mp.Function, mp.UUID, mp.Spec.Type} }

// register creates a mapping's series at zero so dashboards see them.
func (s *Metrics) register(mp Mapping) {
	if s == nil {
		return
	}
	l := labels(mp)
	s.receivedC.WithLabelValues(l...)
	s.filteredC.WithLabelValues(l...)
	s.batchesC.WithLabelValues(l...)
	s.fnErrorsC.WithLabelValues(l...)
}

func (s *Metrics) received(mp Mapping, n int) {
	if s != nil {
		s.receivedC.WithLabelValues(labels(mp)...).Add(float64(n))
	}
}

func (s *Metrics) filtered(mp Mapping, n int) {
	if s != nil {
		s.filteredC.WithLabelValues(labels(mp)...).Add(float64(n))
	}
}

func (s *Metrics) batch(mp Mapping, n int) {
	if s != nil {
		s.batchesC.WithLabelValues(labels(mp)...).Inc()
		s.batchRecsC.WithLabelValues(labels(mp)...).Add(float64(n))
	}
}

func (s *Metrics) functionError(mp Mapping) {
	if s != nil {
		s.fnErrorsC.WithLabelValues(labels(mp)...).Inc()
	}
}

func (s *Metrics) retried(mp Mapping, reason string) {
	if s != nil {
		s.retriesC.WithLabelValues(append(labels(mp), reason)...).Inc()
	}
}

func (s *Metrics) failedRecords(mp Mapping, condition string, n int) {
	if s != nil {
		s.failedC.WithLabelValues(append(labels(mp), condition)...).Add(float64(n))
	}
}

func (s *Metrics) destinationFailed(mp Mapping) {
	if s != nil {
		s.destFailureC.WithLabelValues(labels(mp)...).Inc()
	}
}

func (s *Metrics) lag(mp Mapping, lag []PartitionLag) {
	if s == nil {
		return
	}
	for _, l := range lag {
		s.lagG.WithLabelValues(append(labels(mp), l.Partition)...).Set(float64(l.Records))
	}
}

func (s *Metrics) oldest(mp Mapping, age time.Duration) {
	if s != nil {
		s.ageG.WithLabelValues(labels(mp)...).Set(age.Seconds())
	}
}
