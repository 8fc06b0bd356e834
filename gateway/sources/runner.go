package sources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/destinations"
	"github.com/nimbus-fn/nimbus/specs"
)

// Lock rule: runner.mu guards the partition buffers, the in-flight count
// and the status counters; it is never held while calling the Source, the
// invoker or a destination — except Pauser's Pause and Resume, which only
// flip the client's fetch state and do not block.

// partition is one ordering key's buffered records: a source partition, or
// with parallelization_factor one lane of it.
type partition struct {
	// src is the source's partition (Record.Partition) the lane belongs
	// to: what Pause and Resume name.
	src string
	// t tracks the source partition's checkpoint across its lanes (nil
	// without parallelization_factor: the lane is the partition).
	t      *tracker
	recs   []*Record
	first  time.Time // when the oldest buffered record arrived
	busy   bool      // a batch of this partition is in flight (ordered)
	paused bool
	// stuck: the batch in flight has failed and is being retried, so the
	// partition's buffer will not drain soon.
	stuck bool
	// checkpointed is closed when the partition's latest checkpoint (an
	// ordered source's Done, run in the background) has returned; nil
	// before the first.
	checkpointed chan struct{}
}

// tracker is one source partition's records in poll order while
// parallelization_factor splits it into lanes: lanes finish records out
// of order, and the checkpoint only advances over the leading records that
// are all finished, so a record a lane has not finished is never passed.
type tracker struct {
	queue []*Record        // polled, not yet checkpointed, in poll order
	done  map[*Record]bool // finished records still in queue
	// checkpointed is closed when the latest checkpoint has returned;
	// checkpoints of a partition go out one after another, in order.
	checkpointed chan struct{}
	// heldPaused: the partition is paused because queue reached heldCap.
	heldPaused bool
}

// laneOf is the lane of rec.
func laneOf(rec *Record, factor int) int { return Lane(rec.Key, rec.ID, factor) }

// Lane is the lane (0…factor-1) a record with key and id takes under
// parallelization_factor factor: FNV-1a of the key modulo factor, or of the
// id when the key is empty. The same key always takes the same lane.
func Lane(key, id string, factor int) int {
	h := fnv.New32a()
	if key != "" {
		h.Write([]byte(key))
	} else {
		h.Write([]byte(id))
	}
	return int(h.Sum32() % uint32(factor))
}

// runner polls one mapping and drives its batches.
type runner struct {
	m      Mapping
	deps   *Deps
	opts   *Options
	src    Source
	log    hclog.Logger
	match  func(map[string]any) bool
	window time.Duration
	maxAge time.Duration
	// ordered sources: one batch per partition at a time; queue sources:
	// failed records go back through redeliver.
	ordered   bool
	redeliver Redeliverer
	pauser    Pauser
	limit     int // batches in flight at once
	// factor is the ordered mapping's parallelization_factor (lanes per
	// partition); 1 means the partition is the lane.
	factor int

	mu    sync.Mutex
	parts map[string]*partition
	// trackers: the source partitions' checkpoints when factor > 1.
	trackers map[string]*tracker
	// srcPaused counts the lanes of each source partition that want it
	// paused; the source pauses it while the count is above zero.
	srcPaused map[string]int
	order     []string // partitions in arrival order, for fair dispatch
	buffered  int
	inflight  int
	wake      chan struct{} // wakes the dispatcher
	freed     chan struct{} // a batch finished: the poller may have room
	st        *Status
	// pollProblem: the last result is a broker error from Poll.
	pollProblem bool
	// inflightTimes holds the oldest record time of each batch in flight.
	inflightTimes map[int]time.Time
	nextSeq       int

	// checkpoints counts the ordered checkpoints still running; run waits
	// for them before closing the source.
	checkpoints sync.WaitGroup
}

func oldestOf(recs []*Record) time.Time {
	var t time.Time
	for _, rec := range recs {
		if !rec.Time.IsZero() && (t.IsZero() || rec.Time.Before(t)) {
			t = rec.Time
		}
	}
	return t
}

// maxBuffered bounds the records a runner holds before it stops polling.
func (r *runner) maxBuffered() int {
	return max(2*r.m.Spec.BatchSize*r.limit, 2*r.m.Spec.BatchSize, 100)
}

// run polls until ctx ends, then waits for in-flight batches. Records not
// finished are left to the broker (redelivered).
//
// Polling and dispatching run apart: a dispatcher goroutine starts batches
// whenever records arrive, a batch finishes or a batching window closes,
// so a finished batch never waits for a Poll that is blocked on the broker.
func (r *runner) run(ctx context.Context) {
	var wg sync.WaitGroup
	dctx, stopDispatch := context.WithCancel(context.WithoutCancel(ctx))
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		r.dispatchLoop(ctx, dctx, &wg)
	}()
	defer func() {
		stopDispatch()
		<-dispatched
		wg.Wait()
		r.checkpoints.Wait()
		if err := r.src.Close(); err != nil {
			r.log.Warn("closing the source", "error", err)
		}
	}()
	pollErrs := 0
	for ctx.Err() == nil {
		room := r.room()
		if room == 0 {
			select {
			case <-ctx.Done():
			case <-r.freed:
			case <-time.After(r.opts.PollWait):
			}
			continue
		}
		recs, err := r.src.Poll(ctx, room, r.opts.PollWait)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			pollErrs++
			r.setProblem(err)
			r.count(func(*Status) { r.pollProblem = true })
			d := backoff(r.opts.RetryBase, r.opts.RetryMax, pollErrs)
			r.log.Warn("polling the event source; retrying", "error", err, "backoff", d)
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
			continue
		}
		pollErrs = 0
		r.clearProblem()
		if len(recs) > 0 {
			r.add(recs)
			r.kick()
		}
	}
}

// dispatchLoop starts ready batches until stop ends; batches get ctx.
func (r *runner) dispatchLoop(ctx, stop context.Context, wg *sync.WaitGroup) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := r.dispatch(ctx, wg)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), time.Millisecond))
		}
		select {
		case <-stop.Done():
			return
		case <-r.wake:
		case <-timer.C:
		}
	}
}

// kick wakes the dispatcher.
func (r *runner) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// room is how many records the next Poll may ask for.
func (r *runner) room() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pauser != nil && r.allFullLocked() {
		return 0
	}
	if r.heldFullLocked() {
		return 0
	}
	return max(min(r.maxBuffered()-r.buffered, r.m.Spec.BatchSize), 0)
}

// full is how many buffered records make a partition of a source that
// pauses full: two batches, one to start as soon as the one in flight is
// done and one more while the next Poll runs.
func (r *runner) full() int { return 2 * r.m.Spec.BatchSize }

// allFullLocked reports whether every partition that still fetches holds a
// full buffer (and there is at least one), after pausing the full ones
// that are stuck retrying. Polling more then only serves partitions not
// seen yet, and those get their turn as soon as a batch finishes, so the
// poller waits for that instead. This, not Pause, is what bounds healthy
// partitions: pausing drops what the client has already fetched for the
// partition and fetches it again on Resume, a broker round trip a lone
// partition would wait for every couple of batches even when nothing
// fails. A stuck partition is paused, since no batch of it may finish for
// a long time and partitions not seen yet must keep flowing.
func (r *runner) allFullLocked() bool {
	any := false
	for _, p := range r.parts {
		if p.paused {
			continue
		}
		if len(p.recs) < r.full() {
			return false
		}
		if p.stuck && p.t == nil {
			r.pauseLocked(p)
			continue
		}
		any = true
	}
	return any
}

// pauseLocked marks lane p paused and pauses its source partition unless
// another of its lanes already has.
func (r *runner) pauseLocked(p *partition) {
	if p.paused {
		return
	}
	p.paused = true
	r.srcPaused[p.src]++
	if r.srcPaused[p.src] == 1 {
		r.pauser.Pause([]string{p.src})
	}
}

// resumeLocked undoes pauseLocked: the source partition fetches again once
// none of its lanes wants it paused.
func (r *runner) resumeLocked(p *partition) {
	if !p.paused {
		return
	}
	p.paused = false
	r.srcPaused[p.src]--
	if r.srcPaused[p.src] == 0 {
		delete(r.srcPaused, p.src)
		r.pauser.Resume([]string{p.src})
	}
}

// heldCap bounds the records one source partition's tracker holds (polled
// but not yet checkpointed) with parallelization_factor: while a lane
// retries a failing batch the other lanes go on, and what they finish
// waits behind it. Normal skew between lanes holds a few batches per lane.
func (r *runner) heldCap() int { return 20 * r.m.Spec.BatchSize * r.factor }

// heldFullLocked bounds what lanes hold behind a failing lane: a partition
// whose tracker holds heldCap records is paused (whole: the stuck lane is
// not paused on its own, so the partition's other lanes keep flowing until
// then) and resumed by checkpointLanes once it is down to half. A source
// that cannot pause stops polling instead: it reports true.
func (r *runner) heldFullLocked() bool {
	for src, t := range r.trackers {
		if t.heldPaused || len(t.queue) < r.heldCap() {
			continue
		}
		if r.pauser == nil {
			return true
		}
		t.heldPaused = true
		r.srcPaused[src]++
		if r.srcPaused[src] == 1 {
			r.pauser.Pause([]string{src})
		}
	}
	return false
}

// unholdLocked resumes a partition heldFullLocked paused once its tracker
// is down to half of heldCap.
func (r *runner) unholdLocked(src string, t *tracker) {
	if !t.heldPaused || len(t.queue) >= r.heldCap()/2 {
		return
	}
	t.heldPaused = false
	r.srcPaused[src]--
	if r.srcPaused[src] == 0 {
		delete(r.srcPaused, src)
		r.pauser.Resume([]string{src})
	}
}

// stuck marks p's batch in flight as retrying and wakes the poller, which
// may be waiting for room that p will not make soon.
func (r *runner) stuck(p *partition) {
	r.mu.Lock()
	p.stuck = true
	r.mu.Unlock()
	select {
	case r.freed <- struct{}{}:
	default:
	}
}

// add buffers polled records by partition.
func (r *runner) add(recs []*Record) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range recs {
		key := rec.Partition
		if !r.ordered {
			key = ""
		}
		var t *tracker
		if r.factor > 1 {
			t = r.trackers[rec.Partition]
			if t == nil {
				t = &tracker{done: map[*Record]bool{}}
				r.trackers[rec.Partition] = t
			}
			t.queue = append(t.queue, rec)
			key = rec.Partition + "\x00" + strconv.Itoa(laneOf(rec, r.factor))
		}
		p := r.parts[key]
		if p == nil {
			p = &partition{src: rec.Partition, t: t}
			r.parts[key] = p
			r.order = append(r.order, key)
		}
		if len(p.recs) == 0 {
			p.first = now
		}
		p.recs = append(p.recs, rec)
		r.buffered++
		r.st.RecordsIn++
		// A full partition is paused only while it is stuck retrying: a
		// healthy one drains within a batch or two, and pausing it would
		// cost more than it saves (the client drops what it fetched for
		// it, and a resumed partition waits for the fetch in flight to
		// the broker, up to its max wait, before it is fetched again —
		// with several busy partitions that was most of the time). A
		// stuck lane is not paused: that would stop its partition's other
		// lanes; heldFullLocked bounds it instead.
		if r.pauser != nil && !p.paused && p.stuck && p.t == nil && len(p.recs) >= r.full() {
			r.pauseLocked(p)
		}
	}
	r.deps.Metrics.received(r.m, len(recs))
}

// dispatch starts every batch that is ready and has a free slot, and
// returns when the next batching window closes (zero: none open).
func (r *runner) dispatch(ctx context.Context, wg *sync.WaitGroup) (next time.Time) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, key := range r.order {
		p := r.parts[key]
		for len(p.recs) > 0 && r.inflight < r.limit && !(r.ordered && p.busy) {
			full := len(p.recs) >= r.m.Spec.BatchSize || r.sizeOf(p.recs) >= batchBytes
			if !full && now.Sub(p.first) < r.window {
				if closes := p.first.Add(r.window); next.IsZero() || closes.Before(next) {
					next = closes
				}
				break
			}
			batch := r.takeLocked(p)
			if len(p.recs) > 0 {
				p.first = now
			}
			// A paused partition fetches again while it still has a batch
			// buffered, so the fetch overlaps that batch instead of
			// following it.
			if p.paused && len(p.recs) <= r.m.Spec.BatchSize {
				r.resumeLocked(p)
			}
			// The poller may have been waiting for this partition to
			// have room.
			select {
			case r.freed <- struct{}{}:
			default:
			}
			r.inflight++
			p.busy = true
			seq := r.nextSeq
			r.nextSeq++
			r.inflightTimes[seq] = oldestOf(batch)
			wg.Add(1)
			go func(key string, p *partition) {
				defer wg.Done()
				r.process(ctx, p, batch)
				r.mu.Lock()
				r.inflight--
				delete(r.inflightTimes, seq)
				p.busy = false
				p.stuck = false
				if p.paused && len(p.recs) < r.m.Spec.BatchSize {
					r.resumeLocked(p)
				}
				r.mu.Unlock()
				r.kick()
				select {
				case r.freed <- struct{}{}:
				default:
				}
			}(key, p)
		}
	}
	return next
}

// batchBytes keeps a batch's event under the sync payload limit with room
// for base64 growth and the envelope.
const batchBytes = invokeapi.MaxPayload * 3 / 4 * 9 / 10

// takeLocked removes the next batch from p: up to BatchSize records whose
// sizes fit batchBytes (at least one record).
func (r *runner) takeLocked(p *partition) []*Record {
	n, size := 0, 0
	for n < len(p.recs) && n < r.m.Spec.BatchSize {
		if n > 0 && size+p.recs[n].Size > batchBytes {
			break
		}
		size += p.recs[n].Size
		n++
	}
	batch := append([]*Record(nil), p.recs[:n]...)
	p.recs = p.recs[n:]
	r.buffered -= n
	return batch
}

func (r *runner) sizeOf(recs []*Record) int {
	n := 0
	for _, rec := range recs {
		n += rec.Size
	}
	return n
}

// process takes one batch of p to the end.
func (r *runner) process(ctx context.Context, p *partition, recs []*Record) {
	if r.m.Spec.Type == specs.SourceSchedule {
		r.handleSchedule(ctx, recs)
		return
	}
	if r.ordered || r.redeliver == nil {
		r.handleOrdered(ctx, p, recs, 0)
		return
	}
	r.handleQueue(ctx, recs)
}

// handleOrdered retries recs (of partition p) in place until they are done,
// sent to on_failure, or the runner stops (then the broker redelivers
// them). attempts counts the function errors so far.
func (r *runner) handleOrdered(ctx context.Context, p *partition, recs []*Record, attempts int) {
	retries := 0 // throttles and outages, for backoff only
	for len(recs) > 0 && ctx.Err() == nil {
		if old := r.expiredPrefix(recs); old > 0 {
			r.fail(ctx, recs[:old], ConditionRecordAgeExceeded, attempts, nil, "records older than maximum_record_age")
			r.checkpoint(ctx, p, recs[:old])
			recs = recs[old:]
			continue
		}
		matched := r.filter(recs)
		if len(matched) == 0 {
			r.checkpoint(ctx, p, recs)
			return
		}
		res := r.invokeBatch(ctx, matched)
		if ctx.Err() != nil && res.kind != outcomeSuccess {
			return
		}
		switch res.kind {
		case outcomeTooLarge:
			if len(recs) > 1 {
				mid := len(recs) / 2
				r.handleOrdered(ctx, p, recs[:mid], attempts)
				r.handleOrdered(ctx, p, recs[mid:], attempts)
				return
			}
			r.fail(ctx, recs, ConditionPayloadTooLarge, attempts, nil, res.err.Error())
			r.checkpoint(ctx, p, recs)
			return
		case outcomeUnavailable:
			retries++
			r.stuck(p)
			r.retryWait(ctx, retries, "unavailable", res.err)
			continue
		case outcomeSuccess:
			failed, ok := r.partial(res, matched)
			if ok && len(failed) == 0 {
				r.checkpoint(ctx, p, recs)
				r.succeeded()
				return
			}
			if ok {
				// Checkpoint before the first failed record; retry from it.
				first := len(recs)
				for i, rec := range recs {
					if failed[rec.ID] {
						first = i
						break
					}
				}
				r.checkpoint(ctx, p, recs[:first])
				recs = recs[first:]
			}
			res.functionError = "Unhandled"
		}
		// A function error (or a partial failure): counts as a retry.
		attempts++
		r.functionFailed(res)
		if max := r.maxRetries(); max >= 0 && attempts > max {
			// As Lambda: the checkpoint stays before the lowest failed
			// record, so every record from there on is unprocessed as far
			// as anyone can tell (a handler may stop at its first failure
			// and name only it) and all of them go to on_failure. Sending
			// only the named ones lost the records behind them.
			discard := recs
			r.fail(ctx, discard, ConditionRetriesExhausted, attempts, &res, "")
			r.checkpoint(ctx, p, recs)
			return
		}
		if r.m.Spec.BisectBatchOnFunctionError && len(recs) > 1 {
			// Splitting does not count toward the retries.
			mid := len(recs) / 2
			r.handleOrdered(ctx, p, recs[:mid], attempts-1)
			r.handleOrdered(ctx, p, recs[mid:], attempts-1)
			return
		}
		r.stuck(p)
		r.retryWait(ctx, attempts, "function_error", nil)
	}
}

// handleQueue runs a queue-like batch once: what succeeded is done, what
// failed is redelivered by the broker (or sent to on_failure when its
// deliveries used up the retries).
func (r *runner) handleQueue(ctx context.Context, recs []*Record) {
	if old := r.expiredPrefix(recs); old > 0 {
		// Queue records are not ordered by age: pick them all.
		var keep, drop []*Record
		for _, rec := range recs {
			if r.expired(rec) {
				drop = append(drop, rec)
			} else {
				keep = append(keep, rec)
			}
		}
		r.fail(ctx, drop, ConditionRecordAgeExceeded, 0, nil, "records older than maximum_record_age")
		r.done(ctx, drop)
		recs = keep
	}
	matched := r.filter(recs)
	if len(matched) < len(recs) {
		in := make(map[*Record]bool, len(matched))
		for _, rec := range matched {
			in[rec] = true
		}
		var dropped []*Record
		for _, rec := range recs {
			if !in[rec] {
				dropped = append(dropped, rec)
			}
		}
		r.done(ctx, dropped)
	}
	if len(matched) == 0 {
		return
	}
	res := r.invokeBatch(ctx, matched)
	var failed []*Record
	switch res.kind {
	case outcomeSuccess:
		ids, ok := r.partial(res, matched)
		if ok && len(ids) == 0 {
			r.done(ctx, matched)
			r.succeeded()
			return
		}
		if !ok {
			failed = matched
		} else {
			var good []*Record
			for _, rec := range matched {
				if ids[rec.ID] {
					failed = append(failed, rec)
				} else {
					good = append(good, rec)
				}
			}
			r.done(ctx, good)
		}
		res.functionError = "Unhandled"
		r.functionFailed(res)
	case outcomeTooLarge:
		if len(matched) > 1 {
			mid := len(matched) / 2
			r.handleQueue(ctx, matched[:mid])
			r.handleQueue(ctx, matched[mid:])
			return
		}
		r.fail(ctx, matched, ConditionPayloadTooLarge, 1, nil, res.err.Error())
		r.done(ctx, matched)
		return
	case outcomeFunctionError:
		failed = matched
		r.functionFailed(res)
		if r.m.Spec.BisectBatchOnFunctionError && len(matched) > 1 {
			// Split and try each half now; the split is not a delivery.
			mid := len(matched) / 2
			r.handleQueue(ctx, matched[:mid])
			r.handleQueue(ctx, matched[mid:])
			return
		}
	case outcomeUnavailable:
		failed = matched
		r.setProblem(res.err)
	}
	if ctx.Err() != nil {
		return // the broker redelivers what was not acknowledged
	}
	var give, back []*Record
	maxRetries := r.maxRetries()
	for _, rec := range failed {
		if res.kind != outcomeUnavailable && maxRetries >= 0 && rec.Deliveries > maxRetries {
			give = append(give, rec)
		} else {
			back = append(back, rec)
		}
	}
	if len(give) > 0 {
		r.fail(ctx, give, ConditionRetriesExhausted, give[0].Deliveries, &res, "")
		r.done(ctx, give)
	}
	if len(back) > 0 {
		deliveries := max(back[0].Deliveries, 1)
		d := backoff(r.opts.RetryBase, r.opts.RetryMax, deliveries)
		r.deps.Metrics.retried(r.m, reasonOf(res.kind))
		r.count(func(s *Status) { s.Retries++ })
		if err := r.redeliver.Redeliver(ctx, back, d); err != nil {
			r.log.Warn("returning failed records to the broker; they come back after its redelivery timeout", "error", err)
		}
	}
}

func reasonOf(k outcome) string {
	if k == outcomeUnavailable {
		return "unavailable"
	}
	return "function_error"
}

// handleSchedule hands each tick's event to the function's async queue, as
// EventBridge invokes Lambda asynchronously: the function's async settings
// (retries, event age, destinations) then apply. The tick is done once the
// queue holds the event.
func (r *runner) handleSchedule(ctx context.Context, recs []*Record) {
	for attempt := 1; ctx.Err() == nil; attempt++ {
		ev, err := r.src.Event(recs)
		if err == nil {
			if r.deps.Enqueuer == nil {
				err = errors.New("this gateway has no async queue for schedules")
			} else {
				ref := r.m.Function
				if r.m.Qualifier != "" {
					ref += ":" + r.m.Qualifier
				}
				_, err = r.deps.Enqueuer.EnqueueFunction(ctx, ref, ev)
			}
		}
		if err == nil {
			r.deps.Metrics.batch(r.m, len(recs))
			r.count(func(s *Status) { s.Batches++; s.LastBatchAt = time.Now().UTC() })
			r.done(ctx, recs)
			r.succeeded()
			return
		}
		r.retryWait(ctx, attempt, "unavailable", fmt.Errorf("queueing the scheduled event: %w", err))
	}
}

// invokeBatch builds the event and invokes the function.
func (r *runner) invokeBatch(ctx context.Context, recs []*Record) result {
	ev, err := r.src.Event(recs)
	if err != nil {
		return result{kind: outcomeUnavailable, err: fmt.Errorf("building the event: %w", err)}
	}
	r.deps.Metrics.batch(r.m, len(recs))
	r.count(func(s *Status) { s.Batches++; s.LastBatchAt = time.Now().UTC() })
	return r.invoke(ctx, ev)
}

// partial reads batchItemFailures when the mapping reports them; without
// report_batch_item_failures any successful answer is full success.
func (r *runner) partial(res result, recs []*Record) (map[string]bool, bool) {
	if !r.m.Spec.ReportBatchItemFailures {
		return nil, true
	}
	return itemFailures(res.payload, recs)
}

func (r *runner) maxRetries() int {
	if r.m.Spec.MaximumRetryAttempts == nil {
		return -1
	}
	return *r.m.Spec.MaximumRetryAttempts
}

func (r *runner) expired(rec *Record) bool {
	return r.maxAge > 0 && !rec.Time.IsZero() && time.Since(rec.Time) > r.maxAge
}

// expiredPrefix counts the leading records older than maximum_record_age.
func (r *runner) expiredPrefix(recs []*Record) int {
	n := 0
	for n < len(recs) && r.expired(recs[n]) {
		n++
	}
	if !r.ordered {
		for _, rec := range recs {
			if r.expired(rec) {
				return max(n, 1)
			}
		}
	}
	return n
}

// filter returns the records some filter matches (all without filters)
// and counts the rest.
func (r *runner) filter(recs []*Record) []*Record {
	if r.match == nil {
		return recs
	}
	out := make([]*Record, 0, len(recs))
	for _, rec := range recs {
		if r.match(rec.Filter) {
			out = append(out, rec)
		}
	}
	if n := len(recs) - len(out); n > 0 {
		r.deps.Metrics.filtered(r.m, n)
		r.count(func(s *Status) { s.RecordsFiltered += int64(n) })
	}
	return out
}

// checkpoint marks an ordered batch's finished records Done in the
// background, so the broker round trip overlaps the partition's next
// invocation instead of delaying it. Checkpoints of one partition go out
// one at a time and in order: this waits for the previous one to return
// before starting the next. So a checkpoint only ever names records whose
// batch is finished, an earlier checkpoint never lands after a later one,
// and at most one is outstanding per partition; run waits for them all
// before closing the source.
func (r *runner) checkpoint(ctx context.Context, p *partition, recs []*Record) {
	if len(recs) == 0 {
		return
	}
	if !r.ordered {
		// Batches of a source without order share p: they checkpoint
		// as they finish.
		r.done(ctx, recs)
		return
	}
	if p.t != nil {
		r.checkpointLanes(ctx, p.t, recs)
		return
	}
	r.mu.Lock()
	prev := p.checkpointed
	r.mu.Unlock()
	if prev != nil {
		<-prev
	}
	next := make(chan struct{})
	r.mu.Lock()
	p.checkpointed = next
	r.mu.Unlock()
	r.checkpoints.Add(1)
	go func() {
		defer r.checkpoints.Done()
		defer close(next)
		r.done(ctx, recs)
	}()
}

// checkpointLanes marks recs (of one lane) finished in their partition's
// tracker and checkpoints the leading run of finished records, if any: the
// lowest record some lane has not finished holds the checkpoint, so a
// failing lane holds it while the others go on. Checkpoints of a
// partition still go out one at a time and in order (each waits for the
// one before), in the background; they never block the lane.
func (r *runner) checkpointLanes(ctx context.Context, t *tracker, recs []*Record) {
	r.mu.Lock()
	for _, rec := range recs {
		t.done[rec] = true
	}
	n := 0
	for n < len(t.queue) && t.done[t.queue[n]] {
		delete(t.done, t.queue[n])
		n++
	}
	if n == 0 {
		r.mu.Unlock()
		return
	}
	ready := append([]*Record(nil), t.queue[:n]...)
	t.queue = t.queue[n:]
	if r.pauser != nil {
		r.unholdLocked(ready[0].Partition, t)
	}
	prev := t.checkpointed
	next := make(chan struct{})
	t.checkpointed = next
	r.checkpoints.Add(1)
	r.mu.Unlock()
	select {
	case r.freed <- struct{}{}: // the poller may wait for held records
	default:
	}
	go func() {
		defer r.checkpoints.Done()
		defer close(next)
		if prev != nil {
			<-prev
		}
		r.done(ctx, ready)
	}()
}

// done checkpoints records with the broker.
func (r *runner) done(ctx context.Context, recs []*Record) {
	if len(recs) == 0 {
		return
	}
	// Checkpoint even while shutting down: the work was finished.
	if err := r.src.Done(context.WithoutCancel(ctx), recs); err != nil {
		r.log.Warn("checkpointing records; they may be delivered again", "records", len(recs), "error", err)
	}
	r.count(func(s *Status) { s.RecordsDone += int64(len(recs)) })
}

// fail sends the failure record for recs to on_failure (when configured)
// and counts them.
func (r *runner) fail(ctx context.Context, recs []*Record, condition string, attempts int, res *result, reason string) {
	if len(recs) == 0 {
		return
	}
	r.deps.Metrics.failedRecords(r.m, condition, len(recs))
	r.count(func(s *Status) { s.RecordsFailed += int64(len(recs)) })
	r.log.Warn("discarding records", "condition", condition, "records", len(recs), "reason", reason)
	d := r.m.Spec.OnFailure
	if d == nil {
		return
	}
	key, info := r.src.BatchInfo(recs)
	rec := FailureRecord{
		RequestContext: FailureRequestContext{FunctionARN: r.functionARN(), Condition: condition,
			ApproximateInvokeCount: attempts},
		Version:      "1.0",
		Timestamp:    time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		BatchInfoKey: key, BatchInfo: info, Reason: reason,
	}
	if res != nil {
		rec.RequestContext.RequestID = res.requestID
		rec.ResponseContext = &FailureResponseContext{StatusCode: res.statusCode, ExecutedVersion: res.executedVersion, FunctionError: res.functionError}
	}
	body, err := json.Marshal(rec)
	if err != nil {
		r.log.Error("encoding the failure record", "error", err)
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := r.deps.Sender.Send(sctx, d, destinations.Message{Body: body,
		Headers: map[string]string{"Nimbus-Mapping": r.m.UUID, "Nimbus-Condition": condition}}); err != nil {
		r.deps.Metrics.destinationFailed(r.m)
		r.log.Error("sending the failure record to on_failure; it is lost", "destination", destinations.Target(d), "error", err)
	}
}

// retryWait sleeps the backoff for the n-th retry of a batch.
func (r *runner) retryWait(ctx context.Context, n int, reason string, err error) {
	r.deps.Metrics.retried(r.m, reason)
	r.count(func(s *Status) { s.Retries++ })
	if err != nil {
		r.setProblem(err)
	}
	d := backoff(r.opts.RetryBase, r.opts.RetryMax, n)
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (r *runner) functionFailed(res result) {
	r.deps.Metrics.functionError(r.m)
	r.count(func(s *Status) {
		s.FunctionErrors++
		s.LastProcessingResult = ResultFunctionError
	})
}

func (r *runner) succeeded() {
	r.count(func(s *Status) { s.LastProcessingResult = ResultOK })
}

func (r *runner) setProblem(err error) {
	r.count(func(s *Status) {
		s.LastProcessingResult = ResultProblem + err.Error()
		s.LastError = err.Error()
		s.LastErrorAt = time.Now().UTC()
	})
}

// clearProblem forgets a broker problem once polling works again (a
// function's failure stays until a batch succeeds).
func (r *runner) clearProblem() {
	r.count(func(s *Status) {
		if r.pollProblem {
			r.pollProblem = false
			s.LastProcessingResult = ResultNoRecords
		}
	})
}

// count updates the status under the lock.
func (r *runner) count(f func(*Status)) {
	r.mu.Lock()
	f(r.st)
	r.mu.Unlock()
}

// oldestAge is the age of the oldest record buffered or in flight.
func (r *runner) oldestAge() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var oldest time.Time
	for _, t := range r.inflightTimes {
		if !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	for _, p := range r.parts {
		for _, rec := range p.recs {
			if !rec.Time.IsZero() && (oldest.IsZero() || rec.Time.Before(oldest)) {
				oldest = rec.Time
			}
		}
	}
	if oldest.IsZero() {
		return 0
	}
	return time.Since(oldest)
}

// status snapshots the runner's status.
func (r *runner) status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := *r.st
	s.Buffered = r.buffered
	s.InFlight = r.inflight
	r.mu.Unlock()
	if age := r.oldestAge(); age > 0 {
		s.OldestRecordAge = age.Round(time.Millisecond).String()
	}
	r.mu.Lock()
	return s
}

// backoff is exponential from base, capped at most, with jitter.
func backoff(base, most time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < most; i++ {
		d *= 2
	}
	d = min(d, most)
	return d/2 + rand.N(d/2+1)
}

// qualifier of the mapping ($LATEST when empty).
func (m Mapping) qualifier() string {
	if m.Qualifier == "" {
		return catalog.Latest
	}
	return m.Qualifier
}
