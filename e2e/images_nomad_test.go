package e2e

// An image function under a real Nomad agent (NOMAD_BINARY) with our
// driver: the image is built by `nimbus build --image` from a real
// aws-lambda-go function and pushed to a loopback registry, its tag is
// resolved as deploy resolves it, the function is compiled by jobs.Compile
// (no code artifact, the pinned digest in the task config) and registered;
// the driver pulls the image and the function answers an invoke.

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/nomadplugin/plugintest"
	"github.com/nimbus-fn/nimbus/driver/oci"
	"github.com/nimbus-fn/nimbus/gateway/images"
	"github.com/nimbus-fn/nimbus/internal/nomadtest"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/specs"
)

func TestNomadRunsImageFunction(t *testing.T) {
	nomadtest.Binary(t, "NOMAD_BINARY is not set: skipping the real-Nomad image function test")
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	tag := host + "/team/echo:v1"
	pinned := pushFunctionImage(t, "echo", tag)

	fn := &specs.Function{Name: "imgecho", Code: &specs.Code{Image: tag}, MemoryMB: 128, Timeout: "5s", EphemeralStorageMB: 512, EnvironmentsPerInstance: 1}
	resolved, err := images.NewResolver(oci.DockerConfig(os.Getenv)).Resolve(context.Background(), tag)
	if err != nil || resolved != pinned {
		t.Fatalf("resolving %s: %q, %v; want %s", tag, resolved, err, pinned)
	}
	fn.Code.ResolvedImage = resolved
	job, err := jobs.Compile(fn, jobs.Options{ServiceProvider: jobs.ProviderNomad})
	if err != nil {
		t.Fatal(err)
	}
	// The gateway raises the on-demand group on demand; here by hand.
	one := 1
	for _, tg := range job.TaskGroups {
		if *tg.Name == jobs.GroupOnDemand {
			tg.Count = &one
		}
	}

	agent := nomadtest.StartWithDriver(t, plugintest.BuildDriver(t), "", "nimbus-e2e-image-")
	client := agent.Client(t)
	key := []byte("e2e-image-key")
	v, err := jobs.InvokeVariable(job, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.Variables().Create(v, nil); err != nil {
		t.Fatalf("writing the job's invoke secret variable: %v", err)
	}
	if _, _, err := client.Jobs().Register(job, nil); err != nil {
		t.Fatalf("registering the compiled image job: %v", err)
	}
	t.Cleanup(func() { _, _, _ = client.Jobs().Deregister(*job.ID, true, nil) })
	drvWaitAlloc(t, client, *job.ID, "running")
	addr := drvServiceAddr(t, client, jobs.ServiceName(fn.Name))
	drvInvoke(t, addr, invokeapi.DeriveSecret(key, fn.Name, jobs.LatestVersion), `{"from":"nomad"}`)
}
