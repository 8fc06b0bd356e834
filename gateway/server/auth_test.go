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
	if got := strings.Join(open, ","); got != "DownloadArtifact,Health,Metrics" {
		t.Errorf("open routes %s, want only DownloadArtifact, Health and Metrics", got)
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
