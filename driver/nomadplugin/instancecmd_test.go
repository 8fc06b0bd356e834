package nomadplugin_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/nomadplugin"
)

func TestRunInstanceRecordsExitStatus(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "instance.json")
	b, _ := json.Marshal(&instance.Config{Function: "fn", Version: "$LATEST", Runtime: "provided", CodeDir: dir, StateDir: dir})
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		cfg      string
		runErr   error
		wantCode int
		wantErr  bool
	}{
		{"clean stop", cfgPath, nil, 0, false},
		{"stopped by its context", cfgPath, context.Canceled, 0, false},
		{"instance failure", cfgPath, errors.New("binding invoke port: address in use"), 1, true},
		{"missing config", filepath.Join(dir, "nope.json"), nil, 2, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			statusPath := filepath.Join(t.TempDir(), "exit.json")
			var got *instance.Config
			run := func(_ context.Context, cfg *instance.Config, _ hclog.Logger) error {
				got = cfg
				return c.runErr
			}
			code := nomadplugin.RunInstance(context.Background(), nomadplugin.InstanceOptions{ConfigPath: c.cfg, StatusPath: statusPath}, run, hclog.NewNullLogger())
			if code != c.wantCode {
				t.Errorf("exit code = %d, want %d", code, c.wantCode)
			}
			if c.wantCode != 2 && (got == nil || got.Function != "fn") {
				t.Errorf("runner got config %+v", got)
			}
			b, err := os.ReadFile(statusPath)
			if err != nil {
				t.Fatalf("no exit status recorded: %v", err)
			}
			var st struct {
				ExitCode int    `json:"exit_code"`
				Error    string `json:"error"`
			}
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatal(err)
			}
			if st.ExitCode != c.wantCode || (st.Error != "") != c.wantErr {
				t.Errorf("status = %+v", st)
			}
		})
	}
}
