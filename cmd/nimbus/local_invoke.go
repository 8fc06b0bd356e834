package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/local"
)

func init() {
	register("local invoke", command{
		summary: "run a function from a directory once, in-process (no Nomad, no gateway)",
		run:     runLocalInvoke,
	})
}

func runLocalInvoke(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "local invoke", "DIR")
	runtime := fs.String("runtime", "provided.al2023", "Lambda runtime (provided.al2023, python3.12, nodejs20.x, …)")
	handler := fs.String("handler", "", "handler (file.function for managed runtimes)")
	name := fs.String("name", "", "function name (default: the directory's name)")
	memory := fs.Int("memory", instance.DefaultMemoryMB, "memory size in MB")
	timeout := fs.Duration("timeout", instance.DefaultTimeout, "function timeout")
	eventPath := fs.String("event", "", "event JSON file, or - for stdin (default: {})")
	logLevel := fs.String("log-level", "warn", "platform log level")
	var envVars listFlag
	fs.Var(&envVars, "env", "environment variable K=V for the function (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError{code: 2}
	}
	dir, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	vars := map[string]string{}
	for _, kv := range envVars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--env %q: want K=V", kv)
		}
		vars[k] = v
	}
	event, err := readEvent(env, *eventPath)
	if err != nil {
		return err
	}
	fn := *name
	if fn == "" {
		fn = filepath.Base(dir)
	}
	cfg := &instance.Config{
		Function: fn,
		Runtime:  *runtime,
		Handler:  *handler,
		CodeDir:  dir,
		MemoryMB: *memory,
		Timeout:  *timeout,
		Env:      vars,
	}
	return localInvoke(ctx, env, cfg, event, *logLevel)
}

// readEvent reads the event from path ("-" is stdin; empty is {}).
func readEvent(env *cliEnv, path string) ([]byte, error) {
	switch path {
	case "":
		return []byte("{}"), nil
	case "-":
		b, err := io.ReadAll(env.stdin)
		if err != nil {
			return nil, fmt.Errorf("reading event from stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading event: %w", err)
	}
	return b, nil
}

// localInvoke runs one invocation of the function cfg describes in an
// in-process instance: the result goes to stdout, the function's logs and
// the START/END/REPORT lines to stderr. A function error returns exit
// status 1 after printing the error body. The spec-file path calls this
// with a Config built from the spec.
func localInvoke(ctx context.Context, env *cliEnv, cfg *instance.Config, event []byte, logLevel string) error {
	base, err := os.MkdirTemp("", "nimbus-local-invoke-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	c := *cfg
	c.StdoutPath = filepath.Join(base, "stdout.log")
	c.StderrPath = filepath.Join(base, "stderr.log")
	l := local.NewLauncher(filepath.Join(base, "instances"), newLogger(env, "nimbus", logLevel))
	h, err := l.Launch(ctx, &c)
	if err != nil {
		return err
	}
	client := &invokeapi.Client{Secret: h.Secret}
	resp, ierr := client.Invoke(ctx, h.Addr, &invokeapi.Request{Payload: event})
	var body []byte
	if ierr == nil {
		body, ierr = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	serr := h.Stop(stopCtx)
	// The sinks are closed (flushed) once the instance stopped.
	for _, p := range []string{c.StdoutPath, c.StderrPath} {
		if b, err := os.ReadFile(p); err == nil {
			_, _ = env.stderr.Write(b)
		}
	}
	if ierr != nil {
		return fmt.Errorf("invoking %s: %w", c.Function, ierr)
	}
	_, _ = env.stdout.Write(body)
	if len(body) > 0 && body[len(body)-1] != '\n' {
		fmt.Fprintln(env.stdout)
	}
	if serr != nil {
		fmt.Fprintf(env.stderr, "nimbus local invoke: stopping instance: %v\n", serr)
	}
	if resp.FunctionError != "" {
		return exitError{code: 1}
	}
	return nil
}
