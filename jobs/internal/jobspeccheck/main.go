// Command jobspeccheck parses HCL jobspecs with Nomad's jobspec2 parser (as
// `nomad job run` does before it submits) and prints each as the API JSON
// ({"Job": …}), or the parse error with exit status 1.
//
// Usage: jobspeccheck file.nomad.hcl
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/hashicorp/nomad/api"
	"github.com/hashicorp/nomad/jobspec2"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: jobspeccheck file.nomad.hcl")
		os.Exit(2)
	}
	src, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	job, err := jobspec2.ParseWithConfig(&jobspec2.ParseConfig{Path: os.Args[1], Body: src, Strict: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "parse error:", err)
		os.Exit(1)
	}
	out, err := json.MarshalIndent(struct{ Job *api.Job }{job}, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(append(out, '\n'))
}
