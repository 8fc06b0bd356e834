package nomad

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/specs"
)

const checksum = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

// specJSON is the canonical spec the compiler puts in job meta.
func specJSON(t *testing.T, fn *specs.Function) string {
	t.Helper()
	if fn.Runtime == "" {
		fn.Runtime = "provided.al2023"
	}
	if fn.Code == nil {
		fn.Code = &specs.Code{URL: "http://artifacts.local/" + fn.Name + ".zip", Checksum: checksum}
	}
	b, err := specs.Encode(fn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := specs.Decode(b); err != nil {
		t.Fatalf("test spec does not decode: %v", err)
	}
	return string(b)
}

func functionJob(t *testing.T, id, fn, version string, spec *specs.Function, modify uint64) *api.JobListStub {
	return &api.JobListStub{
		ID: id, Name: id, Namespace: "default", Type: "service", Status: "running", JobModifyIndex: modify,
		Meta: map[string]string{MetaFunction: fn, MetaVersion: version, MetaSpec: specJSON(t, spec), "nimbus.code_sha256": "00"},
	}
}

// runCatalog starts c.Run and stops it (waiting) at cleanup.
func runCatalog(t *testing.T, c *Catalog) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func TestCatalogReadsFunctionJobs(t *testing.T) {
	f := newFakeNomad(t)
	reserved := 5
	latest := &specs.Function{
		Name: "hello", MemoryMB: 256, ReservedConcurrency: &reserved,
		URL:     &specs.URLConfig{Auth: "NONE", InvokeMode: "BUFFERED", Qualifier: "live"},
		Aliases: []*specs.Alias{{Name: "live", Version: "1"}},
	}
	f.update(func() {
		f.jobs["nimbus-hello"] = functionJob(t, "nimbus-hello", "hello", "$LATEST", latest, 20)
		f.jobs["nimbus-hello-1"] = functionJob(t, "nimbus-hello-1", "hello", "1", &specs.Function{Name: "hello", MemoryMB: 128}, 15)
		f.jobs["nimbus-bye"] = functionJob(t, "nimbus-bye", "bye", "$LATEST", &specs.Function{Name: "bye"}, 12)
		// Not function versions: no meta, a broken spec, a stopped job, a
		// spec naming another function, a dispatched child, another prefix.
		f.jobs["nimbus-gateway"] = &api.JobListStub{ID: "nimbus-gateway", Status: "running"}
		f.jobs["nimbus-broken"] = &api.JobListStub{ID: "nimbus-broken", Meta: map[string]string{MetaFunction: "broken", MetaVersion: "$LATEST", MetaSpec: `{"name":"broken","memory_mb":1}`}}
		stopped := functionJob(t, "nimbus-gone", "gone", "$LATEST", &specs.Function{Name: "gone"}, 11)
		stopped.Stop = true
		f.jobs["nimbus-gone"] = stopped
		f.jobs["nimbus-liar"] = functionJob(t, "nimbus-liar", "liar", "$LATEST", &specs.Function{Name: "hello"}, 11)
		child := functionJob(t, "nimbus-bye/dispatch-1", "bye", "$LATEST", &specs.Function{Name: "bye"}, 30)
		child.ParentID = "nimbus-bye"
		f.jobs[child.ID] = child
		f.jobs["web"] = functionJob(t, "web", "web", "$LATEST", &specs.Function{Name: "web"}, 11)
	})

	c, err := NewCatalog(f.client().Jobs(), nil, CatalogConfig{NoVariables: true, Namespace: "fns", Region: "eu"}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCatalog(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fns, err := c.Functions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fn := range fns {
		names = append(names, fn.Name)
	}
	if !slices.Equal(names, []string{"bye", "hello"}) {
		t.Fatalf("functions %v, want [bye hello]", names)
	}
	hello, err := c.Function(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if got := hello.VersionNames(); !slices.Equal(got, []string{"$LATEST", "1"}) {
		t.Fatalf("versions %v", got)
	}
	if hello.Versions["$LATEST"].MemoryMB != 256 || hello.Versions["1"].MemoryMB != 128 {
		t.Fatalf("specs not decoded from meta: %+v", hello.Versions)
	}
	if u := hello.URL(); u == nil || u.Qualifier != "live" {
		t.Fatalf("url config %+v", u)
	}
	res, err := hello.Resolve("live", nil)
	if err != nil || res.Version != "1" {
		t.Fatalf("resolve live: %+v %v", res, err)
	}
	if got := c.Snapshot().ReservedTotal; got != 5 {
		t.Fatalf("reserved total %d", got)
	}
	if _, err := c.Function(ctx, "liar"); !errors.Is(err, catalog.ErrFunctionNotFound) {
		t.Fatalf("liar: %v", err)
	}
	if id, err := c.JobID("hello", "1"); err != nil || id != "nimbus-hello-1" {
		t.Fatalf("JobID = %q, %v", id, err)
	}
	if _, err := c.JobID("hello", "9"); !errors.Is(err, catalog.ErrQualifierNotFound) {
		t.Fatalf("JobID of a missing version: %v", err)
	}

	first := f.log()[0]
	for _, want := range []string{"GET /v1/jobs?", "meta=true", "prefix=nimbus-", "namespace=fns", "region=eu"} {
		if !strings.Contains(first, want) {
			t.Fatalf("first request %q lacks %q", first, want)
		}
	}
}

func TestCatalogFollowsChangesWithBlockingQueries(t *testing.T) {
	f := newFakeNomad(t)
	f.update(func() {
		f.jobs["nimbus-hello"] = functionJob(t, "nimbus-hello", "hello", "$LATEST", &specs.Function{Name: "hello"}, 11)
	})
	c, err := NewCatalog(f.client().Jobs(), nil, CatalogConfig{NoVariables: true, MinInterval: time.Millisecond}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		seen  [][]string
		calls int
	)
	c.Watch(func(s *catalog.Snapshot) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if fn, err := s.Function("hello"); err == nil {
			seen = append(seen, fn.VersionNames())
		} else {
			seen = append(seen, nil)
		}
	})
	runCatalog(t, c)
	<-c.Ready()

	// Publishing version 1 shows up without polling.
	f.update(func() {
		f.jobs["nimbus-hello-1"] = functionJob(t, "nimbus-hello-1", "hello", "1", &specs.Function{Name: "hello"}, 13)
	})
	eventually(t, 5*time.Second, "version 1", func() bool {
		fn, err := c.Snapshot().Function("hello")
		return err == nil && len(fn.Versions) == 2
	})
	// A re-registered $LATEST gets its new spec.
	f.update(func() {
		f.jobs["nimbus-hello"] = functionJob(t, "nimbus-hello", "hello", "$LATEST", &specs.Function{Name: "hello", MemoryMB: 512}, 14)
	})
	eventually(t, 5*time.Second, "the new $LATEST spec", func() bool {
		fn, err := c.Snapshot().Function("hello")
		return err == nil && fn.Latest().MemoryMB == 512
	})
	// Watchers saw the first listing, version 1 and the new spec.
	eventually(t, 5*time.Second, "three notifications", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls == 3
	})
	// An unrelated change (another job's allocation) does not notify.
	idx := len(f.log())
	f.update(func() { f.jobs["nimbus-hello-1"].JobSummary = &api.JobSummary{JobID: "nimbus-hello-1"} })
	eventually(t, 5*time.Second, "the catalog to re-query", func() bool { return len(f.log()) > idx })
	// Stopping a version removes it.
	f.update(func() { f.jobs["nimbus-hello-1"].Stop = true })
	eventually(t, 5*time.Second, "version 1 to go", func() bool {
		fn, err := c.Snapshot().Function("hello")
		return err == nil && len(fn.Versions) == 1
	})
	eventually(t, 5*time.Second, "the notification for the stop", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls >= 4
	})
	mu.Lock()
	if calls != 4 {
		t.Errorf("watchers called %d times; want 4 (the allocation change must not notify)", calls)
	}
	if len(seen) != 4 || !slices.Equal(seen[0], []string{"$LATEST"}) || !slices.Equal(seen[len(seen)-1], []string{"$LATEST"}) {
		t.Errorf("watch saw %v", seen)
	}
	mu.Unlock()

	// Each query after the first waited on the index of the previous answer.
	reqs := f.log()
	if strings.Contains(reqs[0], "index=") {
		t.Fatalf("first query %q should not block", reqs[0])
	}
	for _, r := range reqs[1:] {
		if !strings.Contains(r, "index=") || !strings.Contains(r, "wait=300000ms") {
			t.Fatalf("query %q is not a blocking query", r)
		}
	}
}

func TestCatalogWaitsForFirstListingAndRetries(t *testing.T) {
	f := newFakeNomad(t)
	f.update(func() {
		f.jobs["nimbus-a"] = functionJob(t, "nimbus-a", "a", "$LATEST", &specs.Function{Name: "a"}, 11)
	})
	f.update(func() { f.failNext = http.StatusInternalServerError })
	c, err := NewCatalog(f.client().Jobs(), nil, CatalogConfig{NoVariables: true, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	// Before Run nothing is listed: a lookup waits, bounded by its context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Function(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("before the first listing: %v", err)
	}
	runCatalog(t, c)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if _, err := c.Function(ctx2, "a"); err != nil {
		t.Fatalf("after a failed first query: %v", err)
	}
	if n := len(f.log()); n < 2 {
		t.Fatalf("%d requests; want the failed one and a retry", n)
	}
}

func TestCatalogReadsVariables(t *testing.T) {
	f := newFakeNomad(t)
	f.update(func() {
		f.vars["nimbus/hello/aliases"] = &api.Variable{Path: "nimbus/hello/aliases", ModifyIndex: 11, Items: api.VariableItems{"live": "1"}}
		f.vars["nimbus/settings"] = &api.Variable{Path: "nimbus/settings", ModifyIndex: 11, Items: api.VariableItems{"mode": "x"}}
		f.vars["other/app"] = &api.Variable{Path: "other/app", ModifyIndex: 11, Items: api.VariableItems{"k": "v"}}
	})
	client := f.client()
	c, err := NewCatalog(client.Jobs(), client.Variables(), CatalogConfig{MinInterval: time.Millisecond}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	notified := make(chan struct{}, 100)
	c.Watch(func(*catalog.Snapshot) { notified <- struct{}{} })
	runCatalog(t, c)
	eventually(t, 5*time.Second, "variables", func() bool { return len(c.Variables()) == 2 })
	if v, ok := c.Variable("nimbus/hello/aliases"); !ok || v["live"] != "1" {
		t.Fatalf("aliases variable %v %v", v, ok)
	}
	if _, ok := c.Variable("other/app"); ok {
		t.Fatal("read a variable outside the prefix")
	}
	// Updates and deletes follow.
	f.update(func() {
		f.vars["nimbus/hello/aliases"] = &api.Variable{Path: "nimbus/hello/aliases", ModifyIndex: f.index + 1, Items: api.VariableItems{"live": "2"}}
	})
	eventually(t, 5*time.Second, "the updated variable", func() bool {
		v, _ := c.Variable("nimbus/hello/aliases")
		return v["live"] == "2"
	})
	f.update(func() { delete(f.vars, "nimbus/settings") })
	eventually(t, 5*time.Second, "the deleted variable to go", func() bool { return len(c.Variables()) == 1 })
	eventually(t, 5*time.Second, "watchers to hear of the first read, the update and the delete", func() bool {
		return len(notified) >= 3
	})
	// Each variable was read once per modification, not once per listing.
	reads := 0
	for _, r := range f.log() {
		if strings.HasPrefix(r, "GET /v1/var/nimbus/hello/aliases") {
			reads++
		}
	}
	if reads != 2 {
		t.Fatalf("read nimbus/hello/aliases %d times, want 2", reads)
	}
}

func TestNewCatalogNeedsClients(t *testing.T) {
	if _, err := NewCatalog(nil, nil, CatalogConfig{}, nil); err == nil {
		t.Fatal("no jobs client accepted")
	}
	if _, err := NewCatalog(&api.Jobs{}, nil, CatalogConfig{}, nil); err == nil {
		t.Fatal("no variables client accepted without NoVariables")
	}
}

// closedAddress is a loopback address nothing listens on.
func closedAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func nomadAt(t *testing.T, addr string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Item 7 of issue 11: with Nomad unreachable from the start, the catalog
// says it is not ready and why, and a lookup fails with ErrUnavailable
// naming the cause once the query failed twice (here long before
// FirstListingWait or the caller's deadline) instead of waiting.
func TestCatalogFailsFastWhenNomadIsUnreachable(t *testing.T) {
	addr := closedAddress(t)
	c, err := NewCatalog(nomadAt(t, addr).Jobs(), nil, CatalogConfig{NoVariables: true,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, FirstListingWait: time.Hour}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckReady(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ready before any listing: %v", err)
	}
	runCatalog(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, err = c.Function(ctx, "a")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("lookup with nomad unreachable: %v", err)
	}
	if err := c.CheckReady(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("readiness with nomad unreachable: %v", err)
	}
}

// A Nomad that accepts connections and never answers: a lookup fails after
// FirstListingWait, not after the caller's (long) deadline.
func TestCatalogBoundsTheFirstListingWait(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var held []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	c, err := NewCatalog(nomadAt(t, ln.Addr().String()).Jobs(), nil, CatalogConfig{NoVariables: true, FirstListingWait: 100 * time.Millisecond}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCatalog(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, err := c.Functions(ctx); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "within 100ms") {
		t.Fatalf("lookup with a silent nomad: %v", err)
	}
	if err := c.CheckReady(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no listing") {
		t.Fatalf("readiness with a silent nomad: %v", err)
	}
}

// Nomad going away after the first listing: readiness says so at once,
// lookups answer from the last listing for MaxStale and then fail.
func TestCatalogServesTheLastListingForMaxStale(t *testing.T) {
	f := newFakeNomad(t)
	f.update(func() {
		f.jobs["nimbus-a"] = functionJob(t, "nimbus-a", "a", "$LATEST", &specs.Function{Name: "a"}, 11)
	})
	cfg := CatalogConfig{NoVariables: true, WaitTime: 50 * time.Millisecond, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	patient, err := NewCatalog(f.client().Jobs(), nil, func() CatalogConfig { c := cfg; c.MaxStale = time.Hour; return c }(), gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	strict, err := NewCatalog(f.client().Jobs(), nil, func() CatalogConfig { c := cfg; c.MaxStale = time.Millisecond; return c }(), gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCatalog(t, patient)
	runCatalog(t, strict)
	ctx := context.Background()
	for _, c := range []*Catalog{patient, strict} {
		if _, err := c.Function(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := c.CheckReady(); err != nil {
			t.Fatalf("ready with nomad up: %v", err)
		}
	}
	f.srv.CloseClientConnections()
	f.srv.Close()
	for _, c := range []*Catalog{patient, strict} {
		gatewaytest.Eventually(t, 10*time.Second, func() bool { return errors.Is(c.CheckReady(), ErrUnavailable) }, "not ready once nomad is gone")
	}
	if fn, err := patient.Function(ctx, "a"); err != nil || fn.Name != "a" {
		t.Fatalf("within MaxStale: %v %v", fn, err)
	}
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		_, err := strict.Function(ctx, "a")
		return errors.Is(err, ErrUnavailable) && strings.Contains(err.Error(), "failing for")
	}, "past MaxStale the lookup fails")
}

// A function whose job was registered a moment ago is found even before
// the blocking query catches up (nimbus deploy followed at once by an
// invoke), and misses for unknown functions list jobs at most once per
// readThroughEvery.
func TestCatalogReadsThroughOnAMiss(t *testing.T) {
	f := newFakeNomad(t)
	// With an hour between queries the watch loop never sees the new job.
	c, err := NewCatalog(f.client().Jobs(), nil, CatalogConfig{NoVariables: true, MinInterval: time.Hour}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCatalog(t, c)
	<-c.Ready()
	f.update(func() {
		f.jobs["nimbus-fresh"] = functionJob(t, "nimbus-fresh", "fresh", "$LATEST", &specs.Function{Name: "fresh"}, 11)
	})
	ctx := context.Background()
	fn, err := c.Function(ctx, "fresh")
	if err != nil || fn.Latest() == nil {
		t.Fatalf("a just-registered function: %v", err)
	}
	listings := func() int {
		n := 0
		for _, r := range f.log() {
			if strings.HasPrefix(r, "GET /v1/jobs?") {
				n++
			}
		}
		return n
	}
	before := listings()
	for range 5 {
		if _, err := c.Function(ctx, "nope"); !errors.Is(err, catalog.ErrFunctionNotFound) {
			t.Fatalf("unknown function: %v", err)
		}
	}
	if n := listings() - before; n > 1 {
		t.Fatalf("5 misses in a row listed jobs %d times; at most once per %s", n, readThroughEvery)
	}
}

// Sync lists the jobs at once: after a management write removed a job, the
// function is gone from this gateway's catalog before the blocking query
// (here an hour away) would have noticed.
func TestCatalogSyncDropsARemovedJob(t *testing.T) {
	f := newFakeNomad(t)
	f.update(func() {
		f.jobs["nimbus-gone"] = functionJob(t, "nimbus-gone", "gone", "$LATEST", &specs.Function{Name: "gone"}, 11)
	})
	c, err := NewCatalog(f.client().Jobs(), nil, CatalogConfig{NoVariables: true, MinInterval: time.Hour}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCatalog(t, c)
	<-c.Ready()
	ctx := context.Background()
	if _, err := c.Function(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	f.update(func() { delete(f.jobs, "nimbus-gone") })
	if _, err := c.Function(ctx, "gone"); err != nil {
		t.Fatalf("before Sync the last listing still holds the function: %v", err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Function(ctx, "gone"); !errors.Is(err, catalog.ErrFunctionNotFound) {
		t.Fatalf("after Sync: %v, want ErrFunctionNotFound", err)
	}
}
