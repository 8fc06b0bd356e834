// Command pipeline is both functions of this project in one binary: the
// spec gives each a handler (ingest or process), which the runtime passes
// in _HANDLER, and main starts that one.
package main

import (
	"fmt"
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	if err := run(os.Getenv("_HANDLER"), os.Getenv); err != nil {
		log.Fatal(err)
	}
}

// run connects to NATS_URL and starts the handler called name. STREAM,
// SUBJECT and RESULTS_SUBJECT come from the spec's environment.
func run(name string, getenv func(string) string) error {
	cfg := map[string]string{}
	for _, k := range []string{"NATS_URL", "STREAM", "SUBJECT", "RESULTS_SUBJECT"} {
		if cfg[k] = getenv(k); cfg[k] == "" {
			return fmt.Errorf("%s is not set", k)
		}
	}
	if name != "ingest" && name != "process" {
		return fmt.Errorf("handler %q: want ingest or process", name)
	}
	nc, err := nats.Connect(cfg["NATS_URL"], nats.Name(getenv("AWS_LAMBDA_FUNCTION_NAME")))
	if err != nil {
		return fmt.Errorf("connecting to NATS: %w", err)
	}
	if name == "process" {
		lambda.Start((&Process{Out: nc, Results: cfg["RESULTS_SUBJECT"]}).Handle)
		return nil
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	lambda.Start((&Ingest{JS: js, Stream: cfg["STREAM"], Subject: cfg["SUBJECT"]}).Handle)
	return nil
}
