package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/gateway/server"
)

// Item 7 of issue 11: a cluster gateway whose Nomad is unreachable says
// "not ready" with the reason on its health endpoint (Consul's check
// turns critical), and an invoke fails fast with ServiceException naming
// the cause instead of hanging.
func TestGatewayWithUnreachableNomad(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nomadAddr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused

	cfg := clusterConfig("127.0.0.1:0", "127.0.0.1:1") // consul is never asked: registration off, advertise set
	off := false
	cfg.Consul.Register, cfg.Consul.Advertise = &off, "192.0.2.1:9000"
	cfg.Nomad.Address = "http://" + nomadAddr
	cfg.Queue = &queue.Config{DataDir: t.TempDir()}
	c, err := New(cfg, Options{}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	s, err := server.New(cfg, c.Deps(gatewaytest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-served
		c.Close()
	})
	base := "http://" + s.Addr()

	var health struct{ Status, Reason string }
	gatewaytest.Eventually(t, 20*time.Second, func() bool {
		resp, err := http.Get(base + server.HealthPath)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		health.Status, health.Reason = "", ""
		_ = json.Unmarshal(b, &health)
		return resp.StatusCode == http.StatusServiceUnavailable && health.Status == "not ready"
	}, "health says not ready: %+v", health)
	if !strings.Contains(health.Reason, nomadAddr) || !strings.Contains(health.Reason, "connection refused") {
		t.Fatalf("health reason %q does not name the cause", health.Reason)
	}

	client := lambda.New(lambda.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(base), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "s", ""),
	})
	ictx, icancel := context.WithTimeout(context.Background(), time.Minute)
	defer icancel()
	_, err = client.Invoke(ictx, &lambda.InvokeInput{FunctionName: aws.String("hello"), Payload: []byte(`{}`)})
	var svc *types.ServiceException
	if !errors.As(err, &svc) || !strings.Contains(aws.ToString(svc.Message), "nomad catalog is unavailable") ||
		!strings.Contains(aws.ToString(svc.Message), "connection refused") {
		t.Fatalf("invoke with nomad unreachable: %v", err)
	}
	if ictx.Err() != nil {
		t.Fatal("the invoke waited for its deadline")
	}
}
