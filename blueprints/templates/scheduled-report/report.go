package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Check is the result of one URL.
type Check struct {
	URL    string `json:"url"`
	Status int    `json:"status,omitempty"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Millis int64  `json:"ms"`
}

// Report is what one run produces: the function's result, which the
// schedule's asynchronous invocation hands to the on_success destination.
type Report struct {
	// Tick is the scheduled time (the event's time), EventID its id: a
	// tick fired twice after a gateway failover carries the same id.
	Tick    time.Time `json:"tick"`
	EventID string    `json:"event_id,omitempty"`
	Checked int       `json:"checked"`
	Healthy int       `json:"healthy"`
	Failing []string  `json:"failing"`
	Checks  []Check   `json:"checks"`
}

// Reporter checks URLs. A URL is healthy when a GET answers 2xx or 3xx
// (redirects are not followed) within Timeout.
type Reporter struct {
	URLs     []string
	Client   *http.Client
	Timeout  time.Duration
	Parallel int
}

// ParseURLs reads a comma- or space-separated list of http(s) URLs.
func ParseURLs(s string) ([]string, error) {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		u, err := url.Parse(f)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("CHECK_URLS: %q is not an http(s) URL", f)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, errors.New("CHECK_URLS is empty: give the URLs to check, separated by commas")
	}
	return out, nil
}

// Run is the handler: ev is EventBridge's scheduled event.
func (r *Reporter) Run(ctx context.Context, ev events.EventBridgeEvent) (Report, error) {
	rep := Report{Tick: ev.Time, EventID: ev.ID, Checked: len(r.URLs), Failing: []string{}}
	checks := make([]Check, len(r.URLs))
	sem := make(chan struct{}, max(r.Parallel, 1))
	var wg sync.WaitGroup
	for i, u := range r.URLs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			checks[i] = r.check(ctx, u)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Report{}, fmt.Errorf("the run ran out of time: %w", err)
	}
	for _, c := range checks {
		if c.OK {
			rep.Healthy++
		} else {
			rep.Failing = append(rep.Failing, c.URL)
		}
	}
	sort.Strings(rep.Failing)
	rep.Checks = checks
	return rep, nil
}

func (r *Reporter) check(ctx context.Context, u string) Check {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	c := Check{URL: u}
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	resp, err := r.Client.Do(req)
	c.Millis = time.Since(start).Milliseconds()
	if err != nil {
		c.Error = err.Error()
		return c
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	c.Status = resp.StatusCode
	c.OK = resp.StatusCode >= 200 && resp.StatusCode < 400
	return c
}

// Summary is the report as log lines.
func (rep Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "report for %s: %d of %d healthy\n", rep.Tick.Format(time.RFC3339), rep.Healthy, rep.Checked)
	for _, c := range rep.Checks {
		state := "ok"
		if !c.OK {
			state = "FAILING"
		}
		detail := fmt.Sprint(c.Status)
		if c.Error != "" {
			detail = c.Error
		}
		fmt.Fprintf(&b, "  %-7s %s (%s, %d ms)\n", state, c.URL, detail, c.Millis)
	}
	return b.String()
}
