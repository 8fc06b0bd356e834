package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/api"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/console"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/versions"
)

// Sampling periods of the console's history.
const (
	concurrencySample = time.Second
	asyncSample       = 10 * time.Second
)

// newConsole builds the console over the gateway's parts.
func (s *Server) newConsole() *console.Console {
	cfg := s.cfg
	keys := make([]console.Key, len(cfg.AccessKeys))
	for i, k := range cfg.AccessKeys {
		keys[i] = console.Key{ID: k.ID, Secret: k.Secret, Scope: k.Scope}
	}
	mode := "cluster"
	if cfg.Dev {
		mode = "dev"
	}
	sessions := console.NewSessions(console.SessionConfig{
		Keys: keys, Mode: mode, Region: cfg.Region, AccountID: cfg.AccountID, Logger: s.logger,
	})
	s.history = console.NewHistory(nil, 0)
	s.metrics.Observe(s.history)
	opts := console.Options{
		Sessions: sessions,
		History:  s.history,
		Logs: console.NewLogTail(console.LogTailConfig{
			Instances: s.functionInstances,
			Client: func(fn, version string) *invokeapi.Client {
				c := &invokeapi.Client{}
				if len(cfg.InvokeKeyBytes) > 0 {
					c.Secret = invokeapi.DeriveSecret(cfg.InvokeKeyBytes, fn, version)
				}
				return c
			},
			Logger: s.logger,
		}),
		Functions: func(r *http.Request, name string) (bool, error) {
			_, err := s.deps.Catalog.Function(r.Context(), name)
			if errors.Is(err, catalog.ErrFunctionNotFound) {
				return false, nil
			}
			return err == nil, err
		},
		Blueprints: s.deps.Blueprints,
		Logger:     s.logger,
	}
	if b := s.deps.MappingBackend; b != nil {
		opts.TestEvents = &testEventStore{b: b}
	}
	if s.verifier != nil {
		opts.Authorize = s.authorize
	}
	return console.New(opts)
}

// authorize is the console's data endpoints' check: the gateway's one
// verifier (SigV4 or a console session), and an admin key where asked.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, body []byte, admin bool) bool {
	id, err := s.verifier.Verify(r, body)
	if err != nil {
		writeAuthError(w, err)
		return false
	}
	if admin && !s.cfg.IsAdmin(id.AccessKeyID) {
		api.WriteError(w, uuid.NewString(), api.CodeAccessDenied, "User: "+id.AccessKeyID+" is not authorized to perform this operation: its access key may only invoke functions")
		return false
	}
	return true
}

// functionInstances lists the running instances of every version of fn.
func (s *Server) functionInstances(ctx context.Context, fn string) ([]discovery.Instance, error) {
	f, err := s.deps.Catalog.Function(ctx, fn)
	if err != nil {
		return nil, err
	}
	var out []discovery.Instance
	for _, v := range f.VersionNames() {
		insts, err := s.deps.Source.Instances(ctx, fn, v)
		if err != nil {
			return nil, err
		}
		out = append(out, insts...)
	}
	return out, nil
}

// sampleHistory feeds the console's history with concurrency (every
// second, a bucket keeps its largest) and async queue depth (every 10 s)
// until ctx ends.
func (s *Server) sampleHistory(ctx context.Context) {
	conc := time.NewTicker(concurrencySample)
	defer conc.Stop()
	async := time.NewTicker(asyncSample)
	defer async.Stop()
	seen := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-conc.C:
			now := map[string]bool{}
			for _, st := range s.router.FunctionStats() {
				s.history.Concurrency(st.Function, st.Concurrency)
				now[st.Function] = true
			}
			// A function that went idle is sampled once at zero.
			for fn := range seen {
				if !now[fn] {
					s.history.Concurrency(fn, 0)
				}
			}
			seen = now
		case <-async.C:
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			depths, err := s.queue.Depths(actx)
			cancel()
			if err != nil {
				s.logger.Debug("sampling async queue depth", "error", err)
				continue
			}
			for fn, d := range depths {
				s.history.Async(fn, d.Depth, d.Oldest)
			}
			for _, fn := range s.history.Functions() {
				if _, ok := depths[fn]; !ok {
					s.history.Async(fn, 0, 0)
				}
			}
		}
	}
}

// testEventStore keeps test events in the function store's backend:
// testevents/<function>/<name>, items "event" and "modified".
type testEventStore struct{ b versions.Backend }

var _ console.TestEventStore = (*testEventStore)(nil)

const testEventsPrefix = "testevents/"

func (t *testEventStore) TestEvents(ctx context.Context, fn string) ([]console.TestEvent, error) {
	paths, err := t.b.List(ctx, testEventsPrefix+fn+"/")
	if err != nil {
		if errors.Is(err, versions.ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	var out []console.TestEvent
	for _, p := range paths {
		name := p[strings.LastIndexByte(p, '/')+1:]
		ev, err := t.TestEvent(ctx, fn, name)
		if errors.Is(err, console.ErrTestEventNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func (t *testEventStore) TestEvent(ctx context.Context, fn, name string) (console.TestEvent, error) {
	e, err := t.b.Get(ctx, testEventsPrefix+fn+"/"+name)
	if errors.Is(err, versions.ErrNotFound) {
		return console.TestEvent{}, console.ErrTestEventNotFound
	}
	if err != nil {
		return console.TestEvent{}, err
	}
	ev := console.TestEvent{Name: name, Event: json.RawMessage(e.Items["event"])}
	ev.Modified, _ = time.Parse(time.RFC3339, e.Items["modified"])
	return ev, nil
}

func (t *testEventStore) PutTestEvent(ctx context.Context, fn string, ev console.TestEvent) error {
	path := testEventsPrefix + fn + "/" + ev.Name
	items := map[string]string{"event": string(ev.Event), "modified": ev.Modified.UTC().Format(time.RFC3339)}
	// Last writer wins: read the index and write over it, once more on a
	// conflict with a concurrent writer.
	for range 3 {
		var cas uint64
		e, err := t.b.Get(ctx, path)
		switch {
		case err == nil:
			cas = e.Index
		case !errors.Is(err, versions.ErrNotFound):
			return err
		}
		_, err = t.b.Put(ctx, path, items, cas)
		if !errors.Is(err, versions.ErrConflict) {
			return err
		}
	}
	return versions.ErrConflict
}

func (t *testEventStore) DeleteTestEvent(ctx context.Context, fn, name string) error {
	path := testEventsPrefix + fn + "/" + name
	for range 3 {
		e, err := t.b.Get(ctx, path)
		if errors.Is(err, versions.ErrNotFound) {
			return console.ErrTestEventNotFound
		}
		if err != nil {
			return err
		}
		err = t.b.Delete(ctx, path, e.Index)
		if errors.Is(err, versions.ErrNotFound) {
			return console.ErrTestEventNotFound
		}
		if !errors.Is(err, versions.ErrConflict) {
			return err
		}
	}
	return versions.ErrConflict
}
