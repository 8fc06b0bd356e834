package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestPositionalCountsArgumentsAroundFlags(t *testing.T) {
	var errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &errb, getenv: func(string) string { return "" }}
	for _, tc := range []struct {
		args []string
		want []string // nil: usage and exit status 2
	}{
		{[]string{"fn"}, []string{"fn"}},
		{[]string{"fn", "--x", "1", "dir"}, []string{"fn", "dir"}},
		{[]string{"--x", "1"}, nil},
		{[]string{"fn", "dir", "extra"}, nil},
	} {
		errb.Reset()
		fs := newFlags(env, "thing", "NAME [dir]")
		fs.String("x", "", "a flag")
		pos, err := positional(fs, tc.args, 1, 2)
		if tc.want == nil {
			var ee exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(errb.String(), "Usage: nimbus thing [flags] NAME [dir]") {
				t.Errorf("%q: err %v, stderr %q; want usage and exit status 2", tc.args, err, errb.String())
			}
			continue
		}
		if err != nil || strings.Join(pos, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%q: %q, %v; want %q", tc.args, pos, err, tc.want)
		}
	}
}

func TestNewTableAlignsUnderTheHeader(t *testing.T) {
	var out bytes.Buffer
	tw := newTable(&out, "NAME", "VERSION")
	if _, err := tw.Write([]byte("orders\t12\n")); err != nil {
		t.Fatal(err)
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := "NAME    VERSION\norders  12\n"; out.String() != want {
		t.Fatalf("table:\n%q\nwant\n%q", out.String(), want)
	}
}
