package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/queue"
)

func init() {
	register("invocations", command{
		summary: "show async invocations: a function's recent ones, or one by request id",
		run:     runInvocations,
	})
}

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
	c, err := newMgmtClient(env, "")
	if err != nil {
		return err
	}
	err = c.call(ctx, http.MethodGet, u, nil, v)
	var ae *apiError
	if errors.As(err, &ae) {
		return fmt.Errorf("gateway answered %d %s: %s", ae.Status, http.StatusText(ae.Status), ae.Message)
	}
	return err
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
