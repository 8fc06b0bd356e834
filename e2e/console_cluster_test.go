package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/console"
	"github.com/nimbus-fn/nimbus/gateway/natsembed"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// consoleSession logs in to a gateway's console and answers the session
// cookie and its CSRF token.
func consoleSession(t *testing.T, base string) (*http.Cookie, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"accessKeyId": e2eAccessKey, "secretAccessKey": e2eSecretKey})
	resp, err := http.Post(base+console.LoginPath, "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info console.SessionInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("console login: %d %v", resp.StatusCode, err)
	}
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName {
			if c.Path != console.CookiePath || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("session cookie %+v: want Path=%s, HttpOnly, SameSite=Strict", c, console.CookiePath)
			}
			return c, info.CSRFToken
		}
	}
	t.Fatal("no session cookie")
	return nil, ""
}

// consoleGet reads a gateway route through the console's mount with a
// session, as the console in a browser does.
func consoleGet(t *testing.T, base, path string, c *http.Cookie, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+console.GatewayPrefix+path, nil)
	req.AddCookie(c)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return resp.StatusCode
}

// Item 3 of the console's follow-up: with two gateways on one NATS, the
// console on either shows the function's totals over both (each records
// only what it served), in the graph's history and in the list's summary.
func TestConsoleHistoryAcrossGateways(t *testing.T) {
	nsrv, err := natsembed.Start(natsembed.Config{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nsrv.Shutdown)
	spec := `
function "echo" {
  runtime = "provided.al2023"
  code { dir = "` + testfn.Dir(t, "echo") + `" }
  url { auth = "NONE" }
}
`
	shared := func(c *config.Config) { c.Queue = &queue.Config{URL: nsrv.ClientURL()} }
	a := startGateway(t, spec, shared)
	b := startGateway(t, spec, shared)
	ctx := context.Background()
	for i, g := range []*gateway{a, a, b, b, b} {
		if _, err := lambdaFor(g).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"n":1}`)}); err != nil {
			t.Fatalf("invoke %d: %v", i, err)
		}
	}
	cookie, _ := consoleSession(t, a.base)
	sum := func(s console.Series) (n int64) {
		for _, p := range s.Points {
			n += p.Invocations
		}
		return n
	}
	var s console.Series
	eventually(t, 30*time.Second, func() bool {
		code := consoleGet(t, a.base, "/nimbus/v1/metrics/history?function=echo&window=15m", cookie, &s)
		return code == http.StatusOK && s.Gateways == 2 && sum(s) == 5
	}, "gateway a's console to show 5 invocations over 2 gateways")
	var local console.Series
	consoleGet(t, a.base, "/nimbus/v1/metrics/history?function=echo&window=15m&scope=local", cookie, &local)
	if local.Gateways != 1 || sum(local) != 2 {
		t.Errorf("a's own history: %d gateways, %d invocations, want 1 and 2", local.Gateways, sum(local))
	}
	var summary struct {
		Functions map[string]console.Totals `json:"functions"`
		Gateways  int                       `json:"gateways"`
	}
	consoleGet(t, b.base, "/nimbus/v1/metrics/summary?window=1h", cookieFor(t, b.base), &summary)
	if summary.Gateways != 2 || summary.Functions["echo"].Invocations != 5 {
		t.Errorf("gateway b's summary: %+v, want 5 invocations over 2 gateways", summary)
	}
	t.Logf("history merged over %d gateways: %d invocations (a served %d)", s.Gateways, sum(s), sum(local))

	// A path-based function URL shares the console's origin: on a
	// gateway with keys its answers run sandboxed.
	resp, err := http.Get(a.base + "/url/echo/page")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") || strings.Contains(csp, "allow-same-origin") {
		t.Errorf("path-based function URL answered CSP %q, want a sandbox without allow-same-origin", csp)
	}
}

func cookieFor(t *testing.T, base string) *http.Cookie {
	c, _ := consoleSession(t, base)
	return c
}
