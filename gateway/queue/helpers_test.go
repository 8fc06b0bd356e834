package queue_test

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// find sums the series of name whose label values (in order) match labels.
func find(t *testing.T, h *harness, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := h.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !labelsMatch(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

func labelsMatch(m *dto.Metric, want []string) bool {
	if len(want) == 0 {
		return true
	}
	if len(m.GetLabel()) != len(want) {
		return false
	}
	for i, l := range m.GetLabel() {
		if l.GetValue() != want[i] {
			return false
		}
	}
	return true
}
