package main

import (
	"context"
	"encoding/json"
	"os"
	"testing"
)

func TestHandle(t *testing.T) {
	cases := []struct {
		name string
		req  request
		want string
	}{
		{"direct", request{Name: "Ada"}, "hello, Ada"},
		{"url query", request{QueryStringParameters: map[string]string{"name": "Grace"}}, "hello, Grace"},
		{"nobody", request{}, "hello, world"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := handle(context.Background(), c.req)
			if err != nil || got.Message != c.want {
				t.Fatalf("handle = %+v, %v; want %q", got, err, c.want)
			}
		})
	}
}

// The sample events decode into request as Lambda would deliver them.
func TestSampleEvents(t *testing.T) {
	for file, want := range map[string]string{
		"events/direct.json":  "hello, Ada",
		"events/url-get.json": "hello, Grace",
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var req request
		if err := json.Unmarshal(b, &req); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if got, _ := handle(context.Background(), req); got.Message != want {
			t.Errorf("%s: got %q, want %q", file, got.Message, want)
		}
	}
}
