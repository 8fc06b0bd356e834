package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Invocation states.
const (
	StateQueued       = "queued"
	StateRunning      = "running"
	StateRetrying     = "retrying"
	StateSucceeded    = "succeeded"
	StateFailed       = "failed"
	StateDeadLettered = "dead-lettered"
)

// Status is what became of one async invocation.
type Status struct {
	RequestID string `json:"requestId"`
	Function  string `json:"function"`
	Qualifier string `json:"qualifier,omitempty"`
	// State is one of the State* values.
	State string `json:"state"`
	// Attempts is how many times the function ran (or was tried).
	Attempts int `json:"attempts"`
	// Retries is n in "retrying n": retries after function errors so far.
	Retries int `json:"retries"`
	// Throttles counts retries after throttles and system errors.
	Throttles       int       `json:"throttles,omitempty"`
	EnqueuedAt      time.Time `json:"enqueuedAt"`
	UpdatedAt       time.Time `json:"updatedAt"`
	NextAttemptAt   time.Time `json:"nextAttemptAt,omitzero"`
	ExecutedVersion string    `json:"executedVersion,omitempty"`
	FunctionError   string    `json:"functionError,omitempty"`
	// StatusCode of the last attempt (200, 429, 500).
	StatusCode int `json:"statusCode,omitempty"`
	// Condition of a finished invocation (Success, RetriesExhausted,
	// EventAgeExceeded).
	Condition string `json:"condition,omitempty"`
	// Error is the last error message (function error JSON or platform error).
	Error string `json:"error,omitempty"`
	// DestinationErrors lists destinations that could not be delivered to.
	DestinationErrors []string `json:"destinationErrors,omitempty"`
	// LastResponse is the last function output (kept for records when an
	// event ages out after a function error); not served.
	LastResponse json.RawMessage `json:"lastResponse,omitempty"`
}

// ErrStatusNotFound: no invocation with that request id in the retention window.
var ErrStatusNotFound = errors.New("no async invocation with that request id")

// keyFunction encodes a function name as one KV key token ("." is not a
// token character; function names never contain "=").
func keyFunction(fn string) string { return strings.ReplaceAll(fn, ".", "=") }

func statusKey(fn, requestID string) string { return keyFunction(fn) + "." + requestID }

func eventSubject(fn, requestID string) string {
	return SubjectPrefix + "." + keyFunction(fn) + "." + requestID
}

func (q *Queue) putStatus(ctx context.Context, st *Status) {
	st.UpdatedAt = time.Now().UTC()
	b, err := json.Marshal(st)
	if err == nil {
		_, err = q.conn.kv.Put(ctx, statusKey(st.Function, st.RequestID), b)
	}
	if err != nil {
		q.logger.Warn("writing invocation status", "function", st.Function, "request_id", st.RequestID, "error", err)
	}
}

func (q *Queue) getStatus(ctx context.Context, fn, requestID string) (*Status, error) {
	e, err := q.conn.kv.Get(ctx, statusKey(fn, requestID))
	if err != nil {
		return nil, err
	}
	st := &Status{}
	if err := json.Unmarshal(e.Value(), st); err != nil {
		return nil, fmt.Errorf("decoding status of %s: %w", requestID, err)
	}
	return st, nil
}

// Lookup returns an invocation's status by request id: the status bucket's
// entry, or "queued" while the event waits for its first attempt.
func (q *Queue) Lookup(ctx context.Context, requestID string) (*Status, error) {
	if !validRequestID(requestID) {
		return nil, ErrStatusNotFound
	}
	if st, err := q.lookupStatus(ctx, requestID); st != nil || err != nil {
		return st, err
	}
	m, err := q.conn.stream.GetLastMsgForSubject(ctx, SubjectPrefix+".*."+requestID)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// A worker writes the final status before it acks the event away, so
		// an event that left the stream between the two reads has a status
		// entry now: look once more before saying there is none.
		if st, err := q.lookupStatus(ctx, requestID); st != nil || err != nil {
			return st, err
		}
		return nil, ErrStatusNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("looking up queued event: %w", err)
	}
	return &Status{
		RequestID: requestID, Function: m.Header.Get(hdrFunction), Qualifier: m.Header.Get(hdrQualifier),
		State: StateQueued, EnqueuedAt: m.Time.UTC(), UpdatedAt: m.Time.UTC(),
	}, nil
}

// lookupStatus reads a request's entry from the status bucket; nil, nil
// when there is none.
func (q *Queue) lookupStatus(ctx context.Context, requestID string) (*Status, error) {
	keys, err := q.conn.kv.ListKeysFiltered(ctx, "*."+requestID)
	if err != nil {
		return nil, fmt.Errorf("listing status keys: %w", err)
	}
	var key string
	for k := range keys.Keys() {
		key = k
	}
	_ = keys.Stop()
	if key == "" {
		return nil, nil
	}
	fnEnc, _, _ := strings.Cut(key, ".")
	st, err := q.getStatus(ctx, strings.ReplaceAll(fnEnc, "=", "."), requestID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st.LastResponse = nil
	return st, nil
}

// List returns a function's invocations in the retention window, newest
// first, at most limit.
func (q *Queue) List(ctx context.Context, function string, limit int) ([]*Status, error) {
	var out []*Status
	seen := map[string]bool{}
	keys, err := q.conn.kv.ListKeysFiltered(ctx, keyFunction(function)+".*")
	if err != nil {
		return nil, fmt.Errorf("listing status keys: %w", err)
	}
	var names []string
	for k := range keys.Keys() {
		names = append(names, k)
	}
	_ = keys.Stop()
	for _, k := range names {
		_, rid, _ := strings.Cut(k, ".")
		st, err := q.getStatus(ctx, function, rid)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		st.LastResponse = nil
		seen[rid] = true
		out = append(out, st)
	}
	info, err := q.conn.stream.Info(ctx, jetstream.WithSubjectFilter(SubjectPrefix+"."+keyFunction(function)+".*"))
	if err != nil {
		return nil, fmt.Errorf("reading queued events: %w", err)
	}
	for subj := range info.State.Subjects {
		rid := subj[strings.LastIndexByte(subj, '.')+1:]
		if seen[rid] {
			continue
		}
		st, err := q.Lookup(ctx, rid)
		if err == nil {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EnqueuedAt.After(out[j].EnqueuedAt) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// validRequestID accepts what can be a KV key token and a subject token.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Status API paths.
const (
	// InvocationsPath + "{requestId}" answers one invocation's Status.
	InvocationsPath = "/nimbus/v1/invocations/"
	// FunctionsPath + "{function}/invocations" lists a function's
	// invocations ("?limit=", default 100).
	FunctionsPath = "/nimbus/v1/functions/"
)

// Handler serves the status API. authenticate, when not nil, vets each
// request first (SigV4 on a gateway with access keys).
func (q *Queue) Handler(authenticate func(*http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "use GET"})
			return
		}
		if authenticate != nil {
			if err := authenticate(r); err != nil {
				writeJSON(w, http.StatusForbidden, map[string]string{"message": err.Error()})
				return
			}
		}
		if rid, ok := strings.CutPrefix(r.URL.Path, InvocationsPath); ok {
			st, err := q.Lookup(r.Context(), rid)
			switch {
			case errors.Is(err, ErrStatusNotFound):
				writeJSON(w, http.StatusNotFound, map[string]string{"message": "no async invocation " + rid + " in the retention window"})
			case err != nil:
				writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
			default:
				writeJSON(w, http.StatusOK, st)
			}
			return
		}
		rest, _ := strings.CutPrefix(r.URL.Path, FunctionsPath)
		fn, tail, _ := strings.Cut(rest, "/")
		if tail != "invocations" || fn == "" {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "unknown path " + r.URL.Path})
			return
		}
		limit := 100
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"message": "limit must be a positive integer"})
				return
			}
			limit = n
		}
		list, err := q.List(r.Context(), fn, limit)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
			return
		}
		if list == nil {
			list = []*Status{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"function": fn, "invocations": list})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
