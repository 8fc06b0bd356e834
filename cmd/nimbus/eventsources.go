package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/gateway/sources"
)

func init() {
	register("event-sources", command{
		summary: "show event-source mappings with state, last result, counters and lag",
		run:     runEventSources,
	})
}

func runEventSources(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "event-sources", "[FUNCTION]")
	endpoint := fs.String("endpoint", endpointFlagDefault(env), "gateway URL (env NIMBUS_ENDPOINT)")
	asJSON := fs.Bool("json", false, "print the full status as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return exitError{code: 2}
	}
	u := strings.TrimRight(*endpoint, "/") + server.EventSourcesPath
	if fs.NArg() == 1 {
		u += "?function=" + url.QueryEscape(fs.Arg(0))
	}
	var list struct {
		EventSourceMappings []sources.Status `json:"EventSourceMappings"`
	}
	if err := getSigned(ctx, env, u, &list); err != nil {
		return err
	}
	if *asJSON {
		b, _ := json.MarshalIndent(list.EventSourceMappings, "", "  ")
		fmt.Fprintln(env.stdout, string(b))
		return nil
	}
	tw := newTable(env.stdout, "FUNCTION", "NAME", "TYPE", "STATE", "LAST RESULT", "IN", "FILTERED", "BATCHES", "ERRORS", "FAILED", "LAG")
	for _, st := range list.EventSourceMappings {
		name := st.Name
		if name == "" {
			name = st.UUID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", st.Function, name, st.Spec.Type, st.State,
			oneLine(st.LastProcessingResult, 50), st.RecordsIn, st.RecordsFiltered, st.Batches, st.FunctionErrors,
			st.RecordsFailed, lagText(st.Lag))
	}
	return tw.Flush()
}

// lagText sums the backlog and names the partitions that have one.
func lagText(lag []sources.PartitionLag) string {
	if len(lag) == 0 {
		return "-"
	}
	var total int64
	var parts []string
	for _, l := range lag {
		total += l.Records
		if l.Records > 0 && len(parts) < 3 {
			parts = append(parts, fmt.Sprintf("%s=%d", l.Partition, l.Records))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, " "))
}
