package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

// agentRootDir creates a root dir for a Nomad agent and removes it when the
// test ends, after the agent and its processes (register it before them:
// cleanups run last-in first-out). It is not t.TempDir because a killed
// agent can leave mounts below it (secrets tmpfs): then it is left, and the
// test log says so, rather than walked into.
func agentRootDir(t *testing.T, prefix string) string {
	t.Helper()
	root, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if m := mountsUnder(root); len(m) > 0 {
			t.Logf("leaving %s: mounts remain below it: %s", root, strings.Join(m, ", "))
			return
		}
		if err := os.RemoveAll(root); err != nil {
			t.Logf("removing %s: %v", root, err)
		}
	})
	return root
}

// mountsUnder lists the mount points at or below dir (from
// /proc/self/mountinfo; none where it cannot be read).
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	dir = filepath.Clean(dir)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := strings.ReplaceAll(fields[4], `\040`, " ")
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}
