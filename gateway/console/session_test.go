package console_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/console"
	"github.com/nimbus-fn/nimbus/gateway/sigv4"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sessionServer serves the console's routes plus /probe, a route guarded
// by a sigv4.Verifier consulting the sessions the way the gateway's routes
// do; tls serves over TLS.
func sessionServer(t *testing.T, cfg console.SessionConfig, tls bool) (*httptest.Server, *console.Sessions) {
	t.Helper()
	sessions := console.NewSessions(cfg)
	keys := map[string]string{}
	for _, k := range cfg.Keys {
		keys[k.ID] = k.Secret
	}
	v := &sigv4.Verifier{Keys: keys, Region: "us-east-1", Sessions: sessions}
	c := console.New(console.Options{Sessions: sessions})
	mux := http.NewServeMux()
	for _, rt := range c.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	mux.HandleFunc("/probe", func(w http.ResponseWriter, r *http.Request) {
		id, err := v.Verify(r, nil)
		if err != nil {
			w.WriteHeader(err.(*sigv4.Error).Status())
			_, _ = io.WriteString(w, err.Error())
			return
		}
		_, _ = io.WriteString(w, id.AccessKeyID)
	})
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(mux)
	} else {
		srv = httptest.NewServer(mux)
	}
	t.Cleanup(srv.Close)
	return srv, sessions
}

func login(t *testing.T, c *http.Client, base, id, secret string) (*http.Response, console.SessionInfo) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"accessKeyId": id, "secretAccessKey": secret})
	resp, err := c.Post(base+console.LoginPath, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info console.SessionInfo
	_ = json.NewDecoder(resp.Body).Decode(&info)
	return resp, info
}

func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", console.CookieName, resp.Header["Set-Cookie"])
	return nil
}

func call(t *testing.T, c *http.Client, method, url string, cookie *http.Cookie, csrf string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	if csrf != "" {
		req.Header.Set(console.CSRFHeader, csrf)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var keys = []console.Key{{ID: "AKIDADMIN", Secret: "admin-secret"}, {ID: "AKIDINVOKE", Secret: "invoke-secret", Scope: "invoke"}}

func TestLoginSetsAStrictCookieAndTheSessionStandsForTheKey(t *testing.T) {
	for _, tls := range []bool{false, true} {
		srv, _ := sessionServer(t, console.SessionConfig{Keys: keys, Mode: "cluster", Region: "us-east-1", AccountID: "123456789012"}, tls)
		c := srv.Client()
		resp, info := login(t, c, srv.URL, "AKIDINVOKE", "invoke-secret")
		if resp.StatusCode != 200 {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		ck := sessionCookie(t, resp)
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != console.CookiePath || ck.Secure != tls || len(ck.Value) < 43 {
			t.Errorf("tls=%v: cookie %+v: want HttpOnly, SameSite=Strict, Path=/console, Secure only over TLS, a 256-bit id", tls, ck)
		}
		want := console.SessionInfo{Mode: "cluster", AuthRequired: true, Authenticated: true, AccessKeyID: "AKIDINVOKE",
			Scope: "invoke", CSRFToken: info.CSRFToken, Region: "us-east-1", AccountID: "123456789012"}
		if info != want || len(info.CSRFToken) < 43 || info.CSRFToken == ck.Value {
			t.Errorf("login answered %+v", info)
		}
		// The session endpoint answers the same; the probe sees the key.
		req, _ := http.NewRequest(http.MethodGet, srv.URL+console.SessionPath, nil)
		req.AddCookie(ck)
		r2, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var again console.SessionInfo
		_ = json.NewDecoder(r2.Body).Decode(&again)
		r2.Body.Close()
		if again != want {
			t.Errorf("session answered %+v, want %+v", again, want)
		}
		if code, body := call(t, c, http.MethodGet, srv.URL+"/probe", ck, ""); code != 200 || body != "AKIDINVOKE" {
			t.Errorf("probe with the session: %d %s", code, body)
		}
	}
}

func TestSessionRefusals(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv, sessions := sessionServer(t, console.SessionConfig{Keys: keys, Now: clk.Now, IdleTimeout: time.Minute, MaxAge: 3 * time.Minute, LoginBurst: 100}, false)
	c := srv.Client()

	// Bad keys: 401 with a message, no cookie.
	for _, tc := range [][2]string{{"AKIDADMIN", "wrong"}, {"AKIDNOBODY", "admin-secret"}, {"AKIDADMIN", "admin-secre"}} {
		resp, _ := login(t, c, srv.URL, tc[0], tc[1])
		if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
			t.Errorf("login %v: %d %v, want 401 without a cookie", tc, resp.StatusCode, resp.Cookies())
		}
	}

	resp, info := login(t, c, srv.URL, "AKIDADMIN", "admin-secret")
	ck := sessionCookie(t, resp)
	// Writes need the CSRF token; reads do not.
	if code, body := call(t, c, http.MethodPost, srv.URL+"/probe", ck, ""); code != 403 || !strings.Contains(body, "AccessDeniedException") {
		t.Errorf("write without CSRF token: %d %s", code, body)
	}
	if code, body := call(t, c, http.MethodPost, srv.URL+"/probe", ck, info.CSRFToken+"x"); code != 403 {
		t.Errorf("write with a wrong CSRF token: %d %s", code, body)
	}
	if code, body := call(t, c, http.MethodDelete, srv.URL+"/probe", ck, info.CSRFToken); code != 200 || body != "AKIDADMIN" {
		t.Errorf("write with the CSRF token: %d %s", code, body)
	}
	// Idle expiry: used within the minute it lives on, then not.
	clk.Add(50 * time.Second)
	if code, _ := call(t, c, http.MethodGet, srv.URL+"/probe", ck, ""); code != 200 {
		t.Errorf("session used within its idle timeout: %d", code)
	}
	clk.Add(61 * time.Second)
	if code, body := call(t, c, http.MethodGet, srv.URL+"/probe", ck, ""); code != 403 || !strings.Contains(body, "UnrecognizedClientException") {
		t.Errorf("idle session: %d %s, want 403 UnrecognizedClientException", code, body)
	}
	// Absolute expiry however busy.
	resp, _ = login(t, c, srv.URL, "AKIDADMIN", "admin-secret")
	ck = sessionCookie(t, resp)
	for range 5 {
		clk.Add(30 * time.Second)
		if code, _ := call(t, c, http.MethodGet, srv.URL+"/probe", ck, ""); code != 200 {
			t.Fatalf("busy session ended early")
		}
	}
	clk.Add(30 * time.Second)
	if code, _ := call(t, c, http.MethodGet, srv.URL+"/probe", ck, ""); code != 403 {
		t.Errorf("session past its max age: %d, want 403", code)
	}
	// Logout: needs the token, deletes the session, clears the cookie.
	resp, info = login(t, c, srv.URL, "AKIDADMIN", "admin-secret")
	ck = sessionCookie(t, resp)
	if code, _ := call(t, c, http.MethodPost, srv.URL+console.LogoutPath, ck, ""); code != 403 {
		t.Errorf("logout without the CSRF token: %d, want 403", code)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+console.LogoutPath, nil)
	req.AddCookie(ck)
	req.Header.Set(console.CSRFHeader, info.CSRFToken)
	out, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	cleared := sessionCookie(t, out)
	if out.StatusCode != 204 || cleared.MaxAge >= 0 || cleared.Value != "" {
		t.Errorf("logout: %d %+v, want 204 and a cleared cookie", out.StatusCode, cleared)
	}
	if code, _ := call(t, c, http.MethodGet, srv.URL+"/probe", ck, ""); code != 403 {
		t.Errorf("session after logout: %d, want 403", code)
	}
	// No cookie at all: the verifier asks for a signature, as before.
	if code, body := call(t, c, http.MethodGet, srv.URL+"/probe", nil, ""); code != 403 || !strings.Contains(body, "MissingAuthenticationToken") {
		t.Errorf("no credential: %d %s", code, body)
	}
	if n := sessions.Len(); n != 0 {
		t.Errorf("%d sessions left after expiry and logout, want 0", n)
	}
}

func TestLoginIsRateLimitedPerClient(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv, _ := sessionServer(t, console.SessionConfig{Keys: keys, Now: clk.Now, LoginBurst: 3, LoginInterval: 10 * time.Second}, false)
	c := srv.Client()
	for i := range 3 {
		if resp, _ := login(t, c, srv.URL, "AKIDADMIN", "wrong"); resp.StatusCode != 401 {
			t.Fatalf("attempt %d: %d, want 401", i, resp.StatusCode)
		}
	}
	// The burst is spent: even the right secret waits.
	resp, _ := login(t, c, srv.URL, "AKIDADMIN", "admin-secret")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "10" {
		t.Errorf("over the burst: %d Retry-After %q, want 429 and 10", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	clk.Add(10 * time.Second)
	if resp, _ := login(t, c, srv.URL, "AKIDADMIN", "admin-secret"); resp.StatusCode != 200 {
		t.Errorf("after the interval: %d, want 200", resp.StatusCode)
	}
}

func TestSessionCountIsBounded(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv, sessions := sessionServer(t, console.SessionConfig{Keys: keys, Now: clk.Now, MaxSessions: 3, LoginBurst: 100}, false)
	c := srv.Client()
	var cookies []*http.Cookie
	for range 4 {
		clk.Add(time.Second)
		resp, _ := login(t, c, srv.URL, "AKIDADMIN", "admin-secret")
		cookies = append(cookies, sessionCookie(t, resp))
	}
	if n := sessions.Len(); n != 3 {
		t.Errorf("%d sessions, want the bound 3", n)
	}
	// The least recently used (the first) made room.
	if code, _ := call(t, c, http.MethodGet, srv.URL+"/probe", cookies[0], ""); code != 403 {
		t.Errorf("evicted session: %d, want 403", code)
	}
	if code, _ := call(t, c, http.MethodGet, srv.URL+"/probe", cookies[3], ""); code != 200 {
		t.Errorf("newest session: %d, want 200", code)
	}
}

func TestDevModeWithoutKeysNeedsNoLogin(t *testing.T) {
	srv, _ := sessionServer(t, console.SessionConfig{Mode: "dev", Region: "us-east-1"}, false)
	c := srv.Client()
	resp, err := c.Get(srv.URL + console.SessionPath)
	if err != nil {
		t.Fatal(err)
	}
	var info console.SessionInfo
	_ = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info.AuthRequired || info.Mode != "dev" || info.Scope != "admin" {
		t.Errorf("dev session: %+v", info)
	}
	if resp, _ := login(t, c, srv.URL, "AKID", "x"); resp.StatusCode != 400 {
		t.Errorf("login without keys: %d, want 400", resp.StatusCode)
	}
}

func TestAssetsServeTheApplicationWithStrictHeaders(t *testing.T) {
	c := console.New(console.Options{})
	mux := http.NewServeMux()
	for _, rt := range c.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, p := range []string{"/console/", "/console/functions/my-fn", "/console/index.html"} {
		resp, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != 200 || !strings.Contains(string(b), "<html") || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s", p, resp.StatusCode, h.Get("Content-Type"))
		}
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-cache" || h.Get("ETag") == "" {
			t.Errorf("%s headers: %v", p, h)
		}
		// Revalidation answers 304.
		req, _ := http.NewRequest(http.MethodGet, srv.URL+p, nil)
		req.Header.Set("If-None-Match", h.Get("ETag"))
		r2, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r2.Body.Close()
		if r2.StatusCode != http.StatusNotModified {
			t.Errorf("%s revalidated: %d, want 304", p, r2.StatusCode)
		}
	}
	for _, p := range []string{"/console/assets/missing.js", "/console/api/nothing"} {
		resp, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
}
