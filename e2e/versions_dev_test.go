package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/jobs/submit/submittest"
)

// With `nimbus dev` running on a directory, the CLI works against it the
// way a developer uses it: nimbus publish, nimbus alias set --weight and
// nimbus invoke fn:alias, which reports the version that ran (a real
// Python function answers with the version it was launched as).
func TestNimbusDevPublishAliasInvoke(t *testing.T) {
	g := startVersionsGateway(t, map[string]string{"nimbus.hcl": versionedSpec, "src/app.py": appPy("one")})
	if out := g.mustCLI(t, "publish", "hello"); !strings.Contains(out, "published hello version 1") || !strings.Contains(out, "alias live -> 1") {
		t.Fatalf("publish 1: %s", out)
	}
	writeTree(t, g.specDir, map[string]string{"src/app.py": appPy("two")})
	if out := g.mustCLI(t, "publish", "hello"); !strings.Contains(out, "published hello version 2") {
		t.Fatalf("publish 2: %s", out)
	}
	g.awaitQualifier(t, "hello", "2", true)

	// invoke runs `nimbus invoke QUALIFIED` and returns the version the CLI
	// reported, after checking the function ran that version's code.
	executedRE := regexp.MustCompile(`(?m)^executed version (\S+)$`)
	invoke := func(name string) string {
		t.Helper()
		out := g.mustCLI(t, "invoke", name)
		m := executedRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("nimbus invoke %s reported no executed version:\n%s", name, out)
		}
		tag := map[string]string{"1": "one", "2": "two"}[m[1]]
		if tag == "" || !strings.Contains(out, `"tag": "`+tag+`"`) || !strings.Contains(out, `"version": "`+m[1]+`"`) {
			t.Fatalf("nimbus invoke %s: executed version %s, but the function answered:\n%s", name, m[1], out)
		}
		return m[1]
	}
	if v := invoke("hello:live"); v != "1" {
		t.Fatalf("hello:live ran %s, the spec's alias says 1", v)
	}
	if v := invoke("hello:2"); v != "2" {
		t.Fatalf("hello:2 ran %s", v)
	}
	if out := g.mustCLI(t, "alias", "set", "hello", "live", "1", "--weight", "2=0.5"); !strings.Contains(out, "live") {
		t.Fatalf("alias set: %s", out)
	}
	// Half the calls now run version 2; until nimbus dev reloads the store
	// (about a second) every call runs 1. Both must show up.
	seen := map[string]int{}
	eventually(t, 30*time.Second, func() bool {
		seen[invoke("hello:live")]++
		return seen["1"] > 0 && seen["2"] > 0
	}, "hello:live runs both versions after the weighted alias is set")
	t.Logf("hello:live with 2@0.5: %v", seen)
}

// nimbus deploy --endpoint <dev gateway> uploads the code bundles to the
// dev gateway's artifact store (SigV4-checked: the gateway has keys), then
// registers jobs whose artifact URLs the gateway serves.
func TestNimbusDevServesDeployedBundles(t *testing.T) {
	g := startVersionsGateway(t, map[string]string{"nimbus.hcl": versionedSpec, "src/app.py": appPy("one")})
	nomad := submittest.New(t)
	env := []string{"NOMAD_ADDR=" + nomad.URL, "NIMBUS_SECRET_KEY=" + e2eInvokeKey}
	bundles := filepath.Join(t.TempDir(), "bundles")

	out, err := g.cliEnv(t, append(env, "AWS_SECRET_ACCESS_KEY=wrong"), "deploy", "--nomad", "--endpoint", g.base, "--bundle-dir", bundles, ".")
	if err == nil || !strings.Contains(out, "AccessDenied") {
		t.Fatalf("deploy signed with a wrong key: %v\n%s", err, out)
	}
	if nomad.Job("default", "nimbus-hello") != nil {
		t.Fatal("a job was registered although its bundle was refused")
	}
	out, err = g.cliEnv(t, env, "deploy", "--nomad", "--endpoint", g.base, "--bundle-dir", bundles, ".")
	if err != nil || !strings.Contains(out, " uploaded (") {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	job := nomad.Job("default", "nimbus-hello")
	if job == nil {
		t.Fatalf("no job registered:\n%s", out)
	}
	art := jobs.Bundles(job.TaskGroups[0].Tasks[0])[0]
	sum := strings.TrimPrefix(art.Checksum, "sha256:")
	if want := g.base + artifacts.Path + sum + ".zip"; art.Source != want {
		t.Fatalf("the job fetches %s, want %s", art.Source, want)
	}
	// What the driver's bundle cache does on a client: an unsigned GET.
	resp := mustDo(t, mustRequest(http.MethodGet, art.Source))
	got := sha256.Sum256(resp.body)
	if resp.StatusCode != 200 || hex.EncodeToString(got[:]) != sum || resp.Header.Get(artifacts.HeaderSHA256) != sum {
		t.Fatalf("GET %s: %d, %d bytes hashing to %x", art.Source, resp.StatusCode, len(resp.body), got)
	}
	r := mustRequest(http.MethodGet, art.Source)
	r.Header.Set("Range", "bytes=0-9")
	if part := mustDo(t, r); part.StatusCode != http.StatusPartialContent || string(part.body) != string(resp.body[:10]) {
		t.Fatalf("ranged GET: %d %q", part.StatusCode, part.body)
	}
	out, err = g.cliEnv(t, env, "deploy", "--nomad", "--endpoint", g.base, "--bundle-dir", bundles, ".")
	if err != nil || !strings.Contains(out, "already stored") {
		t.Fatalf("second deploy should find the bundle stored: %v\n%s", err, out)
	}
}
