package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// positional is parseArgs for a command taking least to most positional
// arguments: with any other number it prints the usage and asks for exit
// status 2.
func positional(fs *flag.FlagSet, args []string, least, most int) ([]string, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) < least || len(pos) > most {
		fs.Usage()
		return nil, exitError{code: 2}
	}
	return pos, nil
}

// newTable returns a writer that aligns tab-separated columns, with the
// header row already written; Flush prints it.
func newTable(w io.Writer, columns ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(columns, "\t"))
	return tw
}
