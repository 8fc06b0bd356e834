package main

import (
	"context"
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/nimbus-fn/nimbus/blueprints"
)

func init() {
	register("init", command{
		summary: "start a project from a blueprint or an application template (--list shows them)",
		run:     runInit,
	})
}

func runInit(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "init", "--list | --blueprint NAME DIR | --template NAME DIR")
	list := fs.Bool("list", false, "list the blueprints (name, runtime, description), then the templates")
	blueprint := fs.String("blueprint", "", "the blueprint to write into DIR")
	tmpl := fs.String("template", "", "the application template to write into DIR")
	name := fs.String("name", "", "function / project name (default: the base name of DIR)")
	module := fs.String("module", "", "Go module path, for projects with a go.mod (default: the name); an error for others")
	force := fs.Bool("force", false, "write into a non-empty DIR, replacing files of the same names")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *list {
		if *blueprint != "" || *tmpl != "" || *name != "" || *module != "" || *force || fs.NArg() != 0 {
			return fmt.Errorf("--list takes no other flags or arguments")
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		for _, b := range blueprints.List() {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Name, b.Runtime, b.Description)
		}
		for _, t := range blueprints.Templates() {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, "(template)", t.Description)
		}
		return tw.Flush()
	}
	if (*blueprint == "") == (*tmpl == "") || fs.NArg() != 1 {
		fs.Usage()
		return exitError{code: 2}
	}
	pick, kind := *blueprint, "blueprint"
	if *tmpl != "" {
		pick, kind = *tmpl, "template"
	}
	info, err := blueprints.Lookup(pick)
	if err != nil {
		return fmt.Errorf("%w; nimbus init --list shows them", err)
	}
	if info.Template != (kind == "template") {
		other := map[bool]string{true: "--template", false: "--blueprint"}[info.Template]
		return fmt.Errorf("%q is not a %s; use %s %s", pick, kind, other, pick)
	}
	dir := fs.Arg(0)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if *name == "" {
		*name = filepath.Base(abs)
	}
	data := blueprints.Data{Name: *name, Module: *module}
	if err := blueprints.ScaffoldWith(pick, dir, data, blueprints.Options{Force: *force}); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "wrote %s %s into %s\n", kind, pick, dir)
	if !info.Template {
		fmt.Fprintf(env.stdout, "next: nimbus validate %s && nimbus local invoke --event %s %s\n",
			dir, filepath.Join(dir, firstEvent(info)), dir)
	}
	return nil
}

func firstEvent(info blueprints.Info) string {
	if len(info.Events) == 0 {
		return "events/EVENT.json"
	}
	return info.Events[0].File
}
