package esmapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/specs"
)

// Path is the collection's path; items are Path+"/"+UUID. Mount the
// handler on both Path and Path+"/".
const Path = "/2015-03-31/event-source-mappings"

// maxBody bounds a request body (mappings are small).
const maxBody = 256 << 10

// defaultMaxItems and maxMaxItems are ListEventSourceMappings' page sizes.
const (
	defaultMaxItems = 100
	maxMaxItems     = 10000
)

// Functions finds deployed functions (the gateway's catalog).
type Functions interface {
	// Function returns the function or an error wrapping
	// catalog.ErrFunctionNotFound.
	Function(ctx context.Context, name string) (*catalog.Function, error)
}

// StatusReader reports how a mapping runs on this gateway
// (*sources.Manager).
type StatusReader interface {
	Status(uuid string) (sources.Status, bool)
}

var _ StatusReader = (*sources.Manager)(nil)

// Options configure the handler.
type Options struct {
	// Store keeps API-created mappings. Required.
	Store *Store
	// Specs lists the spec-declared mappings (sources.FromFunctions over the
	// catalog). Nil: none. They are shown by Get and List but cannot be
	// updated or deleted here.
	Specs func(ctx context.Context) ([]sources.Mapping, error)
	// Functions checks that a mapping's function exists. Required.
	Functions Functions
	// Status reports the engine's view of a mapping (state, last
	// processing result). Nil: states come from the settings alone.
	Status StatusReader
	// Region and AccountID make ARNs.
	Region    string
	AccountID string
	// Authorize checks a request and its body before anything else (the
	// gateway passes its SigV4 verifier). Nil: open. A *sigv4.Error keeps
	// its code and status; any other error answers AccessDeniedException.
	Authorize func(r *http.Request, body []byte) error
	// Logger logs service errors. Nil: discarded.
	Logger hclog.Logger
}

// handler serves Lambda's event-source-mapping API.
type handler struct {
	opts Options
	log  hclog.Logger
	// mu serialises this gateway's creates and updates, so two requests
	// cannot both pass the duplicate check. Gateways sharing a store can
	// still race each other; the window is one request long.
	mu sync.Mutex
}

// NewHandler returns the HTTP handler for Create, Get, List, Update and
// DeleteEventSourceMapping under Path.
func NewHandler(opts Options) http.Handler {
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &handler{opts: opts, log: log.Named("esmapi")}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := uuid.NewString()
	fail := func(e *apiError) { writeError(w, requestID, e) }
	rest, ok := strings.CutPrefix(r.URL.Path, Path)
	if !ok || (rest != "" && rest[0] != '/') {
		fail(&apiError{Code: codeUnknownOperation, Message: "Unknown operation " + r.Method + " " + r.URL.Path})
		return
	}
	id := strings.Trim(rest, "/")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		fail(&apiError{Code: codeInvalidRequestContent, Message: "reading request body: " + err.Error()})
		return
	}
	if len(body) > maxBody {
		fail(&apiError{Code: codeRequestTooLarge, Message: "Request must be smaller than " + strconv.Itoa(maxBody) + " bytes"})
		return
	}
	if h.opts.Authorize != nil {
		if err := h.opts.Authorize(r, body); err != nil {
			fail(authError(err))
			return
		}
	}
	var status int
	var out any
	var e *apiError
	switch {
	case strings.Contains(id, "/"):
		e = &apiError{Code: codeUnknownOperation, Message: "Unknown operation " + r.Method + " " + r.URL.Path}
	case id == "" && r.Method == http.MethodPost:
		status, out, e = h.create(r.Context(), body)
	case id == "" && r.Method == http.MethodGet:
		status, out, e = h.list(r)
	case id != "" && r.Method == http.MethodGet:
		status, out, e = h.get(r.Context(), id)
	case id != "" && r.Method == http.MethodPut:
		status, out, e = h.update(r.Context(), id, body)
	case id != "" && r.Method == http.MethodDelete:
		status, out, e = h.delete(r.Context(), id)
	default:
		e = &apiError{Code: codeUnknownOperation, Message: "Unknown operation " + r.Method + " " + r.URL.Path}
	}
	if e != nil {
		if e.Code == codeService {
			h.log.Warn("event-source mapping request", "mapping", id, "error", e.Message)
		}
		fail(e)
		return
	}
	writeJSON(w, status, requestID, out)
}

// entry is a mapping with the state the API stored for it ("" for
// spec-declared mappings).
type entry struct {
	m     sources.Mapping
	state string
}

func (h *handler) specs(ctx context.Context) ([]sources.Mapping, error) {
	if h.opts.Specs == nil {
		return nil, nil
	}
	return h.opts.Specs(ctx)
}

// entries lists spec-declared and stored mappings.
func (h *handler) entries(ctx context.Context) ([]entry, *apiError) {
	ms, err := h.specs(ctx)
	if err != nil {
		return nil, serviceError(err)
	}
	out := make([]entry, 0, len(ms))
	for _, m := range ms {
		out = append(out, entry{m: m})
	}
	sts, err := h.opts.Store.list(ctx)
	if err != nil {
		return nil, serviceError(err)
	}
	for _, st := range sts {
		out = append(out, entry{m: st.m, state: st.state})
	}
	return out, nil
}

var errNoMapping = &apiError{Code: codeResourceNotFound, Message: "The resource you requested does not exist."}

// find returns mapping id, spec-declared or stored.
func (h *handler) find(ctx context.Context, id string) (entry, *apiError) {
	ms, err := h.specs(ctx)
	if err != nil {
		return entry{}, serviceError(err)
	}
	for _, m := range ms {
		if m.UUID == id {
			return entry{m: m}, nil
		}
	}
	st, err := h.opts.Store.load(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return entry{}, errNoMapping
	}
	if err != nil {
		return entry{}, serviceError(err)
	}
	return entry{m: st.m, state: st.state}, nil
}

// view renders an entry with the state this gateway knows: the engine's
// when it runs the mapping's current settings, otherwise Creating or
// Updating (the engine has not caught up yet); with no engine, Enabled or
// Disabled from the settings.
func (h *handler) view(e entry) *mappingConfig {
	state, reason, result := settingsState(e.m), "USER_INITIATED", sources.ResultNoRecords
	if h.opts.Status != nil {
		st, ok := h.opts.Status.Status(e.m.UUID)
		switch {
		case ok && sameSettings(st.Mapping, e.m):
			state = st.State
			if st.StateTransitionReason != "" {
				reason = st.StateTransitionReason
			}
		case ok:
			state = sources.StateUpdating
		case e.state != "":
			state = e.state
		default:
			state = sources.StateCreating
		}
		if ok && st.LastProcessingResult != "" {
			result = st.LastProcessingResult
		}
	}
	return h.config(e.m, state, reason, result)
}

// lastResult is the engine's last processing result for id.
func (h *handler) lastResult(id string) string {
	if h.opts.Status != nil {
		if st, ok := h.opts.Status.Status(id); ok && st.LastProcessingResult != "" {
			return st.LastProcessingResult
		}
	}
	return sources.ResultNoRecords
}

func settingsState(m sources.Mapping) string {
	if m.Spec.Enabled {
		return sources.StateEnabled
	}
	return sources.StateDisabled
}

// sameSettings reports whether a and b run the same way (the engine
// restarts a poller when this changes).
func sameSettings(a, b sources.Mapping) bool {
	key := func(m sources.Mapping) string {
		s, _ := json.Marshal(struct {
			F, Q string
			S    *specs.EventSource
		}{m.Function, m.Qualifier, m.Spec})
		return string(s)
	}
	return key(a) == key(b)
}

// lookup finds the function a FunctionName names and checks its qualifier.
func (h *handler) lookup(ctx context.Context, name string) (*functionRef, *apiError) {
	ref, e := parseFunctionName(name)
	if e != nil {
		return nil, e
	}
	notFound := &apiError{Code: codeResourceNotFound, Message: "Function not found: " + h.functionARN(ref.Name, ref.Qualifier)}
	if (ref.Region != "" && ref.Region != h.opts.Region) || (ref.Account != "" && ref.Account != h.opts.AccountID) {
		return nil, notFound
	}
	fn, err := h.opts.Functions.Function(ctx, ref.Name)
	if errors.Is(err, catalog.ErrFunctionNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, serviceError(err)
	}
	if _, err := fn.Resolve(ref.Qualifier, nil); err != nil {
		return nil, notFound
	}
	ref.Name = fn.Name
	return ref, nil
}

// check fills defaults and validates es as the function's mapping.
func check(fn string, es *specs.EventSource) *apiError {
	if err := specs.CheckEventSource(fn, es); err != nil {
		return invalid(apiNames.Replace(err.Error()))
	}
	return nil
}

// duplicate returns a conflict when another mapping (not except) makes m's
// function read m's source.
func (h *handler) duplicate(ctx context.Context, m sources.Mapping, except string) *apiError {
	all, e := h.entries(ctx)
	if e != nil {
		return e
	}
	id := sourceIdentity(m.Spec)
	for _, o := range all {
		if o.m.UUID == except || o.m.Function != m.Function || o.m.Qualifier != m.Qualifier || sourceIdentity(o.m.Spec) != id {
			continue
		}
		src := eventSourceArn(m.Spec)
		if src == "" {
			src = strings.Join(m.Spec.Topics, ",") + " on " + m.Spec.URL
		}
		return &apiError{Code: codeResourceConflict, Message: "The event source " + src + " and function " + m.Function +
			" provided mapping already exists. Please update or delete the existing mapping with UUID " + o.m.UUID}
	}
	return nil
}

// create answers CreateEventSourceMapping.
func (h *handler) create(ctx context.Context, body []byte) (int, any, *apiError) {
	in, e := decodeRequest(body, createMembers, "CreateEventSourceMapping")
	if e != nil {
		return 0, nil, e
	}
	if in.FunctionName == nil {
		return 0, nil, invalid("FunctionName is required")
	}
	ref, e := h.lookup(ctx, *in.FunctionName)
	if e != nil {
		return 0, nil, e
	}
	es := &specs.EventSource{Enabled: true}
	if e := applySource(in, es, false); e != nil {
		return 0, nil, e
	}
	if e := h.applySettings(in, es); e != nil {
		return 0, nil, e
	}
	id := uuid.NewString()
	if es.Group == "" && es.Type != specs.SourceRabbitMQ && es.Type != specs.SourceSchedule {
		es.Group = "nimbus-" + id // Lambda names a mapping's consumer group by its UUID
	}
	if e := check(ref.Name, es); e != nil {
		return 0, nil, e
	}
	m := sources.Mapping{UUID: id, Function: ref.Name, Qualifier: ref.Qualifier, Spec: es, Origin: sources.OriginAPI}
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.duplicate(ctx, m, ""); e != nil {
		return 0, nil, e
	}
	m, err := h.opts.Store.create(ctx, m)
	if err != nil {
		return 0, nil, serviceError(err)
	}
	return http.StatusAccepted, h.config(m, sources.StateCreating, "USER_INITIATED", sources.ResultNoRecords), nil
}

// get answers GetEventSourceMapping.
func (h *handler) get(ctx context.Context, id string) (int, any, *apiError) {
	e, ae := h.find(ctx, id)
	if ae != nil {
		return 0, nil, ae
	}
	return http.StatusOK, h.view(e), nil
}

// listOutput is ListEventSourceMappings' response.
type listOutput struct {
	EventSourceMappings []*mappingConfig `json:"EventSourceMappings"`
	NextMarker          string           `json:"NextMarker,omitempty"`
}

// list answers ListEventSourceMappings: sorted by UUID; Marker is the
// last UUID of the previous page.
func (h *handler) list(r *http.Request) (int, any, *apiError) {
	ctx := r.Context()
	q := r.URL.Query()
	max := defaultMaxItems
	if s := q.Get("MaxItems"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxMaxItems {
			return 0, nil, invalid("1 validation error detected: Value '" + s + "' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and " + strconv.Itoa(maxMaxItems))
		}
		max = n
	}
	var fnRef *functionRef
	if s := q.Get("FunctionName"); s != "" {
		ref, e := parseFunctionName(s)
		if e != nil {
			return 0, nil, e
		}
		fnRef = ref
	}
	var srcID string
	if s := q.Get("EventSourceArn"); s != "" {
		es := &specs.EventSource{}
		if e := applySource(&request{EventSourceArn: &s}, es, true); e != nil {
			return 0, nil, e
		}
		srcID = filterIdentity(es)
	}
	all, e := h.entries(ctx)
	if e != nil {
		return 0, nil, e
	}
	sort.Slice(all, func(i, j int) bool { return all[i].m.UUID < all[j].m.UUID })
	out := listOutput{EventSourceMappings: []*mappingConfig{}}
	marker := q.Get("Marker")
	for _, en := range all {
		m := en.m
		switch {
		case marker != "" && m.UUID <= marker:
			continue
		case fnRef != nil && (fnRef.Name != m.Function || (fnRef.Qualifier != "" && fnRef.Qualifier != m.Qualifier) ||
			(fnRef.Region != "" && fnRef.Region != h.opts.Region) || (fnRef.Account != "" && fnRef.Account != h.opts.AccountID)):
			continue
		case srcID != "" && filterIdentity(m.Spec) != srcID:
			continue
		}
		if len(out.EventSourceMappings) == max {
			out.NextMarker = out.EventSourceMappings[max-1].UUID
			break
		}
		out.EventSourceMappings = append(out.EventSourceMappings, h.view(en))
	}
	return http.StatusOK, out, nil
}

// filterIdentity is what List's EventSourceArn filter compares: the
// source without consumer group, RabbitMQ queue or schedule input,
// passwords redacted.
func filterIdentity(es *specs.EventSource) string {
	return strings.Join([]string{es.Type, redact(es.URL), es.Stream, es.Subject, es.Schedule}, "\x00")
}

const errSpecDeclared = "is declared in the function's spec; change the spec"

// update answers UpdateEventSourceMapping.
func (h *handler) update(ctx context.Context, id string, body []byte) (int, any, *apiError) {
	cur, e := h.find(ctx, id)
	if e != nil {
		return 0, nil, e
	}
	if cur.m.Origin != sources.OriginAPI {
		return 0, nil, &apiError{Code: codeResourceConflict, Message: "The event source mapping " + id + " " + errSpecDeclared}
	}
	in, e := decodeRequest(body, updateMembers, "UpdateEventSourceMapping")
	if e != nil {
		return 0, nil, e
	}
	var ref *functionRef
	if in.FunctionName != nil {
		if ref, e = h.lookup(ctx, *in.FunctionName); e != nil {
			return 0, nil, e
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	m, err := h.opts.Store.Update(ctx, id, func(m *sources.Mapping) error {
		if ref != nil {
			m.Function, m.Qualifier = ref.Name, ref.Qualifier
		}
		if c := in.SelfManagedKafkaEventSourceConfig; c != nil && c.ConsumerGroupId != nil &&
			(m.Spec.Type != specs.SourceKafka || *c.ConsumerGroupId != m.Spec.Group) {
			return invalid("SelfManagedKafkaEventSourceConfig.ConsumerGroupId cannot be changed")
		}
		if e := h.applySettings(in, m.Spec); e != nil {
			return e
		}
		if e := check(m.Function, m.Spec); e != nil {
			return e
		}
		if e := h.duplicate(ctx, *m, id); e != nil {
			return e
		}
		return nil
	})
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return 0, nil, ae
	case errors.Is(err, ErrNotFound):
		return 0, nil, errNoMapping
	case err != nil:
		return 0, nil, serviceError(err)
	}
	return http.StatusAccepted, h.config(m, sources.StateUpdating, "USER_INITIATED", h.lastResult(id)), nil
}

// delete answers DeleteEventSourceMapping.
func (h *handler) delete(ctx context.Context, id string) (int, any, *apiError) {
	cur, e := h.find(ctx, id)
	if e != nil {
		return 0, nil, e
	}
	if cur.m.Origin != sources.OriginAPI {
		return 0, nil, &apiError{Code: codeResourceConflict, Message: "The event source mapping " + id + " " + errSpecDeclared}
	}
	m, err := h.opts.Store.Delete(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return 0, nil, errNoMapping
	}
	if err != nil {
		return 0, nil, serviceError(err)
	}
	return http.StatusAccepted, h.config(m, sources.StateDeleting, "USER_INITIATED", h.lastResult(id)), nil
}
