package usage

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/metrics"
)

// Path is the usage query's path: GET Path?function=F&since=S, where S is
// RFC 3339 or a duration back from now ("24h"); default the last 30 days.
const Path = "/nimbus/v1/usage"

// Report is the answer of a usage query.
type Report struct {
	Since time.Time   `json:"since"`
	Until time.Time   `json:"until"`
	Usage []ReportRow `json:"usage"`
	Total ReportRow   `json:"total"`
}

// ReportRow is one function version's usage in GB-seconds.
type ReportRow struct {
	Function             string  `json:"function,omitempty"`
	Version              string  `json:"version,omitempty"`
	Requests             int64   `json:"requests"`
	GBSeconds            float64 `json:"gbSeconds"`
	ProvisionedGBSeconds float64 `json:"provisionedGbSeconds"`
}

// ParseSince reads a since value (RFC 3339 or a duration before now).
func ParseSince(s string, now time.Time) (time.Time, bool) {
	if s == "" {
		return now.Add(-30 * 24 * time.Hour), true
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), true
	}
	return time.Time{}, false
}

// Handler answers usage queries from l (nil: 503, the gateway has not
// opened its ledger yet). Authentication is the caller's.
func Handler(l func() *Ledger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": "use GET"})
			return
		}
		ledger := l()
		if ledger == nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": "usage metering is not running yet"})
			return
		}
		now := ledger.now()
		since, ok := ParseSince(r.URL.Query().Get("since"), now)
		fn := r.URL.Query().Get("function")
		if !ok || strings.ContainsAny(fn, ".*> ") {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": "since is RFC 3339 or a positive duration; function is a function name"})
			return
		}
		// This gateway's own counts since its last flush are included; a
		// failed flush keeps them for the next one.
		if err := ledger.Flush(r.Context()); err != nil {
			ledger.logger.Warn("flushing usage before a query", "error", err)
		}
		rows, err := ledger.Query(r.Context(), fn, since)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
			return
		}
		rep := Report{Since: since.UTC().Truncate(time.Hour), Until: now.UTC(), Usage: make([]ReportRow, 0, len(rows))}
		var total Counts
		for _, row := range rows {
			total.add(row.Counts)
			rep.Usage = append(rep.Usage, ReportRow{Function: row.Function, Version: row.Version, Requests: row.Requests,
				GBSeconds: row.GBSeconds(), ProvisionedGBSeconds: row.ProvisionedGBSeconds()})
		}
		rep.Total = ReportRow{Requests: total.Requests, GBSeconds: total.GBSeconds(), ProvisionedGBSeconds: total.ProvisionedGBSeconds()}
		_ = json.NewEncoder(w).Encode(rep)
	})
}

// SampleProvisioned runs until ctx ends: every interval it reads the
// provisioned environments in stats and adds their memory × the time since
// the last sample through add.
func SampleProvisioned(ctx context.Context, interval time.Duration, stats func() []metrics.PoolStat,
	memoryMB func(ctx context.Context, function, version string) int64, add func(function, version string, mbMs int64)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			dt := now.Sub(last).Milliseconds()
			last = now
			for _, p := range stats() {
				envs := p.Environments[metrics.GroupProvisioned]
				if envs <= 0 {
					continue
				}
				if mb := memoryMB(ctx, p.Function, p.Version); mb > 0 {
					add(p.Function, p.Version, int64(envs)*mb*dt)
				}
			}
		}
	}
}
