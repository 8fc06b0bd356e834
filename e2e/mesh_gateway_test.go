package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/cluster"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/consul"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/mesh"
)

// meshRig is a gateway with connect and tls on, against a real Consul dev
// agent, in front of a real echo instance.
type meshRig struct {
	// cc is an operator's client (the management token with ACLs on).
	cc *consulapi.Client
	// agent is the Consul agent (TokenFor with ACLs on).
	agent             *consultest.Agent
	srv               *server.Server
	gwSrc             *mesh.Source
	src               *consul.Discovery
	meshPort          int
	certFile, keyFile string
	certA             *x509.Certificate
}

// meshRigOptions vary the rig: acl runs Consul with ACLs on (default
// deny) and gives the gateway only a token with consul.GatewayACLPolicy,
// read from a token_file; plainURLs sets connect { plain_urls = true }.
type meshRigOptions struct {
	acl, plainURLs bool
}

func startMeshRig(t testing.TB, o meshRigOptions) *meshRig {
	agent := consultest.Start
	if o.acl {
		agent = consultest.StartWithACLs
	}
	return startMeshRigOn(t, agent(t), o)
}

func startMeshRigOn(t testing.TB, agent *consultest.Agent, o meshRigOptions) *meshRig {
	cc := agent.Client(t)
	// gwc is the gateway's own client: the agent's default token, or with
	// ACLs the gateway policy's token through the consul block.
	gwc := cc
	if o.acl {
		tokFile := filepath.Join(t.TempDir(), "consul.token")
		if err := os.WriteFile(tokFile, []byte(agent.TokenFor(t, consul.GatewayACLPolicy)), 0o400); err != nil {
			t.Fatal(err)
		}
		var err error
		if gwc, err = cluster.ConsulClient(&config.ConsulConfig{Address: agent.HTTPAddr, TokenFile: tokFile}); err != nil {
			t.Fatal(err)
		}
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "e2e-mesh", Level: hclog.Warn, Output: os.Stderr})
	ctx := context.Background()

	cat, inst := echoWithURL(t, logger)
	instHost, instPortS, _ := net.SplitHostPort(inst.Addr)
	instPort, _ := strconv.Atoi(instPortS)
	if err := cc.Agent().ServiceRegister(&consulapi.AgentServiceRegistration{
		ID: "echo-instance", Name: "nimbus-echo", Address: instHost, Port: instPort,
		Tags: []string{"function=echo", "version=$LATEST", "group=" + discovery.GroupProvisioned},
		Meta: map[string]string{"function": "echo", "version": "$LATEST", "group": discovery.GroupProvisioned},
		Check: &consulapi.AgentServiceCheck{
			Name: "nimbus-health", HTTP: "http://" + inst.Addr + invokeapi.PathHealth, Interval: "1s", Timeout: "1s",
		},
	}); err != nil {
		t.Fatal(err)
	}

	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	ln, meshLn, tlsLn := listen(), listen(), listen()
	certDir := t.TempDir()
	certFile, keyFile := filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key")
	certA := writeCert(t, certFile, keyFile, "gateway-a")

	reg, err := consul.NewRegistrar(gwc.Agent(), consul.RegistrarConfig{
		Address: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, HealthPath: server.HealthPath,
		CheckInterval: time.Second, CheckTimeout: time.Second,
		MeshPort: meshLn.Addr().(*net.TCPAddr).Port, MeshService: "nimbus-gateway",
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.SetURLFunctions(ctx, consul.URLFunctions(cat.Snapshot().Functions())); err != nil {
		t.Fatal(err)
	}
	gwSrc, err := mesh.NewSource(gwc.Agent(), mesh.SourceConfig{Service: "nimbus-gateway", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gwSrc.Close)
	src := consul.NewDiscovery(gwc.Health(), consul.DiscoveryConfig{}, logger)
	t.Cleanup(src.Close)
	cfg := &config.Config{
		Listen: ln.Addr().String(), Region: e2eRegion, AccountID: e2eAccount, InvokeKey: e2eInvokeKey,
		AccessKeys: []config.AccessKey{{ID: e2eAccessKey, Secret: e2eSecretKey}},
		Queue:      &queue.Config{DataDir: t.TempDir()},
		Connect:    &config.ConnectConfig{Enabled: true, Listen: meshLn.Addr().String(), PlainURLs: o.plainURLs},
		TLS:        &config.TLSConfig{Listen: tlsLn.Addr().String(), CertFile: certFile, KeyFile: keyFile},
	}
	srv, err := server.New(cfg, server.Deps{
		Catalog: cat, Source: src, Scaler: &gatewaytest.Scaler{}, Registrars: []server.Registrar{reg}, Logger: logger,
		Listener: ln, TLSListener: tlsLn,
		Mesh: &server.MeshDeps{Source: gwSrc, Authorizer: mesh.NewAuthorizer(gwc.Agent()), Listener: meshLn},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	if err := srv.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	go func() { served <- srv.Serve(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
	})

	// echo-url is Connect-native at the mesh port, and passing.
	gatewaytest.Eventually(t, 20*time.Second, func() bool {
		e, _, err := cc.Health().Connect("echo-url", "", true, nil)
		return err == nil && len(e) == 1 && e[0].Service.Port == meshLn.Addr().(*net.TCPAddr).Port &&
			e[0].Service.Connect != nil && e[0].Service.Connect.Native
	}, "echo-url to pass as a Connect-native service at the mesh port")
	gatewaytest.Eventually(t, 20*time.Second, func() bool {
		ins, err := src.Instances(ctx, "echo", "$LATEST")
		return err == nil && len(ins) == 1
	}, "Consul health to list the instance")
	gatewaytest.Eventually(t, 20*time.Second, func() bool { return gwSrc.LeafFor("echo-url") != nil }, "the gateway's echo-url leaf")

	return &meshRig{cc: cc, agent: agent, srv: srv, gwSrc: gwSrc, src: src, meshPort: meshLn.Addr().(*net.TCPAddr).Port,
		certFile: certFile, keyFile: keyFile, certA: certA}
}

// TestGatewayMesh runs a gateway with connect and tls on against a real
// Consul dev agent (Connect on, built-in CA) and a real aws-lambda-go echo
// instance: a Connect-native caller "web" reaches the function URL by the
// service "echo-url" over mTLS, the SNI picks the function whatever the
// Host header says, intentions deny and allow it (403 in Lambda's URL
// shape), the Invoke API answers over the mesh under the gateway's own
// identity, clients outside the mesh are refused, the HTTPS listener picks
// up rewritten certificate files, and a CA rotation reaches the gateway's
// leaves while it keeps serving.
func TestGatewayMesh(t *testing.T) {
	r := startMeshRig(t, meshRigOptions{})
	cc, srv, gwSrc := r.cc, r.srv, r.gwSrc
	certFile, keyFile, certA := r.certFile, r.keyFile, r.certA
	ctx := context.Background()

	web, echoURL := meshWebClient(t, cc, "echo-url")
	post := func(c *http.Client, host string) (int, string, *http.Response) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "https://echo-url/hello?x=1", strings.NewReader("hi"))
		if host != "" {
			req.Host = host
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("mesh call: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp
	}

	t.Run("a mesh caller reaches the function by echo-url", func(t *testing.T) {
		code, body, resp := post(echoURL, "")
		if code != http.StatusOK || !strings.Contains(body, `"rawPath":"/hello"`) || !strings.Contains(body, `"body":"hi"`) {
			t.Fatalf("echo-url over the mesh: %d %s", code, body)
		}
		if id, _ := mesh.CertSpiffeID(resp.TLS.PeerCertificates[0]); id.Service != "echo-url" {
			t.Fatalf("the gateway proved %s, want echo-url", id)
		}
	})

	t.Run("the SNI selects the function, not the Host header", func(t *testing.T) {
		code, body, _ := post(echoURL, "somewhere-else.example")
		if code != http.StatusOK || !strings.Contains(body, `"rawPath":"/hello"`) {
			t.Fatalf("echo-url with an unrelated Host: %d %s", code, body)
		}
	})

	t.Run("callers without SNI are routed by Host", func(t *testing.T) {
		tc := web.ClientTLSConfig("nimbus-gateway") // no SNI: the gateway proves its own identity
		tc.ServerName = ""
		c := &http.Client{Transport: &http.Transport{DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&tls.Dialer{Config: tc}).DialContext(ctx, "tcp", srv.MeshAddr())
		}}}
		defer c.CloseIdleConnections()
		for _, host := range []string{"echo-url", "echo.lambda-url.localhost"} {
			if code, body, _ := post(c, host); code != http.StatusOK || !strings.Contains(body, `"rawPath":"/hello"`) {
				t.Fatalf("Host %s without SNI: %d %s", host, code, body)
			}
		}
	})

	t.Run("intentions deny and allow the caller", func(t *testing.T) {
		ixn := &consulapi.Intention{SourceName: "web", DestinationName: "echo-url", Action: consulapi.IntentionActionDeny}
		if _, err := cc.Connect().IntentionUpsert(ixn, nil); err != nil {
			t.Fatal(err)
		}
		var code int
		var body string
		var resp *http.Response
		eventually(t, 10*time.Second, func() bool {
			code, body, resp = post(echoURL, "")
			return code == http.StatusForbidden
		}, "a deny intention to refuse web -> echo-url")
		if body != "{\"Message\":\"Forbidden\"}\n" || resp.Header.Get("X-Amzn-Requestid") == "" {
			t.Fatalf("denied answer %q (request id %q), want Lambda's URL error shape", body, resp.Header.Get("X-Amzn-Requestid"))
		}
		ixn.Action = consulapi.IntentionActionAllow
		if _, err := cc.Connect().IntentionUpsert(ixn, nil); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, func() bool {
			code, _, _ = post(echoURL, "")
			return code == http.StatusOK
		}, "an allow intention to let web -> echo-url through again")
		if _, err := cc.Connect().IntentionDeleteExact("web", "echo-url", nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("the Invoke API over the mesh", func(t *testing.T) {
		tc := web.ClientTLSConfig("nimbus-gateway")
		hc := &http.Client{Transport: &http.Transport{DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&tls.Dialer{Config: tc}).DialContext(ctx, "tcp", srv.MeshAddr())
		}}}
		defer hc.CloseIdleConnections()
		lc := lambda.New(lambda.Options{
			Region: e2eRegion, BaseEndpoint: aws.String("https://nimbus-gateway"), RetryMaxAttempts: 1, HTTPClient: hc,
			Credentials: credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, ""),
		})
		out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"via":"mesh"}`)})
		if err != nil || string(out.Payload) != `{"via":"mesh"}` {
			t.Fatalf("Invoke over the mesh: %v %s", err, payloadOf(out))
		}
		ixn := &consulapi.Intention{SourceName: "web", DestinationName: "nimbus-gateway", Action: consulapi.IntentionActionDeny}
		if _, err := cc.Connect().IntentionUpsert(ixn, nil); err != nil {
			t.Fatal(err)
		}
		defer func() { _, _ = cc.Connect().IntentionDeleteExact("web", "nimbus-gateway", nil) }()
		eventually(t, 10*time.Second, func() bool {
			_, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{}`)})
			return err != nil && strings.Contains(err.Error(), "AccessDeniedException")
		}, "a deny intention to refuse the Invoke API with AccessDeniedException")
	})

	t.Run("the Invoke API through nimbus-gateway's Connect-native registration", func(t *testing.T) {
		meshInvoke(t, ctx, web, cc, true)
	})

	t.Run("the plain listener refuses function URLs", func(t *testing.T) {
		plainURLRefused(t, srv.Addr())
	})

	t.Run("clients outside the mesh are refused", func(t *testing.T) {
		plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test's point
		defer plain.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, "https://"+srv.MeshAddr()+"/hello", nil)
		req.Host = "echo.lambda-url.localhost"
		if resp, err := plain.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("a TLS client without a mesh certificate got %d", resp.StatusCode)
		}
		if resp, err := http.Get("http://" + srv.MeshAddr() + "/url/echo/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Fatalf("plain HTTP on the mesh listener got %d", resp.StatusCode)
			}
		}
	})

	t.Run("the TLS listener reloads rewritten certificate files", func(t *testing.T) {
		fetch := func() *x509.Certificate {
			t.Helper()
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}} //nolint:gosec // the certificate is compared below
			req, _ := http.NewRequest(http.MethodPost, "https://"+srv.TLSAddr()+"/tls?x=1", strings.NewReader("hi"))
			req.Host = "echo.lambda-url.localhost"
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("https call: %v", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"rawPath":"/tls"`) {
				t.Fatalf("function URL over https: %d %s", resp.StatusCode, b)
			}
			return resp.TLS.PeerCertificates[0]
		}
		if got := fetch(); !got.Equal(certA) {
			t.Fatalf("https serves %s, want the first certificate", got.Subject)
		}
		certB := writeCert(t, certFile, keyFile, "gateway-b")
		eventually(t, 10*time.Second, func() bool { return fetch().Equal(certB) }, "the rewritten certificate to be served")
		// A broken file keeps the last good pair.
		if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := fetch(); !got.Equal(certB) {
			t.Fatalf("after a broken rewrite https serves %s, want the last good certificate", got.Subject)
		}
	})

	t.Run("a CA rotation reaches the gateway without a restart", func(t *testing.T) {
		oldLeaf, oldRoot := gwSrc.LeafFor("echo-url").Serial, gwSrc.Roots().ActiveID
		consultest.RotateCA(t, cc)
		eventually(t, 90*time.Second, func() bool {
			l := gwSrc.LeafFor("echo-url")
			return gwSrc.Roots().ActiveID != oldRoot && web.Roots().ActiveID != oldRoot && l != nil && l.Serial != oldLeaf &&
				web.Leaf().X509.CheckSignatureFrom(rootOf(t, cc)) == nil
		}, "new roots and a new echo-url leaf after the rotation")
		echoURL.CloseIdleConnections()
		code, body, resp := post(echoURL, "")
		if code != http.StatusOK || !strings.Contains(body, `"rawPath":"/hello"`) {
			t.Fatalf("echo-url after the rotation: %d %s", code, body)
		}
		if !resp.TLS.PeerCertificates[0].Equal(gwSrc.LeafFor("echo-url").X509) {
			t.Fatal("the gateway did not present its new echo-url leaf after the rotation")
		}
	})
}

// meshInvoke calls the Invoke API as mesh service web, finding the
// gateway through Consul's /v1/health/connect/nimbus-gateway (its
// Connect-native registration) and checking that the gateway proves the
// nimbus-gateway identity; allowed says whether intentions let web in.
func meshInvoke(t *testing.T, ctx context.Context, web *mesh.Source, cc *consulapi.Client, allowed bool) {
	t.Helper()
	hc := mesh.HTTPClient(web, cc.Health(), "nimbus-gateway")
	defer hc.CloseIdleConnections()
	lc := lambda.New(lambda.Options{
		Region: e2eRegion, BaseEndpoint: aws.String("https://nimbus-gateway"), RetryMaxAttempts: 1, HTTPClient: hc,
		Credentials: credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, ""),
	})
	out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"via":"connect"}`)})
	switch {
	case allowed && (err != nil || string(out.Payload) != `{"via":"connect"}`):
		t.Fatalf("Invoke through nimbus-gateway's mesh registration: %v %s", err, payloadOf(out))
	case !allowed && (err == nil || !strings.Contains(err.Error(), "AccessDeniedException")):
		t.Fatalf("Invoke without an intention: err = %v, want AccessDeniedException", err)
	}
}

// plainURLRefused checks that the plain listener at addr answers function
// URL requests (by host and by /url/ path) 403 in the URL error shape,
// while its health endpoint still answers.
func plainURLRefused(t *testing.T, addr string) {
	t.Helper()
	for _, c := range []struct{ path, host string }{{"/hello", "echo.lambda-url.localhost"}, {"/url/echo/hello", ""}} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+c.path, strings.NewReader("hi"))
		if c.host != "" {
			req.Host = c.host
		}
		resp := mustDo(t, req)
		if resp.StatusCode != http.StatusForbidden || string(resp.body) != "{\"Message\":\"Forbidden\"}\n" {
			t.Fatalf("plain %s (Host %q): %d %s, want 403 Forbidden", c.path, c.host, resp.StatusCode, resp.body)
		}
	}
	resp, err := http.Get("http://" + addr + server.HealthPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health on the plain listener: %d", resp.StatusCode)
	}
}

// TestGatewayMeshWithConsulACLs runs the mesh gateway against a Consul
// with ACLs on and default deny: the gateway holds only a token with
// consul.GatewayACLPolicy (from a token_file); the mesh caller "web" holds
// only its own service's rights. Intentions default to deny with the ACL
// default: nothing passes until an intention allows it.
func TestGatewayMeshWithConsulACLs(t *testing.T) {
	r := startMeshRig(t, meshRigOptions{acl: true})
	ctx := context.Background()
	webc, err := consulapi.NewClient(&consulapi.Config{Address: r.agent.HTTPAddr, Token: r.agent.TokenFor(t, `service "web" {
  policy = "write"
}
service_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
`)})
	if err != nil {
		t.Fatal(err)
	}
	web, echoURL := meshWebClient(t, webc, "echo-url")
	post := func() (int, string) {
		t.Helper()
		resp, err := echoURL.Post("https://echo-url/acl", "text/plain", strings.NewReader("hi"))
		if err != nil {
			t.Fatalf("mesh call: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	allow := func(dst string) {
		t.Helper()
		if _, err := r.cc.Connect().IntentionUpsert(&consulapi.Intention{SourceName: "web", DestinationName: dst, Action: consulapi.IntentionActionAllow}, nil); err != nil {
			t.Fatal(err)
		}
	}

	if code, body := post(); code != http.StatusForbidden {
		t.Fatalf("echo-url without an intention under default deny: %d %s", code, body)
	}
	meshInvoke(t, ctx, web, webc, false)

	allow("echo-url")
	var code int
	var body string
	eventually(t, 10*time.Second, func() bool {
		code, body = post()
		return code == http.StatusOK
	}, "an allow intention to let web -> echo-url through")
	if !strings.Contains(body, `"rawPath":"/acl"`) {
		t.Fatalf("echo-url under ACLs: %d %s", code, body)
	}
	allow("nimbus-gateway")
	meshInvokeEventually(t, ctx, web, webc)
	plainURLRefused(t, r.srv.Addr())
}

// meshInvokeEventually retries meshInvoke's call until an allow intention
// written just before reaches the gateway's agent.
func meshInvokeEventually(t *testing.T, ctx context.Context, web *mesh.Source, cc *consulapi.Client) {
	t.Helper()
	hc := mesh.HTTPClient(web, cc.Health(), "nimbus-gateway")
	defer hc.CloseIdleConnections()
	lc := lambda.New(lambda.Options{
		Region: e2eRegion, BaseEndpoint: aws.String("https://nimbus-gateway"), RetryMaxAttempts: 1, HTTPClient: hc,
		Credentials: credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, ""),
	})
	var out *lambda.InvokeOutput
	var err error
	eventually(t, 10*time.Second, func() bool {
		out, err = lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"via":"acl"}`)})
		return err == nil
	}, "an allow intention to let web call the Invoke API")
	if string(out.Payload) != `{"via":"acl"}` {
		t.Fatalf("Invoke under ACLs: %s", payloadOf(out))
	}
}

// With connect { plain_urls = true } the plain listener serves function
// URLs as before.
func TestGatewayMeshPlainURLsOptIn(t *testing.T) {
	r := startMeshRig(t, meshRigOptions{plainURLs: true})
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.srv.Addr()+"/plain?x=1", strings.NewReader("hi"))
	req.Host = "echo.lambda-url.localhost"
	resp := mustDo(t, req)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(resp.body), `"rawPath":"/plain"`) {
		t.Fatalf("plain function URL with plain_urls: %d %s", resp.StatusCode, resp.body)
	}
}

func payloadOf(out *lambda.InvokeOutput) string {
	if out == nil {
		return ""
	}
	return string(out.Payload)
}

// rootOf is the mesh's active root certificate.
func rootOf(t *testing.T, cc *consulapi.Client) *x509.Certificate {
	t.Helper()
	list, _, err := cc.Connect().CARoots(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list.Roots {
		if r.Active {
			b, _ := pem.Decode([]byte(r.RootCertPEM))
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
	t.Fatal("no active root")
	return nil
}

// writeCert writes a fresh self-signed certificate and key (through a
// rename each, as certificate tools do) and returns the certificate.
func writeCert(t testing.TB, certFile, keyFile, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: []string{"echo.lambda-url.localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	put := func(path string, b *pem.Block) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	put(keyFile, &pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	put(certFile, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// BenchmarkGatewayMeshURL compares one warm function URL call (the real
// echo function) through the gateway's plain listener, its HTTPS listener
// and its mesh listener (mTLS, SNI routing and an intention check through
// the Consul agent per request), all on kept-alive connections, plus the
// intention check alone; run them in one go and compare ratios.
func BenchmarkGatewayMeshURL(b *testing.B) {
	r := startMeshRig(b, meshRigOptions{plainURLs: true})
	web := meshWeb(b, r.cc)
	call := func(b *testing.B, c *http.Client, u, host string) {
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader("hi"))
		if host != "" {
			req.Host = host
		}
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	run := func(name string, c *http.Client, u, host string) {
		b.Run(name, func(b *testing.B) {
			defer c.CloseIdleConnections()
			call(b, c, u, host) // connect and warm
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				call(b, c, u, host)
			}
		})
	}
	run("plain", &http.Client{}, "http://"+r.srv.Addr()+"/hello", "echo.lambda-url.localhost")
	run("https", &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}, //nolint:gosec // a self-signed test certificate
		"https://"+r.srv.TLSAddr()+"/hello", "echo.lambda-url.localhost")
	run("mesh", mesh.HTTPClient(web, r.cc.Health(), "echo-url"), "https://echo-url/hello", "")
	b.Run("authorize-only", func(b *testing.B) {
		l := web.Leaf()
		peer := mesh.Peer{ID: l.ID, URI: l.ID.String(), Serial: l.Serial, Cert: l.X509}
		a := mesh.NewAuthorizer(r.cc.Agent())
		for i := 0; i < b.N; i++ {
			if err := a.Authorize(context.Background(), "echo-url", peer); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// meshWeb is the Connect-native service "web" on the agent of cc, ready,
// until the test ends. Its blocking queries wait at most 30 s, so the
// source notices its close soon after the test.
func meshWeb(tb testing.TB, cc *consulapi.Client) *mesh.Source {
	tb.Helper()
	web, err := mesh.NewSource(cc.Agent(), mesh.SourceConfig{Service: "web", WaitTime: 30 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(web.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := web.Ready(ctx); err != nil {
		tb.Fatal(err)
	}
	return web
}

// meshWebClient is meshWeb and a client that calls service over the mesh
// as web, closed when the test ends.
func meshWebClient(t *testing.T, cc *consulapi.Client, service string) (*mesh.Source, *http.Client) {
	t.Helper()
	web := meshWeb(t, cc)
	c := mesh.HTTPClient(web, cc.Health(), service)
	t.Cleanup(c.CloseIdleConnections)
	return web, c
}
