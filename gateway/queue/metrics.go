package queue

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// queueMetrics are the queue's series on the gateway's registry.
type queueMetrics struct {
	enqueued            *prometheus.CounterVec
	rejected            prometheus.Counter
	retries             *prometheus.CounterVec
	deferred            *prometheus.CounterVec
	finished            *prometheus.CounterVec
	deadLetters         *prometheus.CounterVec
	deadLetterErrors    *prometheus.CounterVec
	destinationFailures *prometheus.CounterVec
	depth               prometheus.Collector
}

func newQueueMetrics(q *Queue) *queueMetrics {
	return &queueMetrics{
		enqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nimbus_async_enqueued_total", Help: "Event invocations stored in the async queue.",
		}, []string{"function"}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nimbus_async_rejected_total", Help: "Event invocations refused because the queue was full.",
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nimbus_async_retries_total", Help: "Async retries scheduled; reason is function_error or throttle (throttles and system errors).",
		}, []string{"function", "reason"}),
		deferred: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nimbus_async_deferred_total", Help: "Events handed back to the queue unrun because their function had no free async slot on this gateway.",
		}, []string{"function"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nimbus_async_finished_total", Help: "Async invocations finished, by final state (succeeded, failed, dead-lettered).",
		}, []string{"function", "state"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nimbus_async_dead_letters_total", Help: "Events delivered to the dead-letter target.",
		}, []string{"function"}),
		deadLetterErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nimbus_async_dead_letter_errors_total", Help: "Events the dead-letter target did not take (dropped), Lambda's DeadLetterErrors.",
		}, []string{"function"}),
		destinationFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nimbus_async_destination_failures_total", Help: "Deliveries to destinations or dead-letter targets that failed, by destination kind.",
		}, []string{"function", "kind"}),
		depth: &depthCollector{q: q},
	}
}

func (m *queueMetrics) register(reg prometheus.Registerer) {
	reg.MustRegister(m.enqueued, m.rejected, m.retries, m.deferred, m.finished, m.deadLetters, m.deadLetterErrors, m.destinationFailures, m.depth)
}

var (
	depthDesc = prometheus.NewDesc("nimbus_async_queue_depth", "Events in the async queue (waiting, being worked on or waiting for a retry).", nil, nil)
	ageDesc   = prometheus.NewDesc("nimbus_async_oldest_event_age_seconds", "Age of the oldest event in the async queue (0 when empty).", nil, nil)
)

// depthCollector reads the stream's state at scrape time.
type depthCollector struct{ q *Queue }

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- depthDesc; ch <- ageDesc }

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	conn := c.q.conn
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := conn.stream.Info(ctx)
	if err != nil {
		c.q.logger.Warn("reading queue depth", "error", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(info.State.Msgs))
	age := 0.0
	if info.State.Msgs > 0 && !info.State.FirstTime.IsZero() {
		age = c.q.now().Sub(info.State.FirstTime).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, age)
}

// FunctionDepth is one function's share of the async queue.
type FunctionDepth struct {
	// Depth is the events waiting, being worked on or waiting for a retry.
	Depth int
	// Oldest is the age of the oldest of them (0 when none).
	Oldest time.Duration
}

// Depths answers the async queue's events per function (functions with
// none are absent). It reads the stream's per-subject counts and, per
// function, its oldest message.
func (q *Queue) Depths(ctx context.Context) (map[string]FunctionDepth, error) {
	conn := q.conn
	if conn == nil {
		return nil, nil
	}
	info, err := conn.stream.Info(ctx, jetstream.WithSubjectFilter(SubjectPrefix+".>"))
	if err != nil {
		return nil, fmt.Errorf("reading the queue's subjects: %w", err)
	}
	keys := map[string]int{}
	for subj, n := range info.State.Subjects {
		rest, ok := strings.CutPrefix(subj, SubjectPrefix+".")
		if !ok {
			continue
		}
		key, _, _ := strings.Cut(rest, ".")
		keys[key] += int(n)
	}
	out := make(map[string]FunctionDepth, len(keys))
	now := q.now()
	for key, n := range keys {
		d := FunctionDepth{Depth: n}
		msg, err := conn.stream.GetMsg(ctx, info.State.FirstSeq, jetstream.WithGetMsgSubject(SubjectPrefix+"."+key+".*"))
		if err == nil && !msg.Time.IsZero() {
			d.Oldest = max(0, now.Sub(msg.Time))
		}
		out[strings.ReplaceAll(key, "=", ".")] = d
	}
	return out, nil
}
