package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/console"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/natsembed"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/specs"
)

func getWith(t *testing.T, c *http.Client, url string, cookie *http.Cookie) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// Dev mode without access keys: the console needs no login and its data
// endpoints answer unsigned requests.
func TestConsoleInDevModeWithoutKeys(t *testing.T) {
	cfg := &config.Config{Listen: "127.0.0.1:0", Dev: true, ColdStartWait: "50ms", Queue: &queue.Config{DataDir: t.TempDir()}}
	s := startServer(t, cfg, gatewaytest.NewSource(), &specs.Function{Name: "fn", EnvironmentsPerInstance: 1})
	base := "http://" + s.Addr()
	c := &http.Client{Timeout: 20 * time.Second}
	resp, b := getWith(t, c, base+console.SessionPath, nil)
	var info console.SessionInfo
	_ = json.Unmarshal(b, &info)
	if resp.StatusCode != 200 || info.AuthRequired || info.Mode != "dev" || info.Scope != "admin" {
		t.Fatalf("session: %d %s", resp.StatusCode, b)
	}
	for _, p := range []string{console.MetricsSummaryPath, console.MetricsHistoryPath + "?function=fn", "/nimbus/v1/functions/fn/logs", console.BlueprintsPath, "/2015-03-31/functions"} {
		if resp, b := getWith(t, c, base+p, nil); resp.StatusCode != 200 {
			t.Errorf("%s without keys: %d %s", p, resp.StatusCode, b)
		}
	}
	if resp, b := getWith(t, c, base+"/console/", nil); resp.StatusCode != 200 || !bytes.Contains(b, []byte("<html")) ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("console page: %d %v", resp.StatusCode, resp.Header)
	}
}

// An invoke-scope key's session reads metrics but not logs, and cannot
// manage functions: a session is exactly its key.
func TestConsoleSessionKeepsTheKeysScope(t *testing.T) {
	cfg := &config.Config{
		Listen: "127.0.0.1:0", InvokeKey: "0123456789abcdef-scope", ColdStartWait: "50ms",
		AccessKeys: []config.AccessKey{{ID: "AKIDINV", Secret: "inv-secret", Scope: config.ScopeInvoke}},
		Queue:      &queue.Config{DataDir: t.TempDir()},
	}
	s := startServer(t, cfg, gatewaytest.NewSource(), &specs.Function{Name: "fn", EnvironmentsPerInstance: 1})
	base := "http://" + s.Addr()
	c := &http.Client{Timeout: 20 * time.Second}
	cookie, csrf := consoleLogin(t, c, base, "AKIDINV", "inv-secret")
	if resp, b := getWith(t, c, base+console.MetricsSummaryPath, cookie); resp.StatusCode != 200 {
		t.Errorf("metrics with an invoke key's session: %d %s", resp.StatusCode, b)
	}
	if resp, b := getWith(t, c, base+"/nimbus/v1/functions/fn/logs", cookie); resp.StatusCode != 403 || resp.Header.Get("X-Amzn-Errortype") != "AccessDeniedException" {
		t.Errorf("logs with an invoke key's session: %d %s", resp.StatusCode, b)
	}
	req, _ := http.NewRequest(http.MethodPut, base+"/2015-03-31/functions/fn/configuration", strings.NewReader(`{"MemorySize":256}`))
	req.AddCookie(cookie)
	req.Header.Set(console.CSRFHeader, csrf)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(b), "may only invoke") {
		t.Errorf("UpdateFunctionConfiguration with an invoke key's session: %d %s", resp.StatusCode, b)
	}
}

// Gateways sharing an external NATS share console sessions: a login on
// one is good on the other, and a logout on either ends it on both.
func TestConsoleSessionsAreSharedBetweenGateways(t *testing.T) {
	nsrv, err := natsembed.Start(natsembed.Config{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nsrv.Shutdown)
	gw := func() string {
		cfg := &config.Config{
			Listen: "127.0.0.1:0", InvokeKey: "0123456789abcdef-shared", ColdStartWait: "50ms",
			AccessKeys: []config.AccessKey{{ID: "AKIDSHARED", Secret: "shared-secret"}},
			Queue:      &queue.Config{URL: nsrv.ClientURL()},
		}
		s := startServer(t, cfg, gatewaytest.NewSource(), &specs.Function{Name: "fn", EnvironmentsPerInstance: 1})
		return "http://" + s.Addr()
	}
	a, b := gw(), gw()
	c := &http.Client{Timeout: 20 * time.Second}
	cookie, csrf := consoleLogin(t, c, a, "AKIDSHARED", "shared-secret")
	if resp, body := getWith(t, c, b+"/2015-03-31/functions", cookie); resp.StatusCode != 200 {
		t.Fatalf("ListFunctions on the other gateway with the session: %d %s", resp.StatusCode, body)
	}
	resp, body := getWith(t, c, b+console.SessionPath, cookie)
	var info console.SessionInfo
	_ = json.Unmarshal(body, &info)
	if resp.StatusCode != 200 || !info.Authenticated || info.CSRFToken != csrf || info.AccessKeyID != "AKIDSHARED" {
		t.Fatalf("session on the other gateway: %d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodPost, b+console.LogoutPath, nil)
	req.AddCookie(cookie)
	req.Header.Set(console.CSRFHeader, csrf)
	out, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	if out.StatusCode != 204 {
		t.Fatalf("logout on the other gateway: %d", out.StatusCode)
	}
	if resp, body := getWith(t, c, a+"/2015-03-31/functions", cookie); resp.StatusCode != 403 {
		t.Errorf("the first gateway after a logout on the other: %d %s", resp.StatusCode, body)
	}
}
