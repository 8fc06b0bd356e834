package gatewaytest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/specs"
)

// Catalog is the read side every catalog offers the gateway (the local file
// catalog and the Nomad-backed one).
type Catalog interface {
	Function(ctx context.Context, name string) (*catalog.Function, error)
	Functions(ctx context.Context) ([]*catalog.Function, error)
}

// CatalogContract runs the behaviour every Catalog must show. deploy makes
// the given functions ($LATEST specs) visible through a fresh catalog and
// returns it once they are (a cluster implementation registers jobs and waits
// for its watch to see them).
func CatalogContract(t *testing.T, deploy func(t *testing.T, fns []*specs.Function) Catalog) {
	t.Helper()
	two := 2
	fns := []*specs.Function{
		{Name: "beta", Runtime: "provided.al2023", MemoryMB: 256, Timeout: "5s", EnvironmentsPerInstance: 4,
			ReservedConcurrency: &two,
			URL: &specs.URLConfig{Auth: "AWS_IAM", InvokeMode: "RESPONSE_STREAM", Qualifier: "$LATEST",
				CORS: &specs.CORS{AllowOrigins: []string{"https://a.example"}, MaxAge: 30}}},
		{Name: "alpha", Runtime: "python3.12", Handler: "app.handler", MemoryMB: 128, Timeout: "3s", EnvironmentsPerInstance: 1,
			Environment: map[string]string{"K": "V"}},
	}
	c := deploy(t, fns)
	ctx := context.Background()

	t.Run("lists every function sorted by name", func(t *testing.T) {
		list, err := c.Functions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].Name != "alpha" || list[1].Name != "beta" {
			t.Fatalf("Functions = %v", names(list))
		}
	})
	t.Run("returns a function's $LATEST spec", func(t *testing.T) {
		f, err := c.Function(ctx, "beta")
		if err != nil {
			t.Fatal(err)
		}
		l := f.Latest()
		if f.Name != "beta" || l == nil || l.MemoryMB != 256 || l.Timeout != "5s" || l.EnvironmentsPerInstance != 4 || l.Runtime != "provided.al2023" {
			t.Fatalf("beta = %+v (latest %+v)", f, l)
		}
		if r := f.ReservedConcurrency(); r == nil || *r != 2 {
			t.Fatalf("reserved concurrency %v", r)
		}
		u := f.URL()
		if u == nil || u.Auth != "AWS_IAM" || u.InvokeMode != "RESPONSE_STREAM" || u.CORS == nil || u.CORS.MaxAge != 30 {
			t.Fatalf("URL config %+v", u)
		}
		res, err := f.Resolve("", nil)
		if err != nil || res.Version != catalog.Latest || res.Spec != l {
			t.Fatalf("Resolve(\"\") = %+v, %v", res, err)
		}
		a, err := c.Function(ctx, "alpha")
		if err != nil || a.URL() != nil || a.ReservedConcurrency() != nil || a.Latest().Environment["K"] != "V" {
			t.Fatalf("alpha = %+v, %v", a, err)
		}
	})
	t.Run("unknown functions are ErrFunctionNotFound", func(t *testing.T) {
		if _, err := c.Function(ctx, "gamma"); !errors.Is(err, catalog.ErrFunctionNotFound) {
			t.Fatalf("Function(gamma) error %v", err)
		}
	})
}

func names(fns []*catalog.Function) []string {
	out := make([]string, len(fns))
	for i, f := range fns {
		out[i] = f.Name
	}
	return out
}

// Capacity is a scaler and a discovery source that together manage
// on-demand instances (dev mode's pool; in a cluster, Nomad's scaler with
// Consul or Nomad discovery).
type Capacity interface {
	OnDemand(ctx context.Context, function, version string, want int) error
	discovery.Source
}

// CapacityContract checks that OnDemand(want) is reflected by Instances
// within the deadline, up and back down to zero, with instances that name
// their function, version and the on-demand group.
func CapacityContract(t *testing.T, c Capacity, function, version string, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	count := func() int {
		list, err := c.Instances(ctx, function, version)
		if err != nil {
			t.Fatalf("Instances: %v", err)
		}
		for _, in := range list {
			if in.Function != function || in.Version != version || in.Group != discovery.GroupOnDemand || in.Address == "" || in.ID == "" {
				t.Fatalf("instance %+v does not describe %s:%s on-demand", in, function, version)
			}
		}
		return len(list)
	}
	for _, want := range []int{2, 1, 0} {
		if err := c.OnDemand(ctx, function, version, want); err != nil {
			t.Fatalf("OnDemand(%d): %v", want, err)
		}
		Eventually(t, within, func() bool { return count() == want }, "%d instances of %s:%s (have %d)", want, function, version, count())
	}
}
