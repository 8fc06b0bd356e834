package nomad

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/specs"
)

func TestScalerSetsOnDemandCount(t *testing.T) {
	f := newFakeNomad(t)
	f.update(func() {
		f.groups["nimbus-hello"] = map[string]int{discovery.GroupProvisioned: 2, discovery.GroupOnDemand: 0}
		f.groups["nimbus-hello-3"] = map[string]int{discovery.GroupProvisioned: 0, discovery.GroupOnDemand: 0}
	})
	s, err := NewScaler(f.client().Jobs(), ScalerConfig{Namespace: "fns", GatewayID: "gw-1"}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	s.now = func() time.Time { return now }
	ctx := context.Background()

	if err := s.OnDemand(ctx, "hello", "$LATEST", 3); err != nil {
		t.Fatal(err)
	}
	if n := len(f.calls()); n != 1 {
		t.Fatalf("%d scale calls", n)
	}
	c := f.calls()[0]
	if c.JobID != "nimbus-hello" || c.Query.Get("namespace") != "fns" {
		t.Fatalf("scaled %s with query %v", c.JobID, c.Query)
	}
	if c.Req.Count == nil || *c.Req.Count != 3 || c.Req.Target["Job"] != "nimbus-hello" || c.Req.Target["Group"] != "ondemand" || c.Req.Error {
		t.Fatalf("scale request %+v", c.Req)
	}
	if !strings.Contains(c.Req.Message, "gw-1") || !strings.Contains(c.Req.Message, "hello:$LATEST") {
		t.Fatalf("message %q", c.Req.Message)
	}
	wantMeta := map[string]any{ScaleMetaFunction: "hello", ScaleMetaVersion: "$LATEST", ScaleMetaGateway: "gw-1", ScaleMetaReason: ReasonSet}
	for k, v := range wantMeta {
		if c.Req.Meta[k] != v {
			t.Fatalf("meta %s = %v, want %v (meta %v)", k, c.Req.Meta[k], v, c.Req.Meta)
		}
	}
	if _, ok := c.Req.Meta[ScaleMetaPrevious]; ok {
		t.Fatalf("previous count without an earlier request: %v", c.Req.Meta)
	}
	if f.count("nimbus-hello", discovery.GroupOnDemand) != 3 || f.count("nimbus-hello", discovery.GroupProvisioned) != 2 {
		t.Fatal("scaling changed the wrong group")
	}

	// The same count again within Repeat is not sent; after it, it is.
	if err := s.OnDemand(ctx, "hello", "$LATEST", 3); err != nil || len(f.calls()) != 1 {
		t.Fatalf("repeat within the window: %v, %d calls", err, len(f.calls()))
	}
	now = now.Add(6 * time.Second)
	if err := s.OnDemand(ctx, "hello", "$LATEST", 3); err != nil || len(f.calls()) != 2 {
		t.Fatalf("repeat after the window: %v, %d calls", err, len(f.calls()))
	}

	// Scale in records the reason and the previous count.
	if err := s.OnDemand(ctx, "hello", "$LATEST", 0); err != nil {
		t.Fatal(err)
	}
	m := f.calls()[2].Req.Meta
	if m[ScaleMetaReason] != ReasonScaleIn || m[ScaleMetaPrevious] != float64(3) {
		t.Fatalf("scale-in meta %v", m)
	}
	if err := s.OnDemand(ctx, "hello", "$LATEST", 2); err != nil || f.calls()[3].Req.Meta[ScaleMetaReason] != ReasonScaleOut {
		t.Fatalf("scale-out: %v %v", err, f.calls()[3].Req.Meta)
	}

	// Published versions have their own job.
	if err := s.OnDemand(ctx, "hello", "3", 1); err != nil || f.calls()[4].JobID != "nimbus-hello-3" {
		t.Fatalf("version 3: %v", err)
	}
	st, err := s.Status(ctx, "hello", "$LATEST")
	if err != nil || st.Desired != 2 {
		t.Fatalf("status %+v %v", st, err)
	}
	if !strings.Contains(strings.Join(f.log(), "\n"), "GET /v1/job/nimbus-hello/scale?namespace=fns") {
		t.Fatalf("status request not seen: %v", f.log())
	}
}

func TestScalerErrors(t *testing.T) {
	f := newFakeNomad(t)
	s, err := NewScaler(f.client().Jobs(), ScalerConfig{GatewayID: "gw"}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.OnDemand(ctx, "hello", "$LATEST", -1); !errors.Is(err, ErrNegativeCount) {
		t.Fatalf("negative: %v", err)
	}
	if len(f.calls()) != 0 {
		t.Fatal("a negative count reached Nomad")
	}
	err = s.OnDemand(ctx, "missing", "$LATEST", 1)
	if err == nil || !strings.Contains(err.Error(), "scaling job nimbus-missing group ondemand to 1") {
		t.Fatalf("missing job: %v", err)
	}
	// A failed request is not remembered: asking again sends again.
	f.update(func() { f.groups["nimbus-missing"] = map[string]int{discovery.GroupOnDemand: 0} })
	if err := s.OnDemand(ctx, "missing", "$LATEST", 1); err != nil || len(f.calls()) != 1 {
		t.Fatalf("retry after failure: %v, %d calls", err, len(f.calls()))
	}
	puts := 0
	for _, r := range f.log() {
		if strings.HasPrefix(r, "PUT /v1/job/nimbus-missing/scale") {
			puts++
		}
	}
	if puts != 2 {
		t.Fatalf("%d scale requests for the missing job, want 2", puts)
	}
	f.update(func() {
		f.groups["nimbus-rolling"] = map[string]int{discovery.GroupOnDemand: 0}
		f.deploying = map[string]bool{"nimbus-rolling": true}
	})
	if err := s.OnDemand(ctx, "rolling", "$LATEST", 1); !errors.Is(err, ErrDeploymentActive) {
		t.Fatalf("scaling during a deployment: %v", err)
	}
	if _, err := s.Status(ctx, "nothing", "$LATEST"); err == nil {
		t.Fatal("status of a missing job")
	}
	f.update(func() { f.groups["nimbus-odd"] = map[string]int{"other": 1} })
	if _, err := s.Status(ctx, "odd", "$LATEST"); err == nil || !strings.Contains(err.Error(), "has no group ondemand") {
		t.Fatalf("status without the group: %v", err)
	}
}

// The catalog's job IDs drive the scaler when wired together.
func TestScalerWithCatalogJobIDs(t *testing.T) {
	f := newFakeNomad(t)
	f.update(func() {
		f.jobs["nimbus-hello-7"] = functionJob(t, "nimbus-hello-7", "hello", "7", &specs.Function{Name: "hello"}, 11)
		f.groups["nimbus-hello-7"] = map[string]int{discovery.GroupOnDemand: 0}
	})
	client := f.client()
	c, err := NewCatalog(client.Jobs(), nil, CatalogConfig{NoVariables: true}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCatalog(t, c)
	<-c.Ready()
	s, err := NewScaler(client.Jobs(), ScalerConfig{JobID: c.JobID}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.OnDemand(context.Background(), "hello", "7", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.OnDemand(context.Background(), "hello", "8", 2); err == nil {
		t.Fatal("scaled a version the catalog does not have")
	}
	if c := f.calls(); len(c) != 1 || c[0].JobID != "nimbus-hello-7" {
		t.Fatalf("scales %+v", c)
	}
}

// Count reads the group's count with the job's modify index, and SetIf
// writes only while the job is still at that index.
func TestScalerSetIfIsACheckAndSet(t *testing.T) {
	f := newFakeNomad(t)
	f.update(func() {
		f.groups["nimbus-hello"] = map[string]int{discovery.GroupProvisioned: 1, discovery.GroupOnDemand: 2}
	})
	s, err := NewScaler(f.client().Jobs(), ScalerConfig{GatewayID: "gw-1"}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at, err := s.Count(ctx, "hello", LatestVersion)
	if err != nil || at.Count != 2 || at.JobModifyIndex == 0 {
		t.Fatalf("count %+v, %v", at, err)
	}
	// Someone else scales in between: the write at the old index loses.
	other, err := NewScaler(f.client().Jobs(), ScalerConfig{GatewayID: "gw-2"}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.SetIf(ctx, "hello", LatestVersion, 5, at); err != nil {
		t.Fatal(err)
	}
	if err := s.SetIf(ctx, "hello", LatestVersion, 3, at); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale check-and-set: %v, want ErrConflict", err)
	}
	if n := f.count("nimbus-hello", discovery.GroupOnDemand); n != 5 {
		t.Fatalf("count %d after a lost check-and-set, want 5", n)
	}
	at, err = s.Count(ctx, "hello", LatestVersion)
	if err != nil || at.Count != 5 {
		t.Fatalf("count %+v, %v", at, err)
	}
	if err := s.SetIf(ctx, "hello", LatestVersion, 6, at); err != nil {
		t.Fatal(err)
	}
	c := f.calls()
	last := c[len(c)-1].Req
	if last.JobModifyIndex != at.JobModifyIndex || last.Meta[ScaleMetaReason] != ReasonScaleOut || last.Meta[ScaleMetaPrevious] != float64(5) {
		t.Fatalf("check-and-set request %+v", last)
	}
	if _, err := s.Count(ctx, "missing", LatestVersion); err == nil {
		t.Fatal("count of a missing job")
	}
	if err := s.SetIf(ctx, "hello", LatestVersion, 1, Count{Count: 6}); err == nil {
		t.Fatal("a check-and-set without an index was sent")
	}
}
