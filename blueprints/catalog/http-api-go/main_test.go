package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func request(method, path, body string, cookies ...string) events.LambdaFunctionURLRequest {
	var r events.LambdaFunctionURLRequest
	r.RawPath, r.Body, r.Cookies = path, body, cookies
	r.RequestContext.HTTP.Method = method
	return r
}

func call(t *testing.T, a *api, req events.LambdaFunctionURLRequest) response {
	t.Helper()
	resp, err := a.handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestNotesLifecycle(t *testing.T) {
	a := &api{store: newStore()}
	resp := call(t, a, request("POST", "/notes", `{"text":"buy milk"}`))
	if resp.StatusCode != 201 || resp.Body != `{"id":"1","text":"buy milk"}` || resp.Headers["location"] != "/notes/1" {
		t.Fatalf("create: %+v", resp)
	}
	if len(resp.Cookies) != 1 || !strings.HasPrefix(resp.Cookies[0], "last_note=1; Path=/; HttpOnly; Secure; SameSite=Lax") {
		t.Fatalf("cookies %q", resp.Cookies)
	}
	// A base64 body (binary content types) decodes the same.
	b64 := request("POST", "/notes", base64.StdEncoding.EncodeToString([]byte(`{"text":"call mum"}`)))
	b64.IsBase64Encoded = true
	if resp := call(t, a, b64); resp.StatusCode != 201 {
		t.Fatalf("base64 create: %+v", resp)
	}
	resp = call(t, a, request("GET", "/notes", ""))
	var notes []note
	if err := json.Unmarshal([]byte(resp.Body), &notes); err != nil || len(notes) != 2 || notes[1].Text != "call mum" {
		t.Fatalf("list: %+v (%v)", resp, err)
	}
	if resp := call(t, a, request("GET", "/notes/1", "")); resp.StatusCode != 200 || !strings.Contains(resp.Body, "buy milk") {
		t.Fatalf("get: %+v", resp)
	}
	if resp := call(t, a, request("DELETE", "/notes/1", "")); resp.StatusCode != 204 {
		t.Fatalf("delete: %+v", resp)
	}
	if resp := call(t, a, request("GET", "/notes/1", "")); resp.StatusCode != 404 {
		t.Fatalf("get deleted: %+v", resp)
	}
}

func TestErrors(t *testing.T) {
	a := &api{store: newStore()}
	cases := []struct {
		req    events.LambdaFunctionURLRequest
		status int
		allow  string
	}{
		{request("POST", "/notes", `{`), 400, ""},
		{request("POST", "/notes", `{"text":"  "}`), 400, ""},
		{request("PUT", "/notes", `{}`), 405, "GET, POST"},
		{request("PATCH", "/notes/1", `{}`), 405, "GET, DELETE"},
		{request("GET", "/nope", ""), 404, ""},
		{request("GET", "/me", ""), 401, ""},
	}
	for _, c := range cases {
		resp := call(t, a, c.req)
		if resp.StatusCode != c.status || resp.Headers["allow"] != c.allow || resp.Headers["content-type"] != "application/json" {
			t.Errorf("%s %s: %+v", c.req.RequestContext.HTTP.Method, c.req.RawPath, resp)
		}
	}
}

func TestSessionCookie(t *testing.T) {
	resp := call(t, &api{store: newStore()}, request("GET", "/me", "", "theme=dark", "session=abc123"))
	if resp.StatusCode != 200 || resp.Body != `{"session":"abc123"}` {
		t.Fatalf("%+v", resp)
	}
}

func TestSampleEvents(t *testing.T) {
	for file, want := range map[string]int{"events/create-note.json": 201, "events/me.json": 200, "events/unknown-route.json": 404} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var req events.LambdaFunctionURLRequest
		if err := json.Unmarshal(b, &req); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if resp := call(t, &api{store: newStore()}, req); resp.StatusCode != want {
			t.Errorf("%s: %+v, want status %d", file, resp, want)
		}
	}
}
