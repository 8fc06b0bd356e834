package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// defaultEndpoint is where `nimbus dev` and a default gateway listen.
const defaultEndpoint = "http://127.0.0.1:9000"

func init() {
	register("invoke", command{
		summary: "invoke a function through a gateway (Lambda Invoke API)",
		run:     runInvoke,
	})
}

// lambdaClient builds aws-sdk-go-v2's Lambda client for a gateway. Keys come
// from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (a dev gateway without
// keys accepts any); the region from AWS_REGION (default us-east-1).
func lambdaClient(env *cliEnv, endpoint string) *lambda.Client {
	get := func(k, def string) string {
		if v := env.getenv(k); v != "" {
			return v
		}
		return def
	}
	return lambda.New(lambda.Options{
		Region:       get("AWS_REGION", get("AWS_DEFAULT_REGION", "us-east-1")),
		BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(
			get("AWS_ACCESS_KEY_ID", "nimbus-dev"), get("AWS_SECRET_ACCESS_KEY", "nimbus-dev"), env.getenv("AWS_SESSION_TOKEN")),
	})
}

func endpointFlagDefault(env *cliEnv) string {
	if v := env.getenv("NIMBUS_ENDPOINT"); v != "" {
		return v
	}
	return defaultEndpoint
}

func runInvoke(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "invoke", "FUNCTION[:QUALIFIER]")
	payload := fs.String("payload", "", "event JSON, or @file to read it from a file (- for stdin)")
	logs := fs.Bool("log", false, "print the invocation's log tail to stderr")
	async := fs.Bool("async", false, "invoke asynchronously (InvocationType Event): queue the event and print only its request id on stdout")
	endpoint := fs.String("endpoint", endpointFlagDefault(env), "gateway URL (env NIMBUS_ENDPOINT)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError{code: 2}
	}
	body, err := readPayload(env, *payload)
	if err != nil {
		return err
	}
	in := &lambda.InvokeInput{FunctionName: aws.String(fs.Arg(0)), Payload: body}
	if *logs && !*async {
		in.LogType = types.LogTypeTail
	}
	if *async {
		in.InvocationType = types.InvocationTypeEvent
	}
	out, err := lambdaClient(env, *endpoint).Invoke(ctx, in)
	if err != nil {
		return fmt.Errorf("invoking %s: %w", fs.Arg(0), err)
	}
	if *async {
		// Only the request id on stdout, so scripts can capture it; the
		// hint goes to stderr.
		rid, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
		fmt.Fprintln(env.stdout, rid)
		fmt.Fprintf(env.stderr, "queued %s (status %d); see: nimbus invocations -id %s\n", rid, out.StatusCode, rid)
		return nil
	}
	if *logs && out.LogResult != nil {
		tail, err := base64.StdEncoding.DecodeString(*out.LogResult)
		if err == nil {
			fmt.Fprint(env.stderr, string(tail))
			if !strings.HasSuffix(string(tail), "\n") {
				fmt.Fprintln(env.stderr)
			}
		}
	}
	fmt.Fprintln(env.stdout, string(out.Payload))
	// A qualified call says which published version ran (an alias with a
	// routing weight picks one per invocation).
	if v := aws.ToString(out.ExecutedVersion); out.FunctionError == nil && v != "" && v != "$LATEST" {
		fmt.Fprintf(env.stderr, "executed version %s\n", v)
	}
	if out.FunctionError != nil {
		fmt.Fprintf(env.stderr, "function error (%s), executed version %s\n", *out.FunctionError, aws.ToString(out.ExecutedVersion))
		return exitError{code: 1}
	}
	return nil
}

func readPayload(env *cliEnv, p string) ([]byte, error) {
	switch {
	case p == "":
		return nil, nil
	case p == "@-":
		b, err := readAll(env.stdin)
		if err != nil {
			return nil, fmt.Errorf("reading payload from stdin: %w", err)
		}
		return b, nil
	case strings.HasPrefix(p, "@"):
		b, err := os.ReadFile(p[1:])
		if err != nil {
			return nil, fmt.Errorf("reading payload: %w", err)
		}
		return b, nil
	default:
		return []byte(p), nil
	}
}
