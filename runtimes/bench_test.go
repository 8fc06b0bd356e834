package runtimes

import (
	"os/exec"
	"testing"
)

// The bootstraps' own costs, measured against the test Runtime API server:
// ColdStart is process start to the first response (interpreter start-up,
// handler import, one invocation); Invoke is one warm round trip (/next,
// handler, /response) in a running process.

var benchRuntimes = []struct{ name, runtime, taskRoot, handler, interp string }{
	{"python", "python3.11", "python", "app.none", "python3"},
	{"nodejs", "nodejs20.x", "nodejs", "index.undef", "node"},
}

func BenchmarkColdStart(b *testing.B) {
	for _, rt := range benchRuntimes {
		b.Run(rt.name, func(b *testing.B) {
			if _, err := exec.LookPath(rt.interp); err != nil {
				b.Skipf("%s is not installed", rt.interp)
			}
			for b.Loop() {
				bs := launch(b, rt.runtime, rt.taskRoot, "", rt.handler)
				if p := bs.invoke(b, invocation{}); p.Kind != "response" {
					b.Fatalf("got %s %s", p.Kind, p.Body)
				}
				bs.stop()
			}
		})
	}
}

func BenchmarkInvoke(b *testing.B) {
	for _, rt := range benchRuntimes {
		b.Run(rt.name, func(b *testing.B) {
			bs := launch(b, rt.runtime, rt.taskRoot, "", rt.handler)
			inv := invocation{ID: "req-bench", Payload: `{"k":"v"}`}
			for b.Loop() {
				if p := bs.invoke(b, inv); p.Kind != "response" {
					b.Fatalf("got %s %s", p.Kind, p.Body)
				}
			}
		})
	}
}
