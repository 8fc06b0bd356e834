package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Publish, aliases and weighted routing in local mode, through the real
// nimbus CLI (publish, alias set, versions delete), a real Python function
// and the real aws-sdk-go-v2 client.

const versionedSpec = `function "hello" {
  runtime = "python3.12"
  handler = "app.handler"
  code {
    dir = "src"
  }
  url {
    qualifier = "live"
  }
  alias "live" {
    version = "1"
  }
}
`

func appPy(tag string) string {
	return "import os\n\ndef handler(event, context):\n" +
		"    return {\"tag\": \"" + tag + "\", \"version\": os.environ[\"AWS_LAMBDA_FUNCTION_VERSION\"], \"fv\": context.function_version}\n"
}

type versionReply struct {
	Tag     string `json:"tag"`
	Version string `json:"version"`
	FV      string `json:"fv"`
}

// invokeQ invokes hello with a qualifier and checks that the code that ran
// is the code of the version the gateway reports.
func invokeQ(t *testing.T, c *lambda.Client, qualifier string) string {
	t.Helper()
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("hello"), Qualifier: aws.String(qualifier), Payload: []byte(`{}`)})
	if err != nil {
		t.Fatalf("invoke hello:%s: %v", qualifier, err)
	}
	if out.FunctionError != nil {
		t.Fatalf("hello:%s function error %s: %s", qualifier, *out.FunctionError, out.Payload)
	}
	var r versionReply
	if err := json.Unmarshal(out.Payload, &r); err != nil {
		t.Fatalf("hello:%s answered %s", qualifier, out.Payload)
	}
	exec := aws.ToString(out.ExecutedVersion)
	want := map[string]string{"1": "one", "2": "two", "$LATEST": "latest"}[exec]
	if r.Tag != want || r.Version != exec || r.FV != exec {
		t.Fatalf("hello:%s: executed version %q but the function answered %+v", qualifier, exec, r)
	}
	return exec
}

func TestPublishAndWeightedAliasLocal(t *testing.T) {
	g := startVersionsGateway(t, map[string]string{"nimbus.hcl": versionedSpec, "src/app.py": appPy("one")})
	c := g.lambda()

	out := g.mustCLI(t, "publish", "hello", "--description", "first")
	if !strings.Contains(out, "published hello version 1") || !strings.Contains(out, "alias live -> 1") {
		t.Fatalf("publish 1: %s", out)
	}
	writeTree(t, g.specDir, map[string]string{"src/app.py": appPy("two")})
	if out = g.mustCLI(t, "publish", "hello"); !strings.Contains(out, "published hello version 2") {
		t.Fatalf("publish 2: %s", out)
	}
	if out = g.mustCLI(t, "publish", "hello"); !strings.Contains(out, "unchanged since version 2") {
		t.Fatalf("publish unchanged: %s", out)
	}
	writeTree(t, g.specDir, map[string]string{"src/app.py": appPy("latest")})
	g.awaitQualifier(t, "hello", "2", true)

	// Versions and $LATEST run their own code.
	for q, want := range map[string]string{"1": "1", "2": "2", "$LATEST": "$LATEST", "live": "1"} {
		// The catalog reloads the edited spec dir on its own; $LATEST may
		// still run the previous code for a moment.
		if q == "$LATEST" {
			eventually(t, 10*time.Second, func() bool {
				o, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("hello"), Payload: []byte(`{}`)})
				return err == nil && strings.Contains(string(o.Payload), `"latest"`)
			}, "$LATEST runs the edited code")
		}
		if got := invokeQ(t, c, q); got != want {
			t.Fatalf("qualifier %s executed %s, want %s", q, got, want)
		}
	}
	_, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("hello:nope"), Payload: []byte(`{}`)})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("unknown alias: %v", err)
	}

	// 20% to version 2: count over many invocations and test the split with
	// an exact binomial test (a fixed tolerance would flake or be loose).
	const weight, n = 0.2, 1500
	g.mustCLI(t, "alias", "set", "hello", "live", "1", "--weight", "v2=0.2")
	// nimbus dev swaps in the new routing at once: from the first
	// invocation that runs version 2 on, every one routes by the weight.
	eventually(t, 20*time.Second, func() bool { return invokeQ(t, c, "live") == "2" }, "alias live routes to version 2")
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	jobs := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:" + e2eRegion + ":" + e2eAccount + ":function:hello:live"), Payload: []byte(`{}`)})
				key := "error"
				if err != nil {
					key = "error: " + oneLineErr(err)
				}
				if err == nil && out.FunctionError == nil {
					var r versionReply
					_ = json.Unmarshal(out.Payload, &r)
					key = aws.ToString(out.ExecutedVersion)
					if r.Version != key {
						key = fmt.Sprintf("mismatch %s/%s", key, r.Version)
					}
				}
				mu.Lock()
				counts[key]++
				mu.Unlock()
			}
		}()
	}
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	if counts["1"]+counts["2"] != n {
		t.Fatalf("outcomes %v", counts)
	}
	p := binomialPValue(counts["2"], n, weight)
	t.Logf("alias live 1 + 2@%.2f over %d invocations: version 1 %d, version 2 %d (%.1f%%), two-sided binomial p = %.3g",
		weight, n, counts["1"], counts["2"], 100*float64(counts["2"])/n, p)
	if p < 1e-6 {
		t.Fatalf("version 2 ran %d of %d times: not a %.0f%% split (binomial p = %.3g)", counts["2"], n, weight*100, p)
	}

	// The function URL follows its alias; a version an alias routes to
	// cannot be deleted; completing the shift frees version 1.
	if out, err := g.cli(t, "versions", "delete", "hello", "2"); err == nil || !strings.Contains(out, "alias live routes to it") {
		t.Fatalf("deleting a routed version: %v %s", err, out)
	}
	g.mustCLI(t, "alias", "set", "hello", "live", "2")
	// 20 in a row: under the old 20% routing that has odds of 1e-14.
	eventually(t, 20*time.Second, func() bool {
		for range 20 {
			if invokeQ(t, c, "live") != "2" {
				return false
			}
		}
		return true
	}, "alias live shifted to version 2")
	for range 10 {
		r := mustDo(t, mustRequest("GET", g.base+"/url/hello/"))
		if r.StatusCode != 200 || !strings.Contains(string(r.body), `"tag": "two"`) && !strings.Contains(string(r.body), `"tag":"two"`) {
			t.Fatalf("function URL after the shift: %d %s", r.StatusCode, r.body)
		}
	}
	if out := g.mustCLI(t, "versions", "delete", "hello", "1"); !strings.Contains(out, "deleted version 1") {
		t.Fatal(out)
	}
	g.awaitQualifier(t, "hello", "1", false)
	if _, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("hello"), Qualifier: aws.String("1"), Payload: []byte(`{}`)}); !errors.As(err, &nf) {
		t.Fatalf("deleted version still invocable: %v", err)
	}
	if got := invokeQ(t, c, "live"); got != "2" {
		t.Fatalf("live after the shift ran %s", got)
	}
}

// The exact test itself: it accepts a fair count and rejects a count that
// ignores the weight.
func TestBinomialPValue(t *testing.T) {
	if p := binomialPValue(300, 1500, 0.2); p < 0.9 {
		t.Errorf("the expected count gives p = %g", p)
	}
	if p := binomialPValue(0, 1500, 0.2); p > 1e-100 {
		t.Errorf("no traffic to the weighted version gives p = %g", p)
	}
	if p := binomialPValue(750, 1500, 0.2); p > 1e-100 {
		t.Errorf("an even split gives p = %g", p)
	}
	if p := binomialPValue(2, 10, 0.2); p < 0.99 {
		t.Errorf("2 of 10 gives p = %g", p)
	}
}

// oneLineErr is err's message on one line, shortened, as an outcome key.
func oneLineErr(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
