package console_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/console"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
)

// A live tail ends when the gateway stops the console, so shutdown does
// not wait for browsers to leave.
func TestLiveTailEndsOnStop(t *testing.T) {
	listed := make(chan struct{}, 10)
	tail := console.NewLogTail(console.LogTailConfig{
		Instances: func(context.Context, string) ([]discovery.Instance, error) {
			listed <- struct{}{}
			return nil, nil
		},
		Client: func(string, string) *invokeapi.Client { return &invokeapi.Client{} },
	})
	c := console.New(console.Options{Logs: tail})
	mux := http.NewServeMux()
	for _, rt := range c.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/nimbus/v1/functions/fn/logs?follow=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), ": tailing fn") {
		t.Fatalf("first line %q", sc.Text())
	}
	select {
	case <-listed:
	case <-time.After(10 * time.Second):
		t.Fatal("the tail never listed the function's instances")
	}
	c.Stop()
	ended := make(chan struct{})
	go func() {
		for sc.Scan() {
		}
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the live tail outlived Stop")
	}
}
