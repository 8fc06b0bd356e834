package metrics_test

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/nimbus-fn/nimbus/gateway/metrics"
)

type stats struct{}

func (stats) PoolStats() []metrics.PoolStat {
	return []metrics.PoolStat{{
		Function: "f", Version: "1",
		Environments: map[string]int{metrics.GroupProvisioned: 4, metrics.GroupOnDemand: 2},
		InFlight:     map[string]int{metrics.GroupProvisioned: 3, metrics.GroupOnDemand: 1},
		Waiting:      5,
	}, {Function: "g", Version: "$LATEST", Environments: map[string]int{}, InFlight: map[string]int{}}}
}

func (stats) FunctionStats() []metrics.FunctionStat {
	return []metrics.FunctionStat{{Function: "f", Concurrency: 9}}
}

// value finds one sample by name and label values.
func value(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, s := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range s.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			return sample(s)
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}

func sample(s *dto.Metric) float64 {
	switch {
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Histogram != nil:
		return float64(s.Histogram.GetSampleCount())
	}
	return 0
}

func TestScrapeTimeGaugesAndCounters(t *testing.T) {
	m := metrics.New()
	m.WatchStats(stats{})
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"nimbus_environments", map[string]string{"function": "f", "version": "1", "group": "provisioned"}, 4},
		{"nimbus_environments", map[string]string{"function": "f", "version": "1", "group": "ondemand"}, 2},
		{"nimbus_in_flight", map[string]string{"function": "f", "version": "1", "group": "provisioned"}, 3},
		{"nimbus_in_flight", map[string]string{"function": "f", "version": "1", "group": "ondemand"}, 1},
		{"nimbus_provisioned_utilization", map[string]string{"function": "f", "version": "1"}, 0.75},
		{"nimbus_provisioned_utilization", map[string]string{"function": "g", "version": "$LATEST"}, 0},
		{"nimbus_wait_queue_depth", map[string]string{"function": "f", "version": "1"}, 5},
		{"nimbus_concurrent_executions", map[string]string{"function": "f"}, 9},
	}
	for _, c := range checks {
		if got := value(t, m, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	m.Invocation("f", "1", true, 3*time.Millisecond, 20*time.Millisecond, true)
	m.Throttle("f", "ReservedFunctionConcurrentInvocationLimitExceeded")
	m.Waited("f", "1", time.Millisecond, true)
	m.Spillover("f", "1")
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"nimbus_invocations_total", map[string]string{"function": "f"}},
		{"nimbus_errors_total", map[string]string{"kind": "function"}},
		{"nimbus_cold_starts_total", map[string]string{"function": "f"}},
		{"nimbus_init_duration_seconds", map[string]string{"function": "f"}},
		{"nimbus_invocation_duration_seconds", map[string]string{"function": "f"}},
		{"nimbus_throttles_total", map[string]string{"reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}},
		{"nimbus_wait_seconds", map[string]string{"function": "f"}},
		{"nimbus_wait_timeouts_total", map[string]string{"function": "f"}},
		{"nimbus_provisioned_spillover_invocations_total", map[string]string{"function": "f", "version": "1"}},
	} {
		if got := value(t, m, c.name, c.labels); got != 1 {
			t.Errorf("%s%v = %v, want 1", c.name, c.labels, got)
		}
	}
}
