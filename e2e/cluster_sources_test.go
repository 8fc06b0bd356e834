package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goredis "github.com/redis/go-redis/v9"

	"github.com/nimbus-fn/nimbus/gateway/cluster"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/internal/redistest"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/specs"
)

// TestClusterGatewayRunsEventSources: a function job whose spec (in the
// job's meta, as `nimbus deploy` registers it) declares a Redis event
// source. The cluster gateway — Nomad double, real Consul, real Redis —
// starts the mapping from the Nomad catalog, the first batch scales the
// function from zero through Nomad's scale API, and once "Nomad" places
// the instance every record is processed and checkpointed.
func TestClusterGatewayRunsEventSources(t *testing.T) {
	url := redistest.Start(t)
	codeDir := clusterBuildHelloGo(t) // before the Chdir below
	fn := clusterHelloSpec(t)
	es := &specs.EventSource{Name: "orders", Type: specs.SourceRedis, Enabled: true, URL: url, Stream: "orders",
		StartingFrom: "TRIM_HORIZON", BatchSize: 5}
	if err := specs.CheckEventSource(fn.Name, es); err != nil {
		t.Fatal(err)
	}
	fn.EventSources = append(fn.EventSources, es)
	job := clusterJob(t, fn)
	fake := newClusterNomad(t, job)
	agent := consultest.Start(t)
	cc := agent.Client(t)
	logger := hclog.New(&hclog.LoggerOptions{Name: "e2e-cluster-sources", Level: hclog.Warn, Output: &clusterLogs{}})

	cfgPath := filepath.Join(t.TempDir(), "gateway.hcl")
	clusterWriteFile(t, cfgPath, `
listen          = "127.0.0.1:0"
region          = "`+e2eRegion+`"
account_id      = "`+e2eAccount+`"
invoke_key      = "`+e2eInvokeKey+`"
cold_start_wait = "60s"
discovery       = "consul"
access_key "`+e2eAccessKey+`" {
  secret = "`+e2eSecretKey+`"
}
consul {
  check_interval = "1s"
}
`)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NOMAD_ADDR": fake.srv.URL, "NOMAD_TOKEN": clusterNomadToken, "CONSUL_HTTP_ADDR": agent.HTTPAddr}
	cfg.Environment(func(k string) string { return env[k] })
	t.Chdir(t.TempDir())
	gw := serveClusterGateway(t, cfg, cluster.Options{ServiceName: jobs.ServiceName}, logger, fastSources)
	srv := gw.srv

	opt, _ := goredis.ParseURL(url)
	rc := goredis.NewClient(opt)
	defer rc.Close()
	for _, p := range orderPayloads("c", 7) {
		if err := rc.XAdd(context.Background(), &goredis.XAddArgs{Stream: "orders", Values: map[string]any{"data": p}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	g := &gateway{srv: srv, base: "http://" + srv.Addr()}
	// The first batch parks in the router and asks Nomad for an instance.
	eventually(t, 30*time.Second, func() bool {
		for _, r := range fake.scaleRequests() {
			if r.Target["Group"] == jobs.GroupOnDemand && r.Count != nil && *r.Count >= 1 {
				return true
			}
		}
		return false
	}, "the mapping's first batch to scale the function from zero")
	alloc := clusterPlacer(t, cc, job, codeDir)(jobs.GroupOnDemand, "esm1")
	defer alloc.stop(t)
	eventually(t, 60*time.Second, func() bool {
		st := statusOf(t, g, clusterFn)
		return len(st) == 1 && st[0].RecordsDone == 7 && st[0].LastProcessingResult == sources.ResultOK
	}, "every record processed on the cluster")
	st := statusOf(t, g, clusterFn)
	if st[0].UUID != sources.SpecUUID(clusterFn, "orders") || st[0].Origin != sources.OriginSpec {
		t.Fatalf("mapping %+v", st[0].Mapping)
	}
	eventually(t, 10*time.Second, func() bool {
		p, err := rc.XPending(context.Background(), "orders", specs.DefaultGroup(clusterFn, "orders")).Result()
		return err == nil && p.Count == 0
	}, "every entry acknowledged")
}
