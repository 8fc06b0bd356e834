package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/specs"
)

// startServer runs a dev gateway over fns and src until the test ends.
func startServer(t *testing.T, cfg *config.Config, src *gatewaytest.Source, fns ...*specs.Function) *server.Server {
	t.Helper()
	s, err := server.New(cfg, server.Deps{
		Catalog: snapCatalog{catalog.NewSnapshot(catalog.FromFile(&specs.File{Functions: fns}))},
		Source:  src,
		Logger:  gatewaytest.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

// metric reads one unlabelled gauge or counter from the gateway's registry
// (in process: reading it opens no connection).
func metric(t *testing.T, s *server.Server, name string) float64 {
	t.Helper()
	mfs, err := s.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0]
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func invokeURL(base, fn string) string { return base + "/2015-03-31/functions/" + fn + "/invocations" }

// slowConn is a client that sends its headers and then trickles its body
// without ever finishing it.
type slowConn struct {
	conn   net.Conn
	sent   time.Time // headers written
	done   chan struct{}
	closed time.Time // the gateway closed the connection
	reply  []byte
}

func dialSlow(t *testing.T, addr string, i int) *slowConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("slow connection %d: %v", i, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	sc := &slowConn{conn: c, done: make(chan struct{})}
	head := "POST /2015-03-31/functions/echo/invocations HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"slow\":\""
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatalf("slow connection %d: %v", i, err)
	}
	sc.sent = time.Now()
	go func() {
		// The reply (if any) and then the close.
		b, _ := io.ReadAll(c)
		sc.reply, sc.closed = b, time.Now()
		close(sc.done)
	}()
	go func() {
		// A byte every 100ms: each read makes progress, so only a deadline
		// on the whole body (not one per read) ends this request.
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sc.done:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	return sc
}

// Item 5 of issue 11: 300 clients that send a body slower than
// read_body_timeout are answered and closed once it passes (never before),
// while normal invokes keep answering and an invocation that outlives the
// deadline still gets its whole response; afterwards the connections and
// their goroutines are gone.
func TestSlowBodiesAreClosedWhileInvokesAnswer(t *testing.T) {
	const slow = 300
	const bodyTimeout = 5 * time.Second
	src := gatewaytest.NewSource()
	echo := gatewaytest.StartInstance(t, "echo", catalog.Latest, 4, "", nil)
	src.Set("echo", catalog.Latest, echo.Discovery("e1", discovery.GroupOnDemand))
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	started := make(chan struct{}, 1)
	long := gatewaytest.StartInstance(t, "long", catalog.Latest, 1, "", func(w http.ResponseWriter, r *http.Request, p []byte) {
		started <- struct{}{}
		<-release
		gatewaytest.Echo(w, r, p)
	})
	t.Cleanup(unblock) // registered after the double: runs before its Close waits for the handler
	src.Set("long", catalog.Latest, long.Discovery("l1", discovery.GroupOnDemand))
	cfg := &config.Config{Dev: true, Listen: "127.0.0.1:0", ReadBodyTimeout: bodyTimeout.String(),
		ReadHeaderTimeout: "30s", MaxConnections: 400, ShutdownGrace: "5s"}
	s := startServer(t, cfg, src,
		&specs.Function{Name: "echo", EnvironmentsPerInstance: 4}, &specs.Function{Name: "long", EnvironmentsPerInstance: 1})
	base := "http://" + s.Addr()

	// An invocation that runs through the whole flood and beyond the
	// body deadline.
	longDone := make(chan string, 1)
	longClient := &http.Client{Transport: &http.Transport{}}
	go func() {
		resp, err := longClient.Post(invokeURL(base, "long"), "application/json", strings.NewReader(`{"long":true}`))
		if err != nil {
			longDone <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		longDone <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	<-started

	runtime.GC()
	baseGoroutines := runtime.NumGoroutine()
	baseServing := servingGoroutines()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	conns := make([]*slowConn, slow)
	for i := range conns {
		conns[i] = dialSlow(t, s.Addr(), i)
	}
	gatewaytest.Eventually(t, 20*time.Second, func() bool {
		return metric(t, s, "nimbus_http_connections") >= slow+1
	}, "the gateway holds the %d slow connections and the long invocation's", slow)
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	// The count sees every held connection (so a leak would show).
	if n := servingGoroutines(); n < slow {
		t.Errorf("%d gateway server goroutines while it holds %d slow bodies", n, slow)
	}

	// Normal invokes answer while the slow bodies are held.
	client := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	for i := 0; i < 20; i++ {
		payload := fmt.Sprintf(`{"n":%d}`, i)
		resp, err := client.Post(invokeURL(base, "echo"), "application/json", strings.NewReader(payload))
		if err != nil {
			t.Fatalf("invoke %d during the flood: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != payload {
			t.Fatalf("invoke %d during the flood: %d %s", i, resp.StatusCode, b)
		}
	}
	stillHeld := 0
	for _, c := range conns {
		select {
		case <-c.done:
		default:
			stillHeld++
		}
	}

	for i, c := range conns {
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("slow connection %d still open 30s after its headers (read_body_timeout %s)", i, bodyTimeout)
		}
	}
	var minD, maxD time.Duration
	for i, c := range conns {
		d := c.closed.Sub(c.sent)
		if i == 0 || d < minD {
			minD = d
		}
		maxD = max(maxD, d)
		// The server starts the deadline when it has read the headers, a
		// moment before this client noted them sent: allow for that, not
		// for an early close.
		if d < bodyTimeout-250*time.Millisecond {
			t.Errorf("slow connection %d closed after %s, before read_body_timeout %s", i, d, bodyTimeout)
		}
		status, _, _ := strings.Cut(string(c.reply), "\r\n")
		if status != "HTTP/1.1 400 Bad Request" || !bytes.Contains(c.reply, []byte("InvalidRequestContentException")) ||
			!bytes.Contains(c.reply, []byte("read_body_timeout")) {
			t.Errorf("slow connection %d was answered %q", i, c.reply)
		}
	}
	t.Logf("%d slow-body connections (read_body_timeout %s): %d still held after 20 invokes answered; all closed, %s to %s after their headers",
		slow, bodyTimeout, stillHeld, minD.Round(time.Millisecond), maxD.Round(time.Millisecond))

	// The long invocation's response was not cut by the body deadline.
	unblock()
	if got := <-longDone; got != `200 {"long":true}` {
		t.Fatalf("long invocation answered %q", got)
	}

	// The flood leaves nothing behind: connections and their goroutines.
	client.CloseIdleConnections()
	longClient.CloseIdleConnections()
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return metric(t, s, "nimbus_http_connections") == 0 },
		"connections open after the flood: %v", metric(t, s, "nimbus_http_connections"))
	// Counted are the gateway server's goroutines: others come and go on
	// their own (the console's log followers, the router's status calls,
	// the instance doubles' connections).
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return servingGoroutines() <= baseServing },
		"goroutines serving connections after the flood: %d, before it: %d", servingGoroutines(), baseServing)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Logf("heap in use: %d KiB before, %d KiB holding %d connections, %d KiB after; goroutines %d before, %d after",
		before.HeapInuse>>10, during.HeapInuse>>10, slow, after.HeapInuse>>10, baseGoroutines, runtime.NumGoroutine())
}

// servingGoroutines counts this process's goroutines running the gateway
// server's own code (its handlers, body deadlines and connection
// accounting); the gateway's open connections are its
// nimbus_http_connections metric.
func servingGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			count := 0
			for g := range strings.SplitSeq(string(buf[:n]), "\n\n") {
				if strings.Contains(g, "nimbus/gateway/server.") {
					count++
				}
			}
			return count
		}
		buf = make([]byte, 2*len(buf))
	}
}

// A connection over max_connections is closed as soon as it is accepted,
// and counted; when a held one goes, a new one is served.
func TestConnectionsOverTheCapAreClosedAtOnce(t *testing.T) {
	cfg := &config.Config{Dev: true, Listen: "127.0.0.1:0", MaxConnections: 3, ReadHeaderTimeout: "1m", IdleTimeout: "1m"}
	s := startServer(t, cfg, gatewaytest.NewSource())
	var held []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		held = append(held, c)
	}
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return metric(t, s, "nimbus_http_connections") == 3 },
		"3 connections held")

	// The held ones stay for a minute (read_header_timeout): an EOF now
	// is the cap's doing.
	extra, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := extra.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a connection over the cap read %d bytes, %v; want EOF", n, err)
	}
	if got := metric(t, s, "nimbus_http_connections_refused_total"); got != 1 {
		t.Fatalf("refused connections = %v, want 1", got)
	}
	if got := metric(t, s, "nimbus_http_connections"); got != 3 {
		t.Fatalf("open connections = %v, want 3", got)
	}

	_ = held[0].Close()
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return metric(t, s, "nimbus_http_connections") == 2 },
		"a slot frees when a held connection closes")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	resp, err := client.Get("http://" + s.Addr() + server.HealthPath)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"ok"`) {
		t.Fatalf("health within the cap: %d %s", resp.StatusCode, b)
	}
}

// Oversized headers are refused and idle keep-alive connections closed.
func TestHeaderLimitAndIdleTimeout(t *testing.T) {
	cfg := &config.Config{Dev: true, Listen: "127.0.0.1:0", MaxHeaderBytes: 8192, IdleTimeout: "200ms"}
	s := startServer(t, cfg, gatewaytest.NewSource())

	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// net/http allows MaxHeaderBytes plus 4096 bytes of slack.
	big := "GET " + server.HealthPath + " HTTP/1.1\r\nHost: gateway\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n"
	if _, err := io.WriteString(c, big); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("X-Amzn-Errortype") != "RequestEntityTooLargeException" ||
		!strings.Contains(string(b), "max_header_bytes") {
		t.Fatalf("16 KiB header with max_header_bytes 8192: %d %s %s", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), b)
	}

	idle, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if _, err := io.WriteString(idle, "GET "+server.HealthPath+" HTTP/1.1\r\nHost: gateway\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = idle.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(idle)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("health: %d", resp.StatusCode)
	}
	// Kept alive, then closed by idle_timeout (well before the 20s read
	// deadline of this client).
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle keep-alive connection read %d bytes, %v; want EOF", n, err)
	}
}

// exchange sends one raw request on a new connection and reads the answer.
func exchange(t *testing.T, addr, request string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("answer to %q: %v", request, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// Item 21 of issue 11: requests net/http cannot parse (a path with %zz, no
// Host header) are answered with Lambda's JSON error, not net/http's plain
// text; a function's own plain text 400 passes untouched.
func TestMalformedRequestsGetLambdaJSONErrors(t *testing.T) {
	src := gatewaytest.NewSource()
	in := gatewaytest.StartInstance(t, "web", catalog.Latest, 1, "", func(w http.ResponseWriter, r *http.Request, p []byte) {
		gatewaytest.Echo(w, r, []byte(`{"statusCode":400,"headers":{"Content-Type":"text/plain; charset=utf-8"},"body":"400 Bad Request"}`))
	})
	src.Set("web", catalog.Latest, in.Discovery("w1", discovery.GroupOnDemand))
	s := startServer(t, &config.Config{Dev: true, Listen: "127.0.0.1:0"}, src,
		&specs.Function{Name: "web", EnvironmentsPerInstance: 1, URL: &specs.URLConfig{Auth: "NONE", InvokeMode: "BUFFERED"}})

	for _, tc := range []struct{ name, request, detail string }{
		{"invoke path", "POST /2015-03-31/functions/%zz/invocations HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\n{}", "400 Bad Request"},
		{"URL path", "GET /url/web/a%zz HTTP/1.1\r\nHost: gw\r\n\r\n", "400 Bad Request"},
		{"no Host", "GET /nimbus/health HTTP/1.1\r\n\r\n", "missing required Host header"},
	} {
		resp, body := exchange(t, s.Addr(), tc.request)
		var e struct{ Type, Message string }
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Errorf("%s: body %q is not JSON: %v", tc.name, body, err)
			continue
		}
		if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/json" ||
			resp.Header.Get("X-Amzn-Errortype") != "InvalidParameterValueException" || resp.Header.Get("X-Amzn-Requestid") == "" ||
			e.Type != "User" || !strings.Contains(e.Message, tc.detail) {
			t.Errorf("%s: %d %v %q", tc.name, resp.StatusCode, resp.Header, body)
		}
	}

	resp, body := exchange(t, s.Addr(), "GET /url/web/ok HTTP/1.1\r\nHost: gw\r\n\r\n")
	if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || body != "400 Bad Request" {
		t.Fatalf("the function's own 400: %d %v %q", resp.StatusCode, resp.Header, body)
	}
}
