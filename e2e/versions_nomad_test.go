package e2e

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/gateway/artifacts/artifactstest"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/internal/nomadtest"
	"github.com/nimbus-fn/nimbus/internal/testfn"
	"github.com/nimbus-fn/nimbus/jobs"
)

// With NOMAD_BINARY: deploy, layer publish, publish, alias and version
// delete through the real nimbus CLI against `nomad agent -dev` (jobs and
// Variables are Nomad's own), with the bundles in a real artifact store.
// The nimbus driver is not installed in that agent, so nothing is placed.
func TestVersionsWithNomadAgent(t *testing.T) {
	agent := nomadtest.Start(t, nomadtest.Options{
		SkipMessage: "NOMAD_BINARY is not set: skipping publish/alias against a real Nomad agent",
	})
	addr, client := agent.Addr, agent.Client(t)
	store := artifactstest.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gw := httptest.NewServer(artifacts.NewHandler(store, nil))
	defer gw.Close()

	boot, err := os.ReadFile(filepath.Join(testfn.Dir(t, "echo"), "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"nimbus.hcl": "function \"echo\" {\n  runtime = \"provided.al2023\"\n  code {\n    dir = \"src\"\n  }\n  layers = [\"deps\"]\n  alias \"live\" {\n    version = \"1\"\n  }\n}\n\n" +
			"layer \"deps\" {\n  code {\n    dir = \"deps\"\n  }\n}\n",
		"src/bootstrap":  string(boot),
		"deps/lib/x.txt": "layer",
	})
	mustChmod(t, filepath.Join(dir, "src", "bootstrap"))
	nimbus := nimbusOnce(t)
	run := func(wantOK bool, args ...string) string {
		t.Helper()
		cmd := exec.Command(nimbus, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "NOMAD_ADDR="+addr, "NIMBUS_ENDPOINT="+gw.URL, "NIMBUS_SECRET_KEY=e2e-versions-key")
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("nimbus %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	run(true, "deploy", "--nomad", "--bundle-dir", filepath.Join(dir, ".b"), ".")
	run(true, "layer", "publish", "--nomad", "deps")
	if out := run(true, "publish", "--nomad", "echo"); !strings.Contains(out, "published echo version 1") || !strings.Contains(out, "alias live -> 1") {
		t.Fatal(out)
	}
	if out := run(true, "publish", "--nomad", "echo"); !strings.Contains(out, "unchanged since version 1") {
		t.Fatal(out)
	}
	writeTree(t, dir, map[string]string{"src/extra.txt": "v2"})
	run(true, "deploy", "--nomad", "--bundle-dir", filepath.Join(dir, ".b"), ".")
	if out := run(true, "publish", "--nomad", "echo"); !strings.Contains(out, "published echo version 2") {
		t.Fatal(out)
	}
	for _, n := range []string{"1", "2"} {
		job, _, err := client.Jobs().Info("nimbus-echo-"+n, nil)
		if err != nil {
			t.Fatalf("job of version %s: %v", n, err)
		}
		if job.Meta[jobs.MetaVersion] != n {
			t.Fatalf("job nimbus-echo-%s meta %v", n, job.Meta)
		}
	}
	run(true, "alias", "set", "--nomad", "echo", "live", "1", "--weight", "2=0.3")

	// A gateway's view: the Variables as Nomad returns them, read-only.
	vars := map[string]map[string]string{}
	list, _, err := client.Variables().PrefixList(versions.Prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list {
		items, _, err := client.Variables().GetVariableItems(m.Path, nil)
		if err != nil {
			t.Fatal(err)
		}
		vars[m.Path] = items
	}
	view := versions.New(versions.NewReadOnly(func() map[string]map[string]string { return vars }), nil)
	live, err := view.Alias(ctx, "echo", "live")
	if err != nil || live.Version != "1" || live.Routing["2"] != 0.3 {
		t.Fatalf("alias from Nomad Variables: %+v %v", live, err)
	}

	if out := run(false, "versions", "delete", "--nomad", "echo", "2"); !strings.Contains(out, "alias live routes to it") {
		t.Fatal(out)
	}
	run(true, "alias", "set", "--nomad", "echo", "live", "2")
	run(true, "versions", "delete", "--nomad", "echo", "1")
	if _, _, err := client.Jobs().Info("nimbus-echo-1", nil); err == nil {
		t.Fatal("job of deleted version 1 still registered")
	}
	if out := run(true, "versions", "--nomad", "echo"); strings.Contains(out, "\n1 ") || !strings.Contains(out, "live") {
		t.Fatalf("versions:\n%s", out)
	}
}
