package invokeapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// PathLogs answers the instance's recent log lines: GET with query
// since (RFC 3339 with nanoseconds; only lines after it) and follow=1 (keep
// the answer open and send new lines as they are written; with flush=D, a
// Go duration up to MaxLogFlush, new lines are written out at most once per
// D instead of as soon as the stream is quiet). The answer is
// newline-delimited JSON LogLine objects, oldest first. The instance keeps
// a bounded ring of lines; older ones are gone.
const PathLogs = "/nimbus/v1/logs"

// Log streams.
const (
	StreamStdout   = "stdout"
	StreamStderr   = "stderr"
	StreamPlatform = "platform" // START, END, REPORT and the platform's error lines
)

// LogLine is one line an instance logged.
type LogLine struct {
	Time time.Time `json:"time"`
	// RequestID is the invocation the line belongs to (empty for lines
	// written outside one, such as init output).
	RequestID string `json:"requestId,omitempty"`
	Stream    string `json:"stream"`
	Message   string `json:"message"`
}

// MaxLogFlush bounds a follower's flush interval (the flush parameter).
const MaxLogFlush = 5 * time.Second

// MaxLogLine bounds one line's message; a longer line is split.
const MaxLogLine = 16 * 1024

// Logs reads the instance's log lines after since (zero: all it keeps),
// calling fn for each in order; with follow it keeps reading new lines
// until ctx ends (it then answers nil) or the instance goes away.
func (c *Client) Logs(ctx context.Context, addr string, since time.Time, follow bool, fn func(LogLine) error) error {
	return c.logs(ctx, addr, since, follow, 0, fn)
}

// LogsBatched follows like Logs with follow, for a reader that collects
// rather than watches: the instance writes new lines out at most once per
// every (up to MaxLogFlush), so a busy function costs one write per batch.
func (c *Client) LogsBatched(ctx context.Context, addr string, since time.Time, every time.Duration, fn func(LogLine) error) error {
	return c.logs(ctx, addr, since, true, every, fn)
}

func (c *Client) logs(ctx context.Context, addr string, since time.Time, follow bool, every time.Duration, fn func(LogLine) error) error {
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	if follow {
		q.Set("follow", "1")
	}
	if every > 0 {
		q.Set("flush", every.String())
	}
	u, err := c.url(addr, PathLogs)
	if err != nil {
		return err
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("building logs request: %w", err)
	}
	c.auth(hreq.Header)
	resp, err := c.send(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("calling instance %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 4*MaxLogLine)
	for sc.Scan() {
		var l LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("decoding a log line from %s: %w", addr, err)
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading logs from %s: %w", addr, err)
	}
	return nil
}
