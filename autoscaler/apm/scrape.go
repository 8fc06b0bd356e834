package apm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// The gateway's exported gauges and their labels.
const (
	MetricEnvironments = "nimbus_environments"
	MetricInFlight     = "nimbus_in_flight"
	LabelFunction      = "function"
	LabelVersion       = "version"
	LabelGroup         = "group"
	GroupProvisioned   = "provisioned"
	GroupOnDemand      = "ondemand"
)

// maxBody bounds one metrics page.
const maxBody = 32 << 20

type seriesKey struct{ function, version string }

// values are one function version's gauges, aggregated over gateways.
type values struct {
	environments map[string]float64 // by group: max over gateways
	inFlight     map[string]float64 // by group: sum over gateways
}

// snapshot is one scrape of every gateway.
type snapshot struct {
	at       time.Time
	series   map[seriesKey]*values
	gateways int // listed
	answered int // scraped successfully
}

func (s *snapshot) get(k seriesKey) *values {
	v, ok := s.series[k]
	if !ok {
		v = &values{environments: map[string]float64{}, inFlight: map[string]float64{}}
		s.series[k] = v
	}
	return v
}

// scrapeOne fetches and parses one gateway's metrics page.
func scrapeOne(ctx context.Context, client *http.Client, url string) ([]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %s", url, resp.Status)
	}
	dec := expfmt.NewDecoder(io.LimitReader(resp.Body, maxBody), expfmt.ResponseFormat(resp.Header))
	var fams []*dto.MetricFamily
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); errors.Is(err, io.EOF) {
			return fams, nil
		} else if err != nil {
			return nil, fmt.Errorf("parsing metrics from %s: %w", url, err)
		}
		if mf.GetName() == MetricEnvironments || mf.GetName() == MetricInFlight {
			fams = append(fams, &mf)
		}
	}
}

// add folds one gateway's families into s.
func (s *snapshot) add(fams []*dto.MetricFamily) {
	for _, mf := range fams {
		for _, m := range mf.GetMetric() {
			var fn, ver, group string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case LabelFunction:
					fn = l.GetValue()
				case LabelVersion:
					ver = l.GetValue()
				case LabelGroup:
					group = l.GetValue()
				}
			}
			if fn == "" || ver == "" {
				continue
			}
			val := gaugeValue(m)
			v := s.get(seriesKey{fn, ver})
			switch mf.GetName() {
			case MetricEnvironments:
				v.environments[group] = max(v.environments[group], val)
			case MetricInFlight:
				v.inFlight[group] += val
			}
		}
	}
}

// gaugeValue reads a gauge, or an untyped sample (a text page without a
// TYPE line).
func gaugeValue(m *dto.Metric) float64 {
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetUntyped().GetValue()
}
