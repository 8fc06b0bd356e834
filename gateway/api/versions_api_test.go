package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/nimbus-fn/nimbus/gateway/api"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/sigv4"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/specs"
)

// urlCode is a CodeStore that keeps nothing: the list operations under
// test never store code.
type urlCode struct{}

func (urlCode) Put(_ context.Context, sum string, _ []byte) (*specs.Code, error) {
	return &specs.Code{URL: "https://artifacts.invalid/" + sum + ".zip", Checksum: "sha256:" + sum}, nil
}

// listEnv serves the API over a real local version store holding fn with
// versions 1..5, four aliases and three layers.
func listEnv(t *testing.T) (*lambda.Client, *versions.Store) {
	t.Helper()
	ctx := context.Background()
	local, err := versions.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	vs := versions.New(local, nil)
	latest := fnSpec("fn")
	latest.Code = &specs.Code{URL: "https://artifacts.invalid/x.zip", Checksum: "sha256:" + strings.Repeat("f", 64)}
	for i := 1; i <= 5; i++ {
		s := fnSpec("fn")
		s.MemoryMB = 128 * i
		if _, _, err := vs.Publish(ctx, "fn", versions.Snapshot{Spec: s, CodeSHA256: strings.Repeat(fmt.Sprint(i), 64)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, al := range []*specs.Alias{
		{Name: "a1", Version: "1"},
		{Name: "a2", Version: "2", Routing: map[string]float64{"3": 0.5}},
		{Name: "a3", Version: "3"},
		{Name: "a4", Version: "4"},
	} {
		if err := vs.SetAlias(ctx, "fn", al); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []struct {
		name     string
		runtimes []string
		n        int
	}{{"alpha", []string{"python3.12"}, 3}, {"beta", []string{"nodejs22.x"}, 1}, {"gamma", []string{"python3.12", "nodejs22.x"}, 2}} {
		for i := 1; i <= l.n; i++ {
			if _, _, err := vs.PublishLayer(ctx, l.name, versions.LayerSnapshot{CodeSHA256: strings.Repeat(fmt.Sprint(i), 64), Size: 1, CompatibleRuntimes: l.runtimes}); err != nil {
				t.Fatal(err)
			}
		}
	}
	a := api.New(api.Options{Region: region, AccountID: account,
		Verifier: &sigv4.Verifier{Keys: map[string]string{accessKey: secretKey}, Region: region},
		Manage:   &api.Management{Functions: functions.NewStore(local), Versions: vs, Code: urlCode{}}},
		snapCatalog{catalog.NewSnapshot([]*catalog.Function{{Name: "fn", Versions: map[string]*specs.Function{catalog.Latest: latest}}})},
		nil, nil, metrics.New(), nil)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return (&env{srv: srv}).client(accessKey, secretKey), vs
}

// TestListPagination follows NextMarker with the SDK's own paginators at
// every page size and checks each list comes whole, once, in Lambda's order.
func TestListPagination(t *testing.T) {
	c, vs := listEnv(t)
	ctx := context.Background()
	for _, size := range []int32{1, 2, 3, 50} {
		var got []string
		p := lambda.NewListVersionsByFunctionPaginator(c, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("fn"), MaxItems: aws.Int32(size)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Versions) > int(size) {
				t.Fatalf("page of %d with MaxItems %d", len(out.Versions), size)
			}
			for _, v := range out.Versions {
				got = append(got, fmt.Sprintf("%s:%d", *v.Version, *v.MemorySize))
			}
		}
		if want := []string{"$LATEST:128", "1:128", "2:256", "3:384", "4:512", "5:640"}; !reflect.DeepEqual(got, want) {
			t.Errorf("ListVersionsByFunction MaxItems %d: %v, want %v", size, got, want)
		}

		got = nil
		ap := lambda.NewListAliasesPaginator(c, &lambda.ListAliasesInput{FunctionName: aws.String("fn"), MaxItems: aws.Int32(size)})
		for ap.HasMorePages() {
			out, err := ap.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, al := range out.Aliases {
				got = append(got, *al.Name+">"+*al.FunctionVersion)
			}
		}
		if want := []string{"a1>1", "a2>2", "a3>3", "a4>4"}; !reflect.DeepEqual(got, want) {
			t.Errorf("ListAliases MaxItems %d: %v", size, got)
		}

		got = nil
		lp := lambda.NewListLayerVersionsPaginator(c, &lambda.ListLayerVersionsInput{LayerName: aws.String("alpha"), MaxItems: aws.Int32(size)})
		for lp.HasMorePages() {
			out, err := lp.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, lv := range out.LayerVersions {
				got = append(got, fmt.Sprint(lv.Version))
			}
		}
		if want := []string{"3", "2", "1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("ListLayerVersions MaxItems %d: %v, want newest first", size, got)
		}

		got = nil
		llp := lambda.NewListLayersPaginator(c, &lambda.ListLayersInput{MaxItems: aws.Int32(size)})
		for llp.HasMorePages() {
			out, err := llp.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range out.Layers {
				got = append(got, fmt.Sprintf("%s:%d", *l.LayerName, l.LatestMatchingVersion.Version))
			}
		}
		if want := []string{"alpha:3", "beta:1", "gamma:2"}; !reflect.DeepEqual(got, want) {
			t.Errorf("ListLayers MaxItems %d: %v", size, got)
		}
	}

	// Filters.
	als, err := c.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("fn"), FunctionVersion: aws.String("3")})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, al := range als.Aliases {
		names = append(names, *al.Name)
	}
	if !reflect.DeepEqual(names, []string{"a2", "a3"}) {
		t.Errorf("aliases routing to version 3: %v (a2 routes half its traffic there)", names)
	}
	ls, err := c.ListLayers(ctx, &lambda.ListLayersInput{CompatibleRuntime: types.RuntimeNodejs22x})
	if err != nil {
		t.Fatal(err)
	}
	names = nil
	for _, l := range ls.Layers {
		names = append(names, *l.LayerName)
	}
	if !reflect.DeepEqual(names, []string{"beta", "gamma"}) {
		t.Errorf("layers for nodejs22.x: %v", names)
	}

	// A deleted version leaves the lists; a page boundary on it still works.
	if err := vs.DeleteVersion(ctx, "fn", 5); err != nil {
		t.Fatal(err)
	}
	out, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("fn"), Marker: aws.String("0000000003"), MaxItems: aws.Int32(5)})
	if err != nil || len(out.Versions) != 1 || *out.Versions[0].Version != "4" || out.NextMarker != nil {
		t.Fatalf("after version 3: %+v %v", out, err)
	}

	// MaxItems out of Lambda's bounds.
	for _, call := range []func() error{
		func() error {
			_, err := c.ListLayers(ctx, &lambda.ListLayersInput{MaxItems: aws.Int32(51)})
			return err
		},
		func() error {
			_, err := c.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("fn"), MaxItems: aws.Int32(0)})
			return err
		},
	} {
		var ip *types.InvalidParameterValueException
		if err := call(); !errors.As(err, &ip) {
			t.Errorf("MaxItems out of bounds: %v, want InvalidParameterValueException", err)
		}
	}
}
