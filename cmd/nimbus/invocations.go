package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/nimbus-fn/nimbus/gateway/queue"
)

func init() {
	register("invocations", command{
		summary: "show async invocations: a function's recent ones, or one by request id",
		run:     runInvocations,
	})
}

// emptySHA256 is the payload hash of a GET.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func runInvocations(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "invocations", "FUNCTION | -id REQUEST_ID")
	endpoint := fs.String("endpoint", endpointFlagDefault(env), "gateway URL (env NIMBUS_ENDPOINT)")
	id := fs.String("id", "", "show one invocation by request id (JSON)")
	limit := fs.Int("limit", 50, "most invocations to list")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*id == "") == (fs.NArg() != 1) || fs.NArg() > 1 {
		fs.Usage()
		return exitError{code: 2}
	}
	base := strings.TrimRight(*endpoint, "/")
	if *id != "" {
		var st queue.Status
		if err := getSigned(ctx, env, base+queue.InvocationsPath+url.PathEscape(*id), &st); err != nil {
			return err
		}
		b, _ := json.MarshalIndent(&st, "", "  ")
		fmt.Fprintln(env.stdout, string(b))
		return nil
	}
	var list struct {
		Invocations []queue.Status `json:"invocations"`
	}
	u := fmt.Sprintf("%s%s%s/invocations?limit=%d", base, queue.FunctionsPath, url.PathEscape(fs.Arg(0)), *limit)
	if err := getSigned(ctx, env, u, &list); err != nil {
		return err
	}
	tw := newTable(env.stdout, "REQUEST ID", "STATE", "ATTEMPTS", "ENQUEUED", "UPDATED", "DETAIL")
	for _, st := range list.Invocations {
		state := st.State
		if state == queue.StateRetrying {
			state = fmt.Sprintf("retrying %d", st.Retries)
		}
		detail := st.Condition
		if st.Error != "" {
			detail = strings.TrimSpace(detail + " " + oneLine(st.Error, 60))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", st.RequestID, state, st.Attempts,
			st.EnqueuedAt.Local().Format(time.DateTime), st.UpdatedAt.Local().Format(time.DateTime), detail)
	}
	return tw.Flush()
}

// getSigned GETs u signed with SigV4 (as the SDK signs the Invoke API) and
// decodes the JSON answer into v.
func getSigned(ctx context.Context, env *cliEnv, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	c := lambdaClient(env, "")
	creds, err := c.Options().Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("reading credentials: %w", err)
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, emptySHA256, "lambda", c.Options().Region, time.Now()); err != nil {
		return fmt.Errorf("signing request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("asking the gateway: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the gateway's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Message string }
		_ = json.Unmarshal(b, &e)
		return fmt.Errorf("gateway answered %s: %s", resp.Status, e.Message)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding the gateway's answer: %w", err)
	}
	return nil
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
