package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// A scheduled event as Nimbus's schedule source sends it.
const scheduled = `{"version":"0","id":"3f5a1c2e-8b7d-4e2a-9c1f-6d3b2a1e0f9c","detail-type":"Scheduled Event",` +
	`"source":"aws.events","account":"123456789012","time":"2026-03-15T07:00:00Z","region":"eu-west-1",` +
	`"resources":["arn:aws:events:eu-west-1:123456789012:rule/daily"],"detail":{}}`

// closedURL is an address nothing listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/"
}

func TestReport(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/", http.StatusFound)
		case "/broken":
			http.Error(w, "no", http.StatusInternalServerError)
		default:
			w.Write([]byte("ok"))
		}
	}))
	defer up.Close()
	down := closedURL(t)
	urls, err := ParseURLs(up.URL + "/, " + up.URL + "/moved," + up.URL + "/broken " + down)
	if err != nil {
		t.Fatal(err)
	}
	r := &Reporter{URLs: urls, Client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		Timeout: 5 * time.Second, Parallel: 2}
	var ev events.EventBridgeEvent
	if err := json.Unmarshal([]byte(scheduled), &ev); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checked != 4 || rep.Healthy != 2 || len(rep.Failing) != 2 || rep.EventID != ev.ID || !rep.Tick.Equal(time.Date(2026, 3, 15, 7, 0, 0, 0, time.UTC)) {
		t.Fatalf("report %+v", rep)
	}
	want := map[string]Check{up.URL + "/": {Status: 200, OK: true}, up.URL + "/moved": {Status: 302, OK: true},
		up.URL + "/broken": {Status: 500}, down: {}}
	for _, c := range rep.Checks {
		w := want[c.URL]
		if c.Status != w.Status || c.OK != w.OK || (c.URL == down) != (c.Error != "") {
			t.Errorf("check %+v, want status %d ok %v", c, w.Status, w.OK)
		}
	}
	if s := rep.Summary(); !strings.Contains(s, "2 of 4 healthy") || !strings.Contains(s, "FAILING "+up.URL+"/broken (500") {
		t.Errorf("summary:\n%s", s)
	}
}

func TestParseURLs(t *testing.T) {
	for _, bad := range []string{"", " , ", "ftp://x/", "example.com"} {
		if _, err := ParseURLs(bad); err == nil {
			t.Errorf("ParseURLs(%q) accepted", bad)
		}
	}
}

func TestRunOutOfTime(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &Reporter{URLs: []string{"http://127.0.0.1:1/"}, Client: http.DefaultClient, Timeout: time.Second, Parallel: 1}
	if _, err := r.Run(ctx, events.EventBridgeEvent{}); err == nil || !strings.Contains(err.Error(), "out of time") {
		t.Fatalf("a cancelled run: %v", err)
	}
}
