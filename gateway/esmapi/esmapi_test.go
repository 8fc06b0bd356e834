package esmapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/esmapi"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/sigv4"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/specs"
)

const (
	region  = "us-east-1"
	account = "123456789012"
	arnFn   = "arn:aws:lambda:us-east-1:123456789012:function:"
)

// testCatalog adapts a catalog snapshot to esmapi.Functions.
type testCatalog struct{ *catalog.Snapshot }

func (c testCatalog) Function(_ context.Context, name string) (*catalog.Function, error) {
	return c.Snapshot.Function(name)
}

type env struct {
	t      *testing.T
	store  *esmapi.Store
	cat    testCatalog
	srv    *httptest.Server
	client *lambda.Client
	// declared is the UUID of the mapping function "declared"'s spec declares.
	declared string
	specES   *specs.EventSource
}

func fnVersion(name string) *specs.Function {
	return &specs.Function{Name: name, Runtime: "provided.al2023", MemoryMB: 128, Timeout: "3s"}
}

// newEnv serves the API over a directory store. Functions: orders (version
// 1, alias live), billing, and declared, whose spec declares a NATS mapping.
func newEnv(t *testing.T, mod func(*esmapi.Options)) *env {
	t.Helper()
	backend, err := versions.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	specES := &specs.EventSource{Name: "feed", Type: specs.SourceNATS, Enabled: true, Stream: "FEED"}
	if err := specs.CheckEventSource("declared", specES); err != nil {
		t.Fatal(err)
	}
	declared := fnVersion("declared")
	declared.EventSources = []*specs.EventSource{specES}
	fns := []*catalog.Function{
		{Name: "orders", Versions: map[string]*specs.Function{catalog.Latest: fnVersion("orders"), "1": fnVersion("orders")},
			Aliases: map[string]*specs.Alias{"live": {Name: "live", Version: "1"}}},
		{Name: "billing", Versions: map[string]*specs.Function{catalog.Latest: fnVersion("billing")}},
		{Name: "declared", Versions: map[string]*specs.Function{catalog.Latest: declared}},
	}
	e := &env{t: t, store: esmapi.NewStore(backend), cat: testCatalog{catalog.NewSnapshot(fns)},
		declared: sources.SpecUUID("declared", "feed"), specES: specES}
	opts := esmapi.Options{
		Store:     e.store,
		Specs:     e.specMappings,
		Functions: e.cat,
		Region:    region,
		AccountID: account,
		Logger:    gatewaytest.Logger(t),
	}
	if mod != nil {
		mod(&opts)
	}
	e.srv = httptest.NewServer(esmapi.NewHandler(opts))
	t.Cleanup(e.srv.Close)
	e.client = e.newClient("AKIDTEST", "secret")
	return e
}

func (e *env) specMappings(context.Context) ([]sources.Mapping, error) {
	return sources.FromFunctions(e.cat.Functions()), nil
}

func (e *env) newClient(key, secret string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:           region,
		BaseEndpoint:     aws.String(e.srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider(key, secret, ""),
		RetryMaxAttempts: 1,
	})
}

// errCode returns the API error code of err ("" if none).
func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func retries(n int) *int { return &n }

// TestMappingsThroughSDK drives the whole API with aws-sdk-go-v2's lambda
// client: every source kind is created, read, listed, updated and deleted,
// and the store holds exactly the specs.EventSource each request means.
func TestMappingsThroughSDK(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

	cases := []struct {
		name        string
		in          lambda.CreateEventSourceMappingInput
		wantFnArn   string
		wantSrcArn  string
		wantState   string
		want        specs.EventSource // Group "" means "nimbus-<uuid>"
		checkOutput func(t *testing.T, out *lambda.CreateEventSourceMappingOutput)
	}{{
		name: "kafka",
		in: lambda.CreateEventSourceMappingInput{
			FunctionName: aws.String("orders"),
			SelfManagedEventSource: &types.SelfManagedEventSource{Endpoints: map[string][]string{
				"KAFKA_BOOTSTRAP_SERVERS": {"127.0.0.1:9092", "127.0.0.1:9093"}}},
			Topics:                            []string{"orders"},
			SelfManagedKafkaEventSourceConfig: &types.SelfManagedKafkaEventSourceConfig{ConsumerGroupId: aws.String("orders-group")},
			StartingPosition:                  types.EventSourcePositionTrimHorizon,
			BatchSize:                         aws.Int32(50),
			MaximumBatchingWindowInSeconds:    aws.Int32(2),
			MaximumRetryAttempts:              aws.Int32(3),
			MaximumRecordAgeInSeconds:         aws.Int32(3600),
			BisectBatchOnFunctionError:        aws.Bool(true),
			FunctionResponseTypes:             []types.FunctionResponseType{types.FunctionResponseTypeReportBatchItemFailures},
			FilterCriteria:                    &types.FilterCriteria{Filters: []types.Filter{{Pattern: aws.String(`{"value":{"kind":["order"]}}`)}}},
			ParallelizationFactor:             aws.Int32(4),
			DestinationConfig:                 &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("kafka:orders-dlq")}},
		},
		wantFnArn: arnFn + "orders",
		wantState: "Creating",
		want: specs.EventSource{Type: "kafka", Enabled: true, URL: "127.0.0.1:9092,127.0.0.1:9093", Topics: []string{"orders"},
			Group: "orders-group", StartingFrom: "TRIM_HORIZON", BatchSize: 50, MaximumBatchingWindow: "2s",
			MaximumRetryAttempts: retries(3), MaximumRecordAge: "1h0m0s", BisectBatchOnFunctionError: true,
			ReportBatchItemFailures: true, Filters: []string{`{"value":{"kind":["order"]}}`}, ParallelizationFactor: 4,
			OnFailure: &specs.Destination{Kafka: "orders-dlq"}},
		checkOutput: func(t *testing.T, out *lambda.CreateEventSourceMappingOutput) {
			if got := aws.ToInt32(out.ParallelizationFactor); got != 4 {
				t.Errorf("ParallelizationFactor = %d, want 4", got)
			}
			if got := out.SelfManagedEventSource.Endpoints["KAFKA_BOOTSTRAP_SERVERS"]; !reflect.DeepEqual(got, []string{"127.0.0.1:9092", "127.0.0.1:9093"}) {
				t.Errorf("bootstrap servers = %v", got)
			}
			if got := aws.ToString(out.SelfManagedKafkaEventSourceConfig.ConsumerGroupId); got != "orders-group" {
				t.Errorf("ConsumerGroupId = %q", got)
			}
			if !reflect.DeepEqual(out.Topics, []string{"orders"}) || out.StartingPosition != types.EventSourcePositionTrimHorizon ||
				aws.ToInt32(out.BatchSize) != 50 || aws.ToInt32(out.MaximumBatchingWindowInSeconds) != 2 ||
				aws.ToInt32(out.MaximumRetryAttempts) != 3 || aws.ToInt32(out.MaximumRecordAgeInSeconds) != 3600 ||
				!aws.ToBool(out.BisectBatchOnFunctionError) {
				t.Errorf("settings echoed wrong: %+v", out)
			}
			if len(out.FunctionResponseTypes) != 1 || out.FunctionResponseTypes[0] != types.FunctionResponseTypeReportBatchItemFailures {
				t.Errorf("FunctionResponseTypes = %v", out.FunctionResponseTypes)
			}
			if len(out.FilterCriteria.Filters) != 1 || aws.ToString(out.FilterCriteria.Filters[0].Pattern) != `{"value":{"kind":["order"]}}` {
				t.Errorf("FilterCriteria = %+v", out.FilterCriteria)
			}
			if got := aws.ToString(out.DestinationConfig.OnFailure.Destination); got != "kafka:orders-dlq" {
				t.Errorf("OnFailure = %q", got)
			}
		},
	}, {
		name: "rabbitmq",
		in: lambda.CreateEventSourceMappingInput{
			FunctionName:      aws.String("orders"),
			EventSourceArn:    aws.String("amqp://guest:s3cret@127.0.0.1:5672/jobs"),
			Queues:            []string{"work"},
			ScalingConfig:     &types.ScalingConfig{MaximumConcurrency: aws.Int32(4)},
			DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("function:billing")}},
		},
		wantFnArn:  arnFn + "orders",
		wantSrcArn: "amqp://guest:xxxxx@127.0.0.1:5672/jobs",
		wantState:  "Creating",
		want: specs.EventSource{Type: "rabbitmq", Enabled: true, URL: "amqp://guest:s3cret@127.0.0.1:5672/jobs", Queue: "work",
			BatchSize: 100, MaximumBatchingWindow: "500ms", MaximumRetryAttempts: retries(-1), MaximumConcurrency: 4,
			OnFailure: &specs.Destination{Function: "billing"}},
		checkOutput: func(t *testing.T, out *lambda.CreateEventSourceMappingOutput) {
			if !reflect.DeepEqual(out.Queues, []string{"work"}) || aws.ToInt32(out.ScalingConfig.MaximumConcurrency) != 4 {
				t.Errorf("Queues/ScalingConfig = %v %+v", out.Queues, out.ScalingConfig)
			}
			if got := aws.ToString(out.DestinationConfig.OnFailure.Destination); got != arnFn+"billing" {
				t.Errorf("OnFailure = %q", got)
			}
			if aws.ToInt32(out.MaximumRecordAgeInSeconds) != -1 || aws.ToInt32(out.MaximumRetryAttempts) != -1 {
				t.Errorf("defaults not shown: age %d retries %d", aws.ToInt32(out.MaximumRecordAgeInSeconds), aws.ToInt32(out.MaximumRetryAttempts))
			}
		},
	}, {
		name: "redis",
		in: lambda.CreateEventSourceMappingInput{
			FunctionName:              aws.String("billing"),
			EventSourceArn:            aws.String("redis://127.0.0.1:6379/2?stream=payments"),
			StartingPosition:          types.EventSourcePositionAtTimestamp,
			StartingPositionTimestamp: aws.Time(at),
			DestinationConfig:         &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("http://127.0.0.1:9/failed")}},
		},
		wantFnArn:  arnFn + "billing",
		wantSrcArn: "redis://127.0.0.1:6379/2?stream=payments&group=",
		wantState:  "Creating",
		want: specs.EventSource{Type: "redis", Enabled: true, URL: "redis://127.0.0.1:6379/2", Stream: "payments",
			StartingFrom: "AT_TIMESTAMP", StartingTimestamp: "2026-01-02T15:04:05Z", BatchSize: 10, MaximumBatchingWindow: "0s",
			MaximumRetryAttempts: retries(-1), OnFailure: &specs.Destination{Webhook: "http://127.0.0.1:9/failed"}},
		checkOutput: func(t *testing.T, out *lambda.CreateEventSourceMappingOutput) {
			if !aws.ToTime(out.StartingPositionTimestamp).Equal(at) || out.StartingPosition != types.EventSourcePositionAtTimestamp {
				t.Errorf("starting position = %s %v", out.StartingPosition, out.StartingPositionTimestamp)
			}
			if out.ParallelizationFactor == nil || *out.ParallelizationFactor != 1 {
				t.Errorf("ParallelizationFactor unset = %v, want 1 shown", out.ParallelizationFactor)
			}
		},
	}, {
		name: "nats on the gateway",
		in: lambda.CreateEventSourceMappingInput{
			FunctionName:      aws.String(arnFn + "orders:live"),
			EventSourceArn:    aws.String("nats:ORDERS?subject=orders.created&group=ingest"),
			DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("nats:orders.dead")}},
		},
		wantFnArn:  arnFn + "orders:live",
		wantSrcArn: "nats:ORDERS?subject=orders.created&group=ingest",
		wantState:  "Creating",
		want: specs.EventSource{Type: "nats", Enabled: true, Stream: "ORDERS", Subject: "orders.created", Group: "ingest",
			StartingFrom: "LATEST", BatchSize: 10, MaximumBatchingWindow: "0s", MaximumRetryAttempts: retries(-1),
			OnFailure: &specs.Destination{NATS: "orders.dead"}},
	}, {
		name: "nats server",
		in: lambda.CreateEventSourceMappingInput{
			FunctionName:   aws.String("orders"),
			EventSourceArn: aws.String("nats://127.0.0.1:4222?stream=AUDIT&subject=audit.%3E"),
			BatchSize:      aws.Int32(500),
		},
		wantFnArn:  arnFn + "orders",
		wantSrcArn: "nats://127.0.0.1:4222?stream=AUDIT&subject=audit.%3E&group=",
		wantState:  "Creating",
		want: specs.EventSource{Type: "nats", Enabled: true, URL: "nats://127.0.0.1:4222", Stream: "AUDIT", Subject: "audit.>",
			StartingFrom: "LATEST", BatchSize: 500, MaximumBatchingWindow: "0s", MaximumRetryAttempts: retries(-1)},
	}, {
		name: "schedule",
		in: lambda.CreateEventSourceMappingInput{
			FunctionName:   aws.String("billing"),
			EventSourceArn: aws.String("schedule:cron(0 12 * * ? *)"),
			Enabled:        aws.Bool(false),
		},
		wantFnArn:  arnFn + "billing",
		wantSrcArn: "schedule:cron(0 12 * * ? *)",
		wantState:  "Creating",
		want:       specs.EventSource{Type: "schedule", Schedule: "cron(0 12 * * ? *)", BatchSize: 1},
	}}

	created := map[string]*lambda.CreateEventSourceMappingOutput{} // by case name
	wantSpec := map[string]specs.EventSource{}                     // by UUID
	for _, tc := range cases {
		t.Run("create "+tc.name, func(t *testing.T) {
			before := time.Now().Add(-time.Second)
			out, err := e.client.CreateEventSourceMapping(ctx, &tc.in)
			if err != nil {
				t.Fatalf("CreateEventSourceMapping: %v", err)
			}
			id := aws.ToString(out.UUID)
			if len(id) != 36 {
				t.Fatalf("UUID = %q", id)
			}
			created[tc.name] = out
			want := tc.want
			wantArn := tc.wantSrcArn
			if want.Group == "" && want.Type != "rabbitmq" && want.Type != "schedule" {
				want.Group = "nimbus-" + id
				wantArn = strings.Replace(wantArn, "group=", "group=nimbus-"+id, 1)
			}
			wantSpec[id] = want
			if got := aws.ToString(out.State); got != tc.wantState {
				t.Errorf("State = %q, want %q", got, tc.wantState)
			}
			if got := aws.ToString(out.FunctionArn); got != tc.wantFnArn {
				t.Errorf("FunctionArn = %q, want %q", got, tc.wantFnArn)
			}
			if got := aws.ToString(out.EventSourceArn); got != wantArn {
				t.Errorf("EventSourceArn = %q, want %q", got, wantArn)
			}
			if got := aws.ToString(out.EventSourceMappingArn); got != "arn:aws:lambda:us-east-1:123456789012:event-source-mapping:"+id {
				t.Errorf("EventSourceMappingArn = %q", got)
			}
			if got := aws.ToInt32(out.BatchSize); int(got) != want.BatchSize {
				t.Errorf("BatchSize = %d, want %d", got, want.BatchSize)
			}
			if lm := aws.ToTime(out.LastModified); lm.Before(before) || lm.After(time.Now().Add(time.Second)) {
				t.Errorf("LastModified = %v", lm)
			}
			if tc.checkOutput != nil {
				tc.checkOutput(t, out)
			}
			stored, err := e.store.Get(ctx, id)
			if err != nil {
				t.Fatalf("Store.Get: %v", err)
			}
			if stored.Origin != sources.OriginAPI || stored.Function != strings.TrimSuffix(strings.TrimPrefix(tc.wantFnArn, arnFn), ":live") {
				t.Errorf("stored origin %q function %q", stored.Origin, stored.Function)
			}
			if !reflect.DeepEqual(*stored.Spec, want) {
				t.Errorf("stored spec\n got %s\nwant %s", js(stored.Spec), js(want))
			}
		})
	}
	if t.Failed() {
		t.FailNow()
	}

	t.Run("store lists what was created", func(t *testing.T) {
		ms, err := e.store.Mappings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != len(wantSpec) {
			t.Fatalf("Store.Mappings has %d mappings, want %d", len(ms), len(wantSpec))
		}
		for _, m := range ms {
			want, ok := wantSpec[m.UUID]
			if !ok {
				t.Fatalf("unexpected mapping %s", m.UUID)
			}
			if !reflect.DeepEqual(*m.Spec, want) {
				t.Errorf("mapping %s spec\n got %s\nwant %s", m.UUID, js(m.Spec), js(want))
			}
		}
		if q := ms[indexOf(ms, aws.ToString(created["nats on the gateway"].UUID))].Qualifier; q != "live" {
			t.Errorf("qualifier = %q, want live", q)
		}
	})

	t.Run("get", func(t *testing.T) {
		for name, c := range created {
			out, err := e.client.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: c.UUID})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if aws.ToString(out.UUID) != aws.ToString(c.UUID) || aws.ToString(out.EventSourceArn) != aws.ToString(c.EventSourceArn) ||
				aws.ToString(out.FunctionArn) != aws.ToString(c.FunctionArn) || !aws.ToTime(out.LastModified).Equal(aws.ToTime(c.LastModified)) {
				t.Errorf("%s: get differs from create: %+v vs %+v", name, out, c)
			}
			// No engine on this gateway: the state comes from the settings.
			want := "Enabled"
			if name == "schedule" {
				want = "Disabled"
			}
			if got := aws.ToString(out.State); got != want {
				t.Errorf("%s: State = %q, want %q", name, got, want)
			}
			if got := aws.ToString(out.LastProcessingResult); got != "No records processed" {
				t.Errorf("%s: LastProcessingResult = %q", name, got)
			}
		}
		out, err := e.client.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: aws.String(e.declared)})
		if err != nil {
			t.Fatalf("spec mapping: %v", err)
		}
		if aws.ToString(out.FunctionArn) != arnFn+"declared" || aws.ToString(out.EventSourceArn) != "nats:FEED?group=nimbus-declared-feed" ||
			aws.ToInt32(out.BatchSize) != 10 || aws.ToString(out.State) != "Enabled" || out.LastModified != nil {
			t.Errorf("spec mapping shown as %s", js(out))
		}
	})

	all := append(uuids(created), e.declared)
	sort.Strings(all)
	t.Run("list", func(t *testing.T) {
		got := e.listAll(t, &lambda.ListEventSourceMappingsInput{})
		if !reflect.DeepEqual(got, all) {
			t.Errorf("List = %v, want %v", got, all)
		}
		var orders []string
		for _, c := range created {
			if strings.HasPrefix(aws.ToString(c.FunctionArn), arnFn+"orders") {
				orders = append(orders, aws.ToString(c.UUID))
			}
		}
		sort.Strings(orders)
		if got := e.listAll(t, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String("orders")}); !reflect.DeepEqual(got, orders) || len(orders) != 4 {
			t.Errorf("List(orders) = %v, want %v", got, orders)
		}
		live := []string{aws.ToString(created["nats on the gateway"].UUID)}
		if got := e.listAll(t, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String(arnFn + "orders:live")}); !reflect.DeepEqual(got, live) {
			t.Errorf("List(orders:live) = %v, want %v", got, live)
		}
		rabbit := created["rabbitmq"]
		for _, arn := range []string{aws.ToString(rabbit.EventSourceArn), "amqp://guest:s3cret@127.0.0.1:5672/jobs"} {
			got := e.listAll(t, &lambda.ListEventSourceMappingsInput{EventSourceArn: aws.String(arn)})
			if !reflect.DeepEqual(got, []string{aws.ToString(rabbit.UUID)}) {
				t.Errorf("List(EventSourceArn=%s) = %v", arn, got)
			}
		}
		if got := e.listAll(t, &lambda.ListEventSourceMappingsInput{EventSourceArn: aws.String("nats:FEED")}); !reflect.DeepEqual(got, []string{e.declared}) {
			t.Errorf("List(nats:FEED) = %v", got)
		}
	})

	t.Run("pagination", func(t *testing.T) {
		var got []string
		var marker *string
		pages := 0
		for {
			out, err := e.client.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{MaxItems: aws.Int32(2), Marker: marker})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(out.EventSourceMappings) > 2 {
				t.Fatalf("page of %d with MaxItems 2", len(out.EventSourceMappings))
			}
			for _, m := range out.EventSourceMappings {
				got = append(got, aws.ToString(m.UUID))
			}
			if out.NextMarker == nil {
				break
			}
			marker = out.NextMarker
		}
		if !reflect.DeepEqual(got, all) || pages != (len(all)+1)/2 {
			t.Errorf("paged list = %v in %d pages, want %v in %d", got, pages, all, (len(all)+1)/2)
		}
		p := lambda.NewListEventSourceMappingsPaginator(e.client, &lambda.ListEventSourceMappingsInput{MaxItems: aws.Int32(3)})
		var viaPaginator []string
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range out.EventSourceMappings {
				viaPaginator = append(viaPaginator, aws.ToString(m.UUID))
			}
		}
		if !reflect.DeepEqual(viaPaginator, all) {
			t.Errorf("SDK paginator = %v, want %v", viaPaginator, all)
		}
	})

	t.Run("update", func(t *testing.T) {
		kafka := created["kafka"]
		out, err := e.client.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: kafka.UUID, Enabled: aws.Bool(false)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.State) != "Updating" || aws.ToInt32(out.BatchSize) != 50 {
			t.Errorf("update answered State %q BatchSize %d", aws.ToString(out.State), aws.ToInt32(out.BatchSize))
		}
		got, err := e.client.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: kafka.UUID})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(got.State) != "Disabled" {
			t.Errorf("after disabling, State = %q", aws.ToString(got.State))
		}

		redis := created["redis"]
		if _, err := e.client.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: redis.UUID,
			BatchSize: aws.Int32(250), MaximumBatchingWindowInSeconds: aws.Int32(5),
			FilterCriteria:        &types.FilterCriteria{Filters: []types.Filter{{Pattern: aws.String(`{"data":{"amount":[{"numeric":[">",100]}]}}`)}}},
			ScalingConfig:         &types.ScalingConfig{MaximumConcurrency: aws.Int32(3)},
			ParallelizationFactor: aws.Int32(6),
		}); err != nil {
			t.Fatal(err)
		}
		m, err := e.store.Get(ctx, aws.ToString(redis.UUID))
		if err != nil {
			t.Fatal(err)
		}
		want := wantSpec[aws.ToString(redis.UUID)]
		want.BatchSize, want.MaximumBatchingWindow, want.MaximumConcurrency, want.ParallelizationFactor = 250, "5s", 3, 6
		want.Filters = []string{`{"data":{"amount":[{"numeric":[">",100]}]}}`}
		if !reflect.DeepEqual(*m.Spec, want) {
			t.Errorf("after update\n got %s\nwant %s", js(m.Spec), js(want))
		}
		if !m.LastModified.After(aws.ToTime(redis.LastModified)) && !m.LastModified.Equal(aws.ToTime(redis.LastModified)) {
			t.Errorf("LastModified went back: %v", m.LastModified)
		}

		// Clearing: empty filter list, no on-failure destination, another function.
		if _, err := e.client.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: redis.UUID,
			FunctionName:      aws.String("orders:1"),
			FilterCriteria:    &types.FilterCriteria{Filters: []types.Filter{}},
			DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("")}},
		}); err != nil {
			t.Fatal(err)
		}
		m, err = e.store.Get(ctx, aws.ToString(redis.UUID))
		if err != nil {
			t.Fatal(err)
		}
		want.Filters, want.OnFailure = nil, nil
		if !reflect.DeepEqual(*m.Spec, want) || m.Function != "orders" || m.Qualifier != "1" {
			t.Errorf("after clearing: %s %s:%s\nwant %s", js(m.Spec), m.Function, m.Qualifier, js(want))
		}
	})

	t.Run("delete", func(t *testing.T) {
		rabbit := created["rabbitmq"]
		out, err := e.client.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: rabbit.UUID})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.State) != "Deleting" || aws.ToString(out.UUID) != aws.ToString(rabbit.UUID) || !reflect.DeepEqual(out.Queues, []string{"work"}) {
			t.Errorf("delete answered %s", js(out))
		}
		_, err = e.client.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: rabbit.UUID})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("get after delete: %v", err)
		}
		if _, err := e.store.Get(ctx, aws.ToString(rabbit.UUID)); !errors.Is(err, esmapi.ErrNotFound) {
			t.Errorf("store after delete: %v", err)
		}
		_, err = e.client.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: rabbit.UUID})
		if !errors.As(err, &nf) {
			t.Errorf("second delete: %v", err)
		}
		// The same source may be mapped again once the old mapping is gone.
		if _, err := e.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("orders"),
			EventSourceArn: aws.String("amqp://guest:s3cret@127.0.0.1:5672/jobs"), Queues: []string{"work"}}); err != nil {
			t.Errorf("re-create after delete: %v", err)
		}
	})
}

// TestErrors checks each refusal's Lambda error type and message.
func TestErrors(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	kafka := func(fn string, mod func(*lambda.CreateEventSourceMappingInput)) *lambda.CreateEventSourceMappingInput {
		in := &lambda.CreateEventSourceMappingInput{FunctionName: aws.String(fn),
			SelfManagedEventSource: &types.SelfManagedEventSource{Endpoints: map[string][]string{"KAFKA_BOOTSTRAP_SERVERS": {"127.0.0.1:9092", "127.0.0.1:9093"}}},
			Topics:                 []string{"orders"}}
		if mod != nil {
			mod(in)
		}
		return in
	}
	first, err := e.client.CreateEventSourceMapping(ctx, kafka("orders", nil))
	if err != nil {
		t.Fatal(err)
	}
	unknown := "5b0d1f0e-1111-4222-8333-444455556666"

	cases := []struct {
		name    string
		call    func() error
		code    string
		message string // substring
	}{{
		name: "batch size too large",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, kafka("billing", func(in *lambda.CreateEventSourceMappingInput) { in.BatchSize = aws.Int32(20000) }))
			return err
		},
		code: "InvalidParameterValueException", message: "BatchSize must be between 1 and 10000; got 20000",
	}, {
		name: "batch size zero",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, kafka("billing", func(in *lambda.CreateEventSourceMappingInput) { in.BatchSize = aws.Int32(0) }))
			return err
		},
		code: "InvalidParameterValueException", message: "BatchSize must be at least 1; got 0",
	}, {
		name: "batching window too long",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, kafka("billing", func(in *lambda.CreateEventSourceMappingInput) {
				in.MaximumBatchingWindowInSeconds = aws.Int32(301)
			}))
			return err
		},
		code: "InvalidParameterValueException", message: "MaximumBatchingWindowInSeconds must be between 0s and 300s",
	}, {
		name: "unknown function",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, kafka("nope", nil))
			return err
		},
		code: "ResourceNotFoundException", message: "Function not found: " + arnFn + "nope",
	}, {
		name: "unknown alias",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, kafka("orders:staging", nil))
			return err
		},
		code: "ResourceNotFoundException", message: "Function not found: " + arnFn + "orders:staging",
	}, {
		name: "other account",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, kafka("arn:aws:lambda:us-east-1:999999999999:function:orders", nil))
			return err
		},
		code: "ResourceNotFoundException",
	}, {
		name: "duplicate",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, kafka("orders", func(in *lambda.CreateEventSourceMappingInput) {
				in.SelfManagedEventSource.Endpoints["KAFKA_BOOTSTRAP_SERVERS"] = []string{"127.0.0.1:9093", "127.0.0.1:9092"}
				in.BatchSize = aws.Int32(7)
			}))
			return err
		},
		code: "ResourceConflictException", message: "existing mapping with UUID " + aws.ToString(first.UUID),
	}, {
		name: "duplicate by update",
		call: func() error {
			other, err := e.client.CreateEventSourceMapping(ctx, kafka("billing", nil))
			if err != nil {
				return err
			}
			_, err = e.client.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: other.UUID, FunctionName: aws.String("orders")})
			return err
		},
		code: "ResourceConflictException", message: "existing mapping with UUID " + aws.ToString(first.UUID),
	}, {
		name: "get unknown uuid",
		call: func() error {
			_, err := e.client.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: aws.String(unknown)})
			return err
		},
		code: "ResourceNotFoundException", message: "The resource you requested does not exist.",
	}, {
		name: "update unknown uuid",
		call: func() error {
			_, err := e.client.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: aws.String(unknown), Enabled: aws.Bool(false)})
			return err
		},
		code: "ResourceNotFoundException",
	}, {
		name: "delete unknown uuid",
		call: func() error {
			_, err := e.client.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: aws.String(unknown)})
			return err
		},
		code: "ResourceNotFoundException",
	}, {
		name: "update spec mapping",
		call: func() error {
			_, err := e.client.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: aws.String(e.declared), Enabled: aws.Bool(false)})
			return err
		},
		code: "ResourceConflictException", message: "declared in the function's spec; change the spec",
	}, {
		name: "delete spec mapping",
		call: func() error {
			_, err := e.client.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: aws.String(e.declared)})
			return err
		},
		code: "ResourceConflictException", message: "declared in the function's spec; change the spec",
	}, {
		name: "unsupported source",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("orders"),
				EventSourceArn: aws.String("arn:aws:sqs:us-east-1:123456789012:queue")})
			return err
		},
		code: "InvalidParameterValueException", message: "redis://host:port[/db]?stream=KEY",
	}, {
		name: "unsupported member",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, kafka("billing", func(in *lambda.CreateEventSourceMappingInput) { in.TumblingWindowInSeconds = aws.Int32(2) }))
			return err
		},
		code: "InvalidParameterValueException", message: "TumblingWindowInSeconds not supported",
	}, {
		name: "parallelization factor above 10",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, kafka("billing", func(in *lambda.CreateEventSourceMappingInput) { in.ParallelizationFactor = aws.Int32(11) }))
			return err
		},
		code: "InvalidParameterValueException", message: "ParallelizationFactor must be between 1 and 10; got 11",
	}, {
		name: "parallelization factor 0",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, kafka("billing", func(in *lambda.CreateEventSourceMappingInput) { in.ParallelizationFactor = aws.Int32(0) }))
			return err
		},
		code: "InvalidParameterValueException", message: "ParallelizationFactor must be between 1 and 10; got 0",
	}, {
		name: "parallelization factor on nats",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("orders"),
				EventSourceArn: aws.String("nats:ORDERS"), ParallelizationFactor: aws.Int32(2)})
			return err
		},
		code: "InvalidParameterValueException", message: "already runs each subject as its own ordered unit",
	}, {
		name: "parallelization factor on rabbitmq",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("orders"),
				EventSourceArn: aws.String("amqp://127.0.0.1:5672/"), Queues: []string{"jobs"}, ParallelizationFactor: aws.Int32(2)})
			return err
		},
		code: "InvalidParameterValueException", message: "ParallelizationFactor applies to Kafka and Redis mappings",
	}, {
		name: "unsupported destination",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, kafka("billing", func(in *lambda.CreateEventSourceMappingInput) {
				in.DestinationConfig = &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("arn:aws:sqs:us-east-1:123456789012:dlq")}}
			}))
			return err
		},
		code: "InvalidParameterValueException", message: "nats:<subject>, kafka:<topic>, function:<name>",
	}, {
		name: "redis without stream",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("orders"),
				EventSourceArn: aws.String("redis://127.0.0.1:6379")})
			return err
		},
		code: "InvalidParameterValueException", message: "?stream=KEY",
	}, {
		name: "rabbitmq without queue",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("orders"),
				EventSourceArn: aws.String("amqp://127.0.0.1:5672/")})
			return err
		},
		code: "InvalidParameterValueException", message: "exactly one queue",
	}, {
		name: "schedule with a batch size",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("orders"),
				EventSourceArn: aws.String("schedule:rate(5 minutes)"), BatchSize: aws.Int32(10)})
			return err
		},
		code: "InvalidParameterValueException", message: `BatchSize is not used by event sources of type "schedule"`,
	}, {
		name: "bad schedule",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("orders"),
				EventSourceArn: aws.String("schedule:rate(5 fortnights)")})
			return err
		},
		code: "InvalidParameterValueException", message: "must be minute(s), hour(s) or day(s)",
	}, {
		name: "AT_TIMESTAMP without a timestamp",
		call: func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, kafka("billing", func(in *lambda.CreateEventSourceMappingInput) {
				in.StartingPosition = types.EventSourcePositionAtTimestamp
			}))
			return err
		},
		code: "InvalidParameterValueException", message: "needs StartingPositionTimestamp",
	}, {
		name: "update to a bad retry count",
		call: func() error {
			_, err := e.client.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: first.UUID, MaximumRetryAttempts: aws.Int32(-5)})
			return err
		},
		code: "InvalidParameterValueException", message: "MaximumRetryAttempts must be -1",
	}, {
		name: "list with a bad page size",
		call: func() error {
			_, err := e.client.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{MaxItems: aws.Int32(0)})
			return err
		},
		code: "InvalidParameterValueException", message: "maxItems",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatalf("no error, want %s", tc.code)
			}
			if got := errCode(err); got != tc.code {
				t.Fatalf("error code %q, want %q (%v)", got, tc.code, err)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not say %q", err, tc.message)
			}
			// Typed errors, as callers of the SDK check them.
			switch tc.code {
			case "InvalidParameterValueException":
				var te *types.InvalidParameterValueException
				if !errors.As(err, &te) || aws.ToString(te.Type) != "User" {
					t.Errorf("not a *types.InvalidParameterValueException of Type User: %T", err)
				}
			case "ResourceNotFoundException":
				var te *types.ResourceNotFoundException
				if !errors.As(err, &te) {
					t.Errorf("not a *types.ResourceNotFoundException: %T", err)
				}
			case "ResourceConflictException":
				var te *types.ResourceConflictException
				if !errors.As(err, &te) {
					t.Errorf("not a *types.ResourceConflictException: %T", err)
				}
			}
		})
	}
	// A refused update leaves the mapping as it was.
	m, err := e.store.Get(ctx, aws.ToString(first.UUID))
	if err != nil {
		t.Fatal(err)
	}
	if *m.Spec.MaximumRetryAttempts != -1 || m.Function != "orders" {
		t.Errorf("refused update changed the mapping: %s %s", m.Function, js(m.Spec))
	}
}

// TestStateFromEngine runs a real sources.Manager over the API's Lister:
// states move from Creating to the engine's, and to Updating until the
// engine runs the new settings.
func TestStateFromEngine(t *testing.T) {
	var mgr *sources.Manager
	e := newEnv(t, func(o *esmapi.Options) {
		o.Status = statusFunc(func(id string) (sources.Status, bool) { return mgr.Status(id) })
	})
	mgr = sources.NewManager(sources.Deps{Mappings: &esmapi.Lister{Specs: e.specMappings, Store: e.store}, Logger: gatewaytest.Logger(t)},
		sources.Options{})
	ctx := context.Background()

	out, err := e.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("orders"),
		EventSourceArn: aws.String("nats:ORDERS")})
	if err != nil {
		t.Fatal(err)
	}
	state := func(id *string) (string, string) {
		t.Helper()
		got, err := e.client.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: id})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(got.State), aws.ToString(got.LastProcessingResult)
	}
	if s, _ := state(out.UUID); s != "Creating" {
		t.Errorf("before the engine saw it: %q, want Creating", s)
	}
	if s, _ := state(aws.String(e.declared)); s != "Creating" {
		t.Errorf("spec mapping before the engine saw it: %q, want Creating", s)
	}
	// No openers are registered, so the engine records why it cannot run.
	mgr.Reconcile(ctx)
	s, res := state(out.UUID)
	if s != "Enabled" || !strings.HasPrefix(res, "PROBLEM: ") || !strings.Contains(res, "not supported by this gateway") {
		t.Errorf("after reconcile: %q %q", s, res)
	}
	if s, _ := state(aws.String(e.declared)); s != "Enabled" {
		t.Errorf("spec mapping after reconcile: %q", s)
	}
	if _, err := e.client.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: out.UUID, Enabled: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	if s, _ := state(out.UUID); s != "Updating" {
		t.Errorf("before the engine saw the update: %q, want Updating", s)
	}
	mgr.Reconcile(ctx)
	if s, _ := state(out.UUID); s != "Disabled" {
		t.Errorf("after reconcile: %q, want Disabled", s)
	}
	l, err := e.client.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String("orders")})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.EventSourceMappings) != 1 || aws.ToString(l.EventSourceMappings[0].State) != "Disabled" {
		t.Errorf("list shows %s", js(l.EventSourceMappings))
	}
	if _, err := e.client.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: out.UUID}); err != nil {
		t.Fatal(err)
	}
	mgr.Reconcile(ctx)
	if _, ok := mgr.Status(aws.ToString(out.UUID)); ok {
		t.Errorf("engine still knows the deleted mapping")
	}
}

type statusFunc func(string) (sources.Status, bool)

func (f statusFunc) Status(id string) (sources.Status, bool) { return f(id) }

// TestAuthorize: a SigV4 failure keeps its code and status, other errors
// are AccessDeniedException, and nothing is created by a refused request.
func TestAuthorize(t *testing.T) {
	verifier := &sigv4.Verifier{Keys: map[string]string{"AKIDGOOD": "good-secret"}, Region: region}
	e := newEnv(t, func(o *esmapi.Options) {
		o.Authorize = func(r *http.Request, body []byte) error {
			if r.Header.Get("X-Test-Deny") != "" {
				return errors.New("user may not manage mappings")
			}
			_, err := verifier.Verify(r, body)
			return err
		}
	})
	ctx := context.Background()
	in := &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("orders"), EventSourceArn: aws.String("nats:ORDERS")}
	_, err := e.newClient("AKIDGOOD", "wrong-secret").CreateEventSourceMapping(ctx, in)
	if got := errCode(err); got != sigv4.CodeInvalidSignature {
		t.Errorf("wrong secret: %q (%v)", got, err)
	}
	good := e.newClient("AKIDGOOD", "good-secret")
	out, err := good.CreateEventSourceMapping(ctx, in)
	if err != nil {
		t.Fatalf("signed request: %v", err)
	}
	if _, err := good.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: out.UUID}); err != nil {
		t.Errorf("signed get: %v", err)
	}

	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+esmapi.Path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Errortype") != sigv4.CodeMissingToken {
		t.Errorf("unsigned: %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
	}
	req.Header.Set("X-Test-Deny", "1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Errortype") != "AccessDeniedException" ||
		body["Type"] != "User" || body["Message"] != "user may not manage mappings" {
		t.Errorf("denied: %d %q %v", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), body)
	}
	ms, err := e.store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].UUID != aws.ToString(out.UUID) {
		t.Errorf("store holds %d mappings, want only the signed one", len(ms))
	}
}

// TestWire checks the raw HTTP: both path spellings, the status codes and
// the JSON types the SDK relies on.
func TestWire(t *testing.T) {
	e := newEnv(t, nil)
	do := func(method, path, body string) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s %s: body %q is not a JSON object", method, path, b)
		}
		if resp.Header.Get("X-Amzn-Requestid") == "" {
			t.Errorf("%s %s: no X-Amzn-Requestid", method, path)
		}
		return resp, v
	}
	resp, v := do(http.MethodPost, esmapi.Path+"/", `{"FunctionName":"orders","EventSourceArn":"redis://127.0.0.1:6379?stream=s",`+
		`"StartingPosition":"AT_TIMESTAMP","StartingPositionTimestamp":1767366245}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d %v", resp.StatusCode, v)
	}
	id, _ := v["UUID"].(string)
	if ts, ok := v["StartingPositionTimestamp"].(float64); !ok || ts != 1767366245 {
		t.Errorf("StartingPositionTimestamp = %#v, want the number 1767366245", v["StartingPositionTimestamp"])
	}
	if lm, ok := v["LastModified"].(float64); !ok || lm < 1.7e9 {
		t.Errorf("LastModified = %#v, want epoch seconds", v["LastModified"])
	}
	for _, p := range []string{esmapi.Path, esmapi.Path + "/"} {
		resp, v := do(http.MethodGet, p, "")
		if l, _ := v["EventSourceMappings"].([]any); resp.StatusCode != http.StatusOK || len(l) != 2 {
			t.Errorf("GET %s: %d %v", p, resp.StatusCode, v)
		}
	}
	for _, p := range []string{esmapi.Path + "/" + id, esmapi.Path + "/" + id + "/"} {
		if resp, v := do(http.MethodGet, p, ""); resp.StatusCode != http.StatusOK || v["UUID"] != id {
			t.Errorf("GET %s: %d %v", p, resp.StatusCode, v)
		}
	}
	if resp, v := do(http.MethodPut, esmapi.Path+"/"+id+"/", `{"BatchSize":20}`); resp.StatusCode != http.StatusAccepted || v["BatchSize"] != 20.0 {
		t.Errorf("PUT: %d %v", resp.StatusCode, v)
	}
	resp, v = do(http.MethodPost, esmapi.Path, `{"FunctionName":"orders","EventSourceArn":"nats:X","BatchSize":0}`)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-Amzn-Errortype") != "InvalidParameterValueException" ||
		v["Type"] != "User" || v["Message"] != "BatchSize must be at least 1; got 0" {
		t.Errorf("bad batch size: %d %q %v", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), v)
	}
	if resp, v := do(http.MethodPost, esmapi.Path, `{"FunctionName":`); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-Amzn-Errortype") != "InvalidRequestContentException" {
		t.Errorf("bad JSON: %d %v", resp.StatusCode, v)
	}
	if resp, _ := do(http.MethodPatch, esmapi.Path+"/"+id, ""); resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Amzn-Errortype") != "UnknownOperationException" {
		t.Errorf("PATCH: %d", resp.StatusCode)
	}
	if resp, _ := do(http.MethodDelete, esmapi.Path+"/"+id, ""); resp.StatusCode != http.StatusAccepted {
		t.Errorf("DELETE: %d", resp.StatusCode)
	}
}

func (e *env) listAll(t *testing.T, in *lambda.ListEventSourceMappingsInput) []string {
	t.Helper()
	out, err := e.client.ListEventSourceMappings(context.Background(), in)
	if err != nil {
		t.Fatalf("ListEventSourceMappings: %v", err)
	}
	if out.NextMarker != nil {
		t.Fatalf("unexpected NextMarker %q", *out.NextMarker)
	}
	ids := []string{}
	for _, m := range out.EventSourceMappings {
		ids = append(ids, aws.ToString(m.UUID))
	}
	return ids
}

func uuids(m map[string]*lambda.CreateEventSourceMappingOutput) []string {
	var out []string
	for _, c := range m {
		out = append(out, aws.ToString(c.UUID))
	}
	return out
}

func indexOf(ms []sources.Mapping, id string) int {
	for i, m := range ms {
		if m.UUID == id {
			return i
		}
	}
	return -1
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
