package main

import (
	"errors"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
)

var natsLineRE = regexp.MustCompile(`(?m)^NATS:\s+(nats://\S+)`)

// TestDevPrintsTheNATSURLOnStdoutOnly: nimbus dev prints its embedded
// NATS's URL with the token on standard output; the URL works, the same
// address without the token is refused, and the log never holds the token.
func TestDevPrintsTheNATSURLOnStdoutOnly(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"nimbus.hcl":     "function \"f\" {\n  runtime = \"provided.al2023\"\n  code { dir = \"code\" }\n}\n",
		"code/bootstrap": "#!/bin/sh\nexit 1\n",
	})
	dev := startDev(t, map[string]string{envStateDir: filepath.Join(dir, "state")}, dir)
	var m []string
	gatewaytest.Eventually(t, 30*time.Second, func() bool {
		m = natsLineRE.FindStringSubmatch(dev.stdout.String())
		return m != nil
	}, "nimbus dev to print its NATS URL; stdout:\n%s", dev.stdout)
	u, err := url.Parse(m[1])
	if err != nil || u.User == nil || len(u.User.Username()) != 64 {
		t.Fatalf("NATS URL %q has no token", m[1])
	}
	token := u.User.Username()
	nc, err := nats.Connect(m[1])
	if err != nil {
		t.Fatalf("connecting with the printed URL: %v", err)
	}
	defer nc.Close()
	if _, err := nc.RTT(); err != nil {
		t.Fatal(err)
	}
	u.User = nil
	if _, err := nats.Connect(u.String(), nats.MaxReconnects(0)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("the address without the token: %v, want %v", err, nats.ErrAuthorization)
	}
	if !strings.Contains(dev.stderr.String(), u.Host) || strings.Contains(dev.stderr.String(), token) {
		t.Fatalf("the log should name %s and not the token:\n%s", u.Host, dev.stderr)
	}
}
