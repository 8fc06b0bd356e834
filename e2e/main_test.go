package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/nimbus-fn/nimbus/internal/nomadtest"
	"github.com/nimbus-fn/nimbus/internal/rabbittest"
)

// onceDir holds what the suites build once per test binary (the nimbus CLI,
// test functions); TestMain removes it when the tests end.
var onceDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nimbus-e2e-once-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the e2e build dir:", err)
		os.Exit(1)
	}
	onceDir = dir
	// rabbittest.Main stops the shared rabbitmq-server node (booted only by
	// the tests that need one) after the last test.
	code := rabbittest.Main(m)
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// onceTempDir creates a dir under onceDir, for an artifact shared by tests.
func onceTempDir(prefix string) (string, error) { return os.MkdirTemp(onceDir, prefix) }

// agentRootDir is nomadtest.RootDir.
func agentRootDir(t *testing.T, prefix string) string { return nomadtest.RootDir(t, prefix) }

// mountsUnder is nomadtest.MountsUnder.
func mountsUnder(dir string) []string { return nomadtest.MountsUnder(dir) }
