package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nimbus-fn/nimbus/specs"
)

func init() {
	register("validate", command{
		summary: "check function specs; report problems with file:line:col",
		run:     runValidate,
	})
}

// specVars collects repeatable -var name=value flags.
type specVars map[string]string

func (v specVars) String() string { return "" }

func (v specVars) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want name=value, got %q", s)
	}
	v[name] = value
	return nil
}

func runValidate(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "validate", "[spec file or dir]")
	vars := specVars{}
	fs.Var(vars, "var", "set a spec variable, name=value (repeatable)")
	asJSON := fs.Bool("json", false, "print the validated specs as canonical JSON (indented)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("want at most one spec file or directory, got %d", fs.NArg())
	}
	path := "."
	if fs.NArg() == 1 {
		path = fs.Arg(0)
	}
	file, diags := specs.Load(path, &specs.Options{Vars: vars, Env: env.getenv})
	if len(diags) > 0 {
		fmt.Fprint(env.stderr, specs.FormatDiagnostics(diags, nil))
	}
	if diags.HasErrors() {
		return exitError{code: 1}
	}
	if *asJSON {
		canon, err := specs.EncodeFile(file)
		if err != nil {
			return err
		}
		var out bytes.Buffer
		if err := json.Indent(&out, canon, "", "  "); err != nil {
			return fmt.Errorf("indenting JSON: %w", err)
		}
		out.WriteByte('\n')
		_, err = env.stdout.Write(out.Bytes())
		return err
	}
	fmt.Fprintf(env.stdout, "%s, %s valid\n", plural(len(file.Functions), "function"), plural(len(file.Layers), "layer"))
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
