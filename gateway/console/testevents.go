package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"time"
)

// TestEvent is one saved test event of a function.
type TestEvent struct {
	Name     string          `json:"name"`
	Event    json.RawMessage `json:"event"`
	Modified time.Time       `json:"modified"`
}

// ErrTestEventNotFound answers a read or delete of an unknown event.
var ErrTestEventNotFound = errors.New("test event not found")

// TestEventStore keeps saved test events per function (files in dev mode,
// Nomad Variables on a cluster: the function store's backend).
type TestEventStore interface {
	TestEvents(ctx context.Context, function string) ([]TestEvent, error)
	TestEvent(ctx context.Context, function, name string) (TestEvent, error)
	PutTestEvent(ctx context.Context, function string, ev TestEvent) error
	DeleteTestEvent(ctx context.Context, function, name string) error
}

// MaxTestEventBytes bounds a saved event so that it fits one Nomad
// Variable (64 KiB, encoded) with room to spare.
const MaxTestEventBytes = 48 << 10

// MaxTestEvents bounds the saved events of one function.
const MaxTestEvents = 50

var (
	testEventName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,25}$`)
	functionName  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

func (c *Console) testEventTarget(w http.ResponseWriter, r *http.Request) (string, bool) {
	if c.opts.TestEvents == nil {
		writeMessage(w, http.StatusServiceUnavailable, "this gateway has no store for test events")
		return "", false
	}
	fn := r.PathValue("FunctionName")
	if !functionName.MatchString(fn) {
		writeMessage(w, http.StatusBadRequest, "function name must be 1-64 letters, digits, hyphens or underscores")
		return "", false
	}
	if c.opts.Functions != nil {
		ok, err := c.opts.Functions(r, fn)
		if err != nil {
			writeMessage(w, http.StatusInternalServerError, "reading the function: "+err.Error())
			return "", false
		}
		if !ok {
			writeMessage(w, http.StatusNotFound, "function not found: "+fn)
			return "", false
		}
	}
	return fn, true
}

func (c *Console) serveTestEvents(w http.ResponseWriter, r *http.Request) {
	fn, ok := c.testEventTarget(w, r)
	if !ok {
		return
	}
	evs, err := c.opts.TestEvents.TestEvents(r.Context(), fn)
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, "listing test events: "+err.Error())
		return
	}
	if evs == nil {
		evs = []TestEvent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs})
}

func (c *Console) serveTestEvent(w http.ResponseWriter, r *http.Request) {
	fn, ok := c.testEventTarget(w, r)
	if !ok {
		return
	}
	name := r.PathValue("Name")
	if !testEventName.MatchString(name) {
		writeMessage(w, http.StatusBadRequest, "a test event's name is 1-25 letters, digits, hyphens or underscores")
		return
	}
	store := c.opts.TestEvents
	switch r.Method {
	case http.MethodGet:
		ev, err := store.TestEvent(r.Context(), fn, name)
		if errors.Is(err, ErrTestEventNotFound) {
			writeMessage(w, http.StatusNotFound, "test event not found: "+name)
			return
		}
		if err != nil {
			writeMessage(w, http.StatusInternalServerError, "reading the test event: "+err.Error())
			return
		}
		writeJSON(w, http.StatusOK, ev)
	case http.MethodPut:
		var body json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeMessage(w, http.StatusBadRequest, "the body must be the event's JSON: "+err.Error())
			return
		}
		if len(body) > MaxTestEventBytes {
			writeMessage(w, http.StatusRequestEntityTooLarge, "a test event is at most 48 KiB")
			return
		}
		existing, err := store.TestEvents(r.Context(), fn)
		if err != nil {
			writeMessage(w, http.StatusInternalServerError, "listing test events: "+err.Error())
			return
		}
		replacing := false
		for _, e := range existing {
			replacing = replacing || e.Name == name
		}
		if !replacing && len(existing) >= MaxTestEvents {
			writeMessage(w, http.StatusConflict, "a function keeps at most 50 test events: delete one first")
			return
		}
		ev := TestEvent{Name: name, Event: body, Modified: time.Now().UTC().Truncate(time.Second)}
		if err := store.PutTestEvent(r.Context(), fn, ev); err != nil {
			writeMessage(w, http.StatusInternalServerError, "saving the test event: "+err.Error())
			return
		}
		writeJSON(w, http.StatusOK, ev)
	case http.MethodDelete:
		err := store.DeleteTestEvent(r.Context(), fn, name)
		if errors.Is(err, ErrTestEventNotFound) {
			writeMessage(w, http.StatusNotFound, "test event not found: "+name)
			return
		}
		if err != nil {
			writeMessage(w, http.StatusInternalServerError, "deleting the test event: "+err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeMessage(w, http.StatusMethodNotAllowed, "use GET, PUT or DELETE")
	}
}
