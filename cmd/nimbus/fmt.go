package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/nimbus-fn/nimbus/specs"
)

func init() {
	register("fmt", command{
		summary: "format spec files in the canonical HCL layout",
		run:     runFmt,
	})
}

// runFmt formats spec files like gofmt: to stdout by default, in place with
// -w, or only listing the files that need it with -check. A directory
// means its *.hcl files (not subdirectories); "-" means stdin.
func runFmt(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "fmt", "[spec file, dir or - ...]")
	check := fs.Bool("check", false, "list files whose formatting differs and exit 1 if any; change nothing")
	write := fs.Bool("w", false, "write the result back to each file instead of printing it; list the files changed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *check && *write {
		return errors.New("use -check or -w, not both")
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{"."}
	}
	var files []string
	for _, p := range paths {
		if p == "-" {
			files = append(files, p)
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		in, err := specs.SpecFiles(p)
		if err != nil {
			return err
		}
		files = append(files, in...)
	}

	failed := false
	for _, name := range files {
		src, err := fmtReadInput(env, name)
		if err != nil {
			return err
		}
		out, diags := specs.FormatFile(name, src)
		if diags.HasErrors() {
			fmt.Fprint(env.stderr, specs.FormatDiagnostics(diags, map[string]*hcl.File{name: {Bytes: src}}))
			failed = true
			continue
		}
		changed := !bytes.Equal(src, out)
		switch {
		case *check:
			if changed {
				fmt.Fprintln(env.stdout, name)
				failed = true
			}
		case *write && name != "-":
			if changed {
				if err := fmtWriteFile(name, out); err != nil {
					return err
				}
				fmt.Fprintln(env.stdout, name)
			}
		default:
			if _, err := env.stdout.Write(out); err != nil {
				return err
			}
		}
	}
	if failed {
		return exitError{code: 1}
	}
	return nil
}

func fmtReadInput(env *cliEnv, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(env.stdin, specs.MaxFileBytes+1))
	}
	return os.ReadFile(name)
}

// fmtWriteFile replaces name's content, keeping its permissions.
func fmtWriteFile(name string, data []byte) error {
	fi, err := os.Stat(name)
	if err != nil {
		return err
	}
	return os.WriteFile(name, data, fi.Mode().Perm())
}
