package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/uuid"

	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/specs"
)

// Item 4 of issue 11: in cluster mode (access keys configured) every
// route the gateway lists refuses an unsigned request with 401/403 in
// Lambda's error shape, except /metrics, /nimbus/health and artifact
// downloads (Nomad clients fetch those by content hash); a signed request
// reaches every listed route, so the list is the real route table.
func TestEveryRouteRefusesUnsignedRequests(t *testing.T) {
	const akid, secret = "AKIDROUTES", "routes-secret"
	cfg := &config.Config{
		Listen: "127.0.0.1:0", InvokeKey: "0123456789abcdef-routes", ColdStartWait: "50ms",
		AccessKeys: []config.AccessKey{{ID: akid, Secret: secret}},
		Queue:      &queue.Config{DataDir: t.TempDir()},
	}
	s := startServer(t, cfg, gatewaytest.NewSource(),
		&specs.Function{Name: "fn", EnvironmentsPerInstance: 1, URL: &specs.URLConfig{Auth: "AWS_IAM", InvokeMode: "BUFFERED"}},
		&specs.Function{Name: "pub", EnvironmentsPerInstance: 1, URL: &specs.URLConfig{Auth: "NONE", InvokeMode: "BUFFERED"}})
	base := "http://" + s.Addr()
	client := &http.Client{Timeout: 20 * time.Second}
	send := func(method, url, host string, signed bool) (*http.Response, []byte) {
		t.Helper()
		var body []byte
		if method == http.MethodPost || method == http.MethodPut {
			body = []byte(`{}`)
		}
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		if signed {
			sum := sha256.Sum256(body)
			creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}
			if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	fill := strings.NewReplacer("{FunctionName}", "fn", "{RequestId}", uuid.NewString(), "{Sha256}", strings.Repeat("a", 64))

	var open []string
	routes := s.Routes()
	if len(routes) < 10 {
		t.Fatalf("only %d routes listed: %+v", len(routes), routes)
	}
	for _, rt := range routes {
		if rt.Open {
			open = append(open, rt.Name)
		}
		methods := rt.Methods
		if methods == nil {
			methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete}
		}
		for _, m := range methods {
			url := base + fill.Replace(rt.Path)
			resp, b := send(m, url, "", false)
			if rt.Open {
				if resp.StatusCode == 401 || resp.StatusCode == 403 {
					t.Errorf("open route %s: %s %s refused: %d %s", rt.Name, m, rt.Path, resp.StatusCode, b)
				}
				continue
			}
			var e struct{ Type, Message string }
			_ = json.Unmarshal(b, &e)
			var lower struct {
				Message string `json:"message"`
			}
			_ = json.Unmarshal(b, &lower)
			if (resp.StatusCode != 401 && resp.StatusCode != 403) || resp.Header.Get("X-Amzn-Errortype") == "" ||
				resp.Header.Get("Content-Type") != "application/json" || e.Type != "User" || (e.Message == "" && lower.Message == "") {
				t.Errorf("%s: unsigned %s %s answered %d %q %s, want 401/403 in Lambda's error shape",
					rt.Name, m, rt.Path, resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), b)
			}
			// Signed, the same request reaches the route.
			resp, b = send(m, url, "", true)
			// ("unknown path" is the status API's answer for a path another
			// handler should have had: a mux pattern too wide.)
			if resp.StatusCode == 401 || resp.StatusCode == 403 || resp.Header.Get("X-Amzn-Errortype") == "UnknownOperationException" ||
				bytes.Contains(b, []byte("unknown path")) {
				t.Errorf("%s: signed %s %s answered %d %s; the route is not served as listed", rt.Name, m, rt.Path, resp.StatusCode, b)
			}
		}
	}
	slices.Sort(open)
	if got := strings.Join(open, ","); got != "ConsoleAssets,ConsoleLogin,ConsoleLogout,ConsoleSession,DownloadArtifact,Health,Metrics" {
		t.Errorf("open routes %s, want only the console's assets and session endpoints, DownloadArtifact, Health and Metrics", got)
	}

	// A console session stands for its access key on every route: with the
	// cookie (and, on writes, the CSRF token) each one is reached; a write
	// without the token, or a forged cookie, is refused.
	cookie, csrf := consoleLogin(t, client, base, akid, secret)
	withSession := func(method, url string, token string, c *http.Cookie) (*http.Response, []byte) {
		t.Helper()
		var body []byte
		if method == http.MethodPost || method == http.MethodPut {
			body = []byte(`{}`)
		}
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.AddCookie(c)
		if token != "" {
			req.Header.Set("X-Nimbus-CSRF", token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	forged := &http.Cookie{Name: cookie.Name, Value: "forged-" + cookie.Value}
	for _, rt := range routes {
		// Artifact uploads take SigV4 only (the console sends code inside
		// CreateFunction); they refuse a session like any unsigned request.
		if rt.Open || rt.Name == "UploadArtifact" {
			continue
		}
		methods := rt.Methods
		if methods == nil {
			methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete}
		}
		for _, m := range methods {
			url := base + fill.Replace(rt.Path)
			if resp, b := withSession(m, url, csrf, cookie); resp.StatusCode == 401 || resp.StatusCode == 403 ||
				resp.Header.Get("X-Amzn-Errortype") == "UnknownOperationException" {
				t.Errorf("%s: %s %s with a session answered %d %s", rt.Name, m, rt.Path, resp.StatusCode, b)
			}
			if resp, b := withSession(m, url, csrf, forged); resp.StatusCode != 403 || resp.Header.Get("X-Amzn-Errortype") == "" {
				t.Errorf("%s: %s %s with a forged session answered %d %s, want 403", rt.Name, m, rt.Path, resp.StatusCode, b)
			}
			if m == http.MethodGet || m == http.MethodHead {
				continue
			}
			if resp, b := withSession(m, url, "", cookie); resp.StatusCode != 403 || resp.Header.Get("X-Amzn-Errortype") != "AccessDeniedException" {
				t.Errorf("%s: %s %s with a session but no CSRF token answered %d %s, want 403 AccessDeniedException", rt.Name, m, rt.Path, resp.StatusCode, b)
			}
		}
	}
	// A session does not reach an AWS_IAM function URL: those take SigV4 only.
	if resp, b := withSession(http.MethodGet, base+"/url/fn/x", csrf, cookie); resp.StatusCode != 403 {
		t.Errorf("AWS_IAM function URL with a console session: %d %s, want 403", resp.StatusCode, b)
	}

	// Function URLs follow their auth type: AWS_IAM refuses unsigned
	// callers by path and by host; NONE is public, as on Lambda.
	for _, tc := range []struct{ url, host string }{
		{base + "/url/fn/x", ""},
		{base + "/x", "fn.lambda-url.localhost"},
	} {
		if resp, b := send(http.MethodGet, tc.url, tc.host, false); resp.StatusCode != 403 || string(b) != "{\"Message\":\"Forbidden\"}\n" {
			t.Errorf("unsigned AWS_IAM function URL %s (host %q): %d %s", tc.url, tc.host, resp.StatusCode, b)
		}
	}
	if resp, b := send(http.MethodGet, base+"/url/pub/x", "", false); resp.StatusCode == 403 {
		t.Errorf("NONE function URL refused: %s", b)
	}
}

// consoleLogin logs in to the console and answers the session cookie and
// its CSRF token.
func consoleLogin(t *testing.T, client *http.Client, base, akid, secret string) (*http.Cookie, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"accessKeyId": akid, "secretAccessKey": secret})
	resp, err := client.Post(base+"/console/api/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct {
		CSRFToken     string `json:"csrfToken"`
		Authenticated bool   `json:"authenticated"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != 200 || !info.Authenticated || info.CSRFToken == "" {
		t.Fatalf("console login: %d %+v %v", resp.StatusCode, info, err)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "nimbus_console" {
			return c, info.CSRFToken
		}
	}
	t.Fatalf("console login set no nimbus_console cookie: %v", resp.Header["Set-Cookie"])
	return nil, ""
}
