package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

func init() {
	register("urls", command{
		summary: "list function URLs served by a gateway",
		run:     runURLs,
	})
}

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(r) }

func runURLs(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "urls", "")
	endpoint := fs.String("endpoint", endpointFlagDefault(env), "gateway URL (env NIMBUS_ENDPOINT)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c := lambdaClient(env, *endpoint)
	fns, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil {
		return fmt.Errorf("listing functions: %w", err)
	}
	tw := newTable(env.stdout, "FUNCTION", "AUTH", "MODE", "URL", "PATH URL")
	base := strings.TrimRight(*endpoint, "/")
	for _, f := range fns.Functions {
		name := aws.ToString(f.FunctionName)
		urls, err := c.ListFunctionUrlConfigs(ctx, &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("listing URL of %s: %w", name, err)
		}
		for _, u := range urls.FunctionUrlConfigs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, u.AuthType, u.InvokeMode, aws.ToString(u.FunctionUrl), base+"/url/"+name+"/")
		}
	}
	return tw.Flush()
}
