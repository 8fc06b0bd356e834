package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	metering "github.com/nimbus-fn/nimbus/gateway/usage"
)

func init() {
	register("usage", command{
		summary: "show metered usage (requests, GB-seconds, provisioned GB-seconds) per function version",
		run:     runUsage,
	})
}

func runUsage(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "usage", "[FUNCTION]")
	endpoint := fs.String("endpoint", endpointFlagDefault(env), "gateway URL (env NIMBUS_ENDPOINT)")
	since := fs.String("since", "720h", "start of the span: a duration back from now (24h) or an RFC 3339 time; whole hours")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return exitError{code: 2}
	}
	if _, ok := metering.ParseSince(*since, time.Now()); !ok {
		return fmt.Errorf("--since %q: want a positive duration (24h) or an RFC 3339 time", *since)
	}
	q := url.Values{"since": {*since}}
	if fs.NArg() == 1 {
		q.Set("function", fs.Arg(0))
	}
	var rep metering.Report
	if err := getSigned(ctx, env, strings.TrimRight(*endpoint, "/")+metering.Path+"?"+q.Encode(), &rep); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "usage from %s to %s\n", rep.Since.Local().Format(time.DateTime), rep.Until.Local().Format(time.DateTime))
	tw := newTable(env.stdout, "FUNCTION", "VERSION", "REQUESTS", "GB-SECONDS", "PROVISIONED GB-SECONDS")
	for _, r := range rep.Usage {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.3f\t%.3f\n", r.Function, r.Version, r.Requests, r.GBSeconds, r.ProvisionedGBSeconds)
	}
	fmt.Fprintf(tw, "%s\t%s\t%d\t%.3f\t%.3f\n", "total", "", rep.Total.Requests, rep.Total.GBSeconds, rep.Total.ProvisionedGBSeconds)
	return tw.Flush()
}
