package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

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
	// The tail keeps the recent lines of the functions invoked through
	// this gateway, so an instance's lines outlive it.
	logs := console.NewLogTail(console.LogTailConfig{
		Instances: s.functionInstances,
		Client: func(fn, version string) *invokeapi.Client {
			c := &invokeapi.Client{}
			if len(cfg.InvokeKeyBytes) > 0 {
				c.Secret = invokeapi.DeriveSecret(cfg.InvokeKeyBytes, fn, version)
			}
			return c
		},
		Logger: s.logger,
	})
	s.metrics.Observe(logs)
	opts := console.Options{
		Sessions: sessions,
		History:  s.history,
		Logs:     logs,
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
	for {
		select {
		case <-ctx.Done():
			return
		case <-conc.C:
			for _, st := range s.router.FunctionStats() {
				s.history.Concurrency(st.Function, st.Concurrency)
			}
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

// SessionsBucket is the JetStream key-value bucket that shares console
// sessions between the gateways on one external NATS.
const SessionsBucket = "nimbus_console_sessions"

// maxSessionBytes bounds the bucket: about ten thousand sessions; a login
// over it fails rather than growing NATS's storage.
const maxSessionBytes = 4 << 20

// openSessions shares console sessions through NATS when the gateway uses
// an external NATS (several gateways behind one address); with the
// embedded one they stay in memory, as only this gateway serves them.
func (s *Server) openSessions(ctx context.Context) error {
	if s.cfg.Queue.URL == "" || s.verifier == nil {
		return nil
	}
	js, err := jetstream.New(s.nats.Conn)
	if err != nil {
		return fmt.Errorf("opening JetStream for console sessions: %w", err)
	}
	_, maxAge := s.console.Sessions().Timeouts()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: SessionsBucket, Description: "Nimbus console sessions (by sha256 of the session id)",
		History: 1, TTL: maxAge, MaxBytes: maxSessionBytes, Storage: jetstream.FileStorage, Replicas: s.cfg.Queue.Replicas,
	})
	if err != nil {
		return fmt.Errorf("opening the console session bucket: %w", err)
	}
	s.console.Sessions().UseShared(&kvSessions{kv: kv})
	return nil
}

// kvSessions is console.SharedStore on a JetStream key-value bucket.
type kvSessions struct{ kv jetstream.KeyValue }

var _ console.SharedStore = (*kvSessions)(nil)

func (k *kvSessions) Get(ctx context.Context, key string) (console.StoredSession, bool, error) {
	e, err := k.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return console.StoredSession{}, false, nil
	}
	if err != nil {
		return console.StoredSession{}, false, err
	}
	var st console.StoredSession
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return console.StoredSession{}, false, fmt.Errorf("decoding a stored session: %w", err)
	}
	return st, true, nil
}

func (k *kvSessions) Put(ctx context.Context, key string, st console.StoredSession) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = k.kv.Put(ctx, key, b)
	return err
}

func (k *kvSessions) Delete(ctx context.Context, key string) error {
	err := k.kv.Purge(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}
