package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// The gateway metrics health is read from (gateway/metrics).
const (
	MetricInvocations = "nimbus_invocations_total"
	MetricErrors      = "nimbus_errors_total"
	MetricThrottles   = "nimbus_throttles_total"
)

const maxMetricsBody = 32 << 20

// Scraper reads a function version's counters from gateways' Prometheus
// pages and sums them: each gateway counts only the calls it served, so
// with several gateways every one of their pages must be given.
type Scraper struct {
	Client *http.Client
	URLs   []string
}

// Counters sums fn's version counters over every page; a page that cannot
// be read is an error (a partial sum would hide errors).
func (s *Scraper) Counters(ctx context.Context, fn, version string) (Counters, error) {
	var sum Counters
	for _, u := range s.URLs {
		c, err := s.one(ctx, u, fn, version)
		if err != nil {
			return Counters{}, err
		}
		sum.Invocations += c.Invocations
		sum.FunctionErrors += c.FunctionErrors
		sum.PlatformErrors += c.PlatformErrors
		sum.Throttles += c.Throttles
	}
	return sum, nil
}

func (s *Scraper) one(ctx context.Context, u, fn, version string) (Counters, error) {
	var c Counters
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return c, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return c, fmt.Errorf("reading metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("reading metrics: GET %s: %s", u, resp.Status)
	}
	dec := expfmt.NewDecoder(io.LimitReader(resp.Body, maxMetricsBody), expfmt.ResponseFormat(resp.Header))
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); errors.Is(err, io.EOF) {
			return c, nil
		} else if err != nil {
			return c, fmt.Errorf("parsing metrics from %s: %w", u, err)
		}
		for _, m := range mf.GetMetric() {
			l := labels(m)
			if l["function"] != fn {
				continue
			}
			v := m.GetCounter().GetValue()
			if m.GetCounter() == nil {
				v = m.GetUntyped().GetValue()
			}
			switch mf.GetName() {
			case MetricInvocations:
				if l["version"] == version {
					c.Invocations += v
				}
			case MetricErrors:
				if l["version"] != version {
					continue
				}
				if l["kind"] == "platform" {
					c.PlatformErrors += v
				} else {
					c.FunctionErrors += v
				}
			case MetricThrottles:
				c.Throttles += v
			}
		}
	}
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}
