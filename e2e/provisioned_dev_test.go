package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// TestNimbusDevProvisionedConcurrency runs the real `nimbus dev` on a spec
// with provisioned_concurrency: the environments are initialised before any
// request (the gateway's gauge shows them), the first invocation is warm (no
// Init Duration in its REPORT line) and the function sees
// AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency.
func TestNimbusDevProvisionedConcurrency(t *testing.T) {
	code := testfn.Dir(t, "ctxcheck")
	g := startVersionsGateway(t, map[string]string{"warm.hcl": fmt.Sprintf(`
function "warm" {
  runtime = "provided.al2023"
  handler = "bootstrap"
  environments_per_instance = 2
  code {
    dir = %q
  }
  provisioned_concurrency {
    min = 2
  }
}
`, code)})

	gauge := regexp.MustCompile(`(?m)^nimbus_environments\{[^}]*function="warm"[^}]*group="provisioned"[^}]*\} (\S+)$`)
	eventually(t, 60*time.Second, func() bool {
		resp, err := http.Get(g.base + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := gauge.FindSubmatch(b)
		if m == nil {
			return false
		}
		n, _ := strconv.ParseFloat(string(m[1]), 64)
		return n >= 2
	}, "2 provisioned environments before the first request")

	out, err := g.lambda().Invoke(context.Background(), &lambda.InvokeInput{
		FunctionName: aws.String("warm"),
		LogType:      types.LogTypeTail,
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.FunctionError != nil {
		t.Fatalf("function error %s: %s", *out.FunctionError, out.Payload)
	}
	var rep struct {
		Env map[string]string `json:"env"`
	}
	if err := json.Unmarshal(out.Payload, &rep); err != nil {
		t.Fatalf("payload %s: %v", out.Payload, err)
	}
	if got := rep.Env["AWS_LAMBDA_INITIALIZATION_TYPE"]; got != "provisioned-concurrency" {
		t.Fatalf("AWS_LAMBDA_INITIALIZATION_TYPE = %q, want provisioned-concurrency", got)
	}
	logs, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "REPORT RequestId:") {
		t.Fatalf("no REPORT line in the log tail:\n%s", logs)
	}
	if strings.Contains(string(logs), "Init Duration") {
		t.Fatalf("the first invocation of a provisioned function was a cold start:\n%s", logs)
	}
}
