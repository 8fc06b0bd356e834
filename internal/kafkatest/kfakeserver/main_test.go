package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/nimbus-fn/nimbus/internal/kafkatest"
)

func TestRunPrintsAddressAndServes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, pw, port, map[string]int32{"orders": 2}) }()

	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSpace(line)
	if _, p, _ := net.SplitHostPort(addr); !strings.HasPrefix(addr, "127.0.0.1:") || p == "" || addr != l.Addr().String() {
		t.Fatalf("printed %q, want 127.0.0.1:%d", addr, port)
	}
	kafkatest.RoundTrip(t, []string{addr}, "orders", 1)

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestTopicFlag(t *testing.T) {
	tf := topicFlags{}
	if err := tf.Set("orders:3"); err != nil || tf["orders"] != 3 {
		t.Fatalf("Set(orders:3) = %v, %v", err, tf)
	}
	for _, bad := range []string{"orders", ":3", "orders:0", "orders:x"} {
		if err := tf.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}
