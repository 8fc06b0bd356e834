package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestFit(t *testing.T) {
	cases := []struct{ w, h, max, ww, wh int }{
		{4000, 3000, 1024, 1024, 768},
		{3000, 4000, 1024, 768, 1024},
		{800, 600, 1024, 800, 600}, // never scaled up
		{1024, 1024, 1024, 1024, 1024},
		{3000, 2000, 1024, 1024, 683}, // 682.67 rounds up
	}
	for _, c := range cases {
		if w, h := fit(c.w, c.h, c.max); w != c.ww || h != c.wh {
			t.Errorf("fit(%d, %d, %d) = %d×%d, want %d×%d", c.w, c.h, c.max, w, h, c.ww, c.wh)
		}
	}
}

func TestHandleRejectsBadJobs(t *testing.T) {
	for _, j := range []job{{}, {JobID: "a", Width: 0, Height: 10, MaxSide: 5}, {JobID: "a", Width: 10, Height: 10}} {
		if _, err := handle(context.Background(), j); err == nil {
			t.Errorf("%+v accepted", j)
		}
	}
}

func TestSampleEvents(t *testing.T) {
	read := func(file string) job {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var j job
		if err := json.Unmarshal(b, &j); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		return j
	}
	r, err := handle(context.Background(), read("events/job.json"))
	if err != nil || r != (result{JobID: "job-7731", Status: "done", Width: 1024, Height: 683}) {
		t.Fatalf("job.json: %+v, %v", r, err)
	}
	if _, err := handle(context.Background(), read("events/job-invalid.json")); err == nil || !strings.Contains(err.Error(), "must be positive") {
		t.Fatalf("job-invalid.json: %v", err)
	}
}
