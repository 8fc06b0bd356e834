package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionStoreChoice: which store the version commands use, from the
// flags and the environment (the management API is reached at a closed
// port, so taking that path shows as a failure to ask the gateway).
func TestVersionStoreChoice(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		code    int
		out     string // in stdout (exit 0) or stderr
		noState bool   // the local store must not have been created
	}{
		{"endpoint env alone goes through the API", map[string]string{"NIMBUS_ENDPOINT": closedEndpoint},
			[]string{"versions", "fn"}, 1, "asking the gateway", true},
		{"endpoint flag goes through the API", nil,
			[]string{"alias", "list", "--endpoint", closedEndpoint, "fn"}, 1, "asking the gateway", true},
		{"endpoint flag beats the state dir variable", map[string]string{envStateDir: state},
			[]string{"versions", "--endpoint", closedEndpoint, "fn"}, 1, "asking the gateway", true},
		{"state dir variable beats the endpoint variable", map[string]string{envStateDir: state, "NIMBUS_ENDPOINT": closedEndpoint},
			[]string{"versions", "fn"}, 0, "fn has no published versions", false},
		{"state dir flag beats the endpoint variable", map[string]string{"NIMBUS_ENDPOINT": closedEndpoint},
			[]string{"layer", "versions", "--state-dir", state, "shared"}, 0, "VERSION", false},
		{"state dir and endpoint flags together", nil,
			[]string{"alias", "set", "--state-dir", state, "--endpoint", closedEndpoint, "fn", "live", "1"}, 1, "different version stores", true},
		{"endpoint with --nomad where it does nothing", nil,
			[]string{"versions", "--nomad", "--endpoint", closedEndpoint, "fn"}, 1, "does nothing with --nomad", true},
		{"a Nomad namespace through the API", map[string]string{"NIMBUS_ENDPOINT": closedEndpoint},
			[]string{"versions", "delete", "--namespace", "team", "fn", "1"}, 1, "--namespace is a Nomad namespace", true},
		{"a spec path through the API", map[string]string{"NIMBUS_ENDPOINT": closedEndpoint},
			[]string{"publish", "fn", "."}, 1, "deploy them first", true},
		{"a cluster key through the API", map[string]string{"NIMBUS_ENDPOINT": closedEndpoint},
			[]string{"publish", "--secret-key-file", "k", "fn"}, 1, "--secret-key-file is for --nomad", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.RemoveAll(state); err != nil {
				t.Fatal(err)
			}
			r := runCLI(t, tc.env, tc.args...)
			got := r.stdout
			if tc.code != 0 {
				got = r.stderr
			}
			if r.code != tc.code || !strings.Contains(got, tc.out) {
				t.Fatalf("nimbus %s: exit %d (want %d)\nstdout %s\nstderr %s\nwant %q", strings.Join(tc.args, " "), r.code, tc.code, r.stdout, r.stderr, tc.out)
			}
			if _, err := os.Stat(state); tc.noState && err == nil {
				t.Fatalf("the local store was created")
			}
		})
	}
}
