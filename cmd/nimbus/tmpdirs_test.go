package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// deadPid returns the pid of a process that ran and was reaped.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true to get a dead pid: %v", err)
	}
	return cmd.Process.Pid
}

func TestSweepRemovesOnlyDirsOfDeadOwners(t *testing.T) {
	base := t.TempDir()
	me := os.Getpid()
	dead := deadPid(t)
	dirs := map[string]string{ // name → owner file ("" = none)
		"nimbus-dev-dead":     fmt.Sprintf("%d %d\n", dead, 12345),
		"nimbus-queue-dead":   fmt.Sprintf("%d\n", dead),
		"nimbus-dev-reused":   fmt.Sprintf("%d %d\n", me, procStartTicks(me)+1), // my pid, another start
		"nimbus-dev-alive":    fmt.Sprintf("%d %d\n", me, procStartTicks(me)),
		"nimbus-queue-alive":  fmt.Sprintf("%d\n", me),
		"nimbus-dev-noowner":  "",
		"nimbus-dev-garbage":  "not a pid\n",
		"other-dead":          fmt.Sprintf("%d\n", dead),
		"nimbus-e2e-whatever": fmt.Sprintf("%d\n", dead),
	}
	for name, owner := range dirs {
		d := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Join(d, "instances", "x"), 0o755); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(d, ownerFile), []byte(owner), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	removed, err := sweepStaleTempDirs(base, staleTempPrefixes)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(removed)
	want := []string{filepath.Join(base, "nimbus-dev-dead"), filepath.Join(base, "nimbus-dev-reused"), filepath.Join(base, "nimbus-queue-dead")}
	if strings.Join(removed, "\n") != strings.Join(want, "\n") {
		t.Fatalf("removed:\n%s\nwant:\n%s", strings.Join(removed, "\n"), strings.Join(want, "\n"))
	}
	ents, _ := os.ReadDir(base)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	sort.Strings(left)
	if got := strings.Join(left, " "); got != "nimbus-dev-alive nimbus-dev-garbage nimbus-dev-noowner nimbus-e2e-whatever nimbus-queue-alive other-dead" {
		t.Fatalf("left: %s", got)
	}
}

// TestDevOwnsItsTempDirAndSweepsStaleOnes: nimbus dev removes the state dir
// of a dev that was killed, marks its own with its pid, and keeps the queue
// inside it (no nimbus-queue-* dir of its own).
func TestDevOwnsItsTempDirAndSweepsStaleOnes(t *testing.T) {
	needPython(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	stale := filepath.Join(tmp, "nimbus-dev-killed")
	if err := os.MkdirAll(filepath.Join(stale, "queue"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, ownerFile), []byte(fmt.Sprintf("%d 1\n", deadPid(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := t.TempDir()
	writeTree(t, spec, map[string]string{
		"nimbus.hcl": "function \"py\" {\n  runtime = \"python3.12\"\n  handler = \"app.handler\"\n  code {\n    dir = \".\"\n  }\n}\n",
		"app.py":     "def handler(event, context):\n    return 7\n",
	})
	dev := startDev(t, map[string]string{envStateDir: filepath.Join(spec, "state")}, spec)
	if status, _, body := dev.invoke(t, "py", "{}"); status != 200 || body != "7" {
		t.Fatalf("invoke: %d %s", status, body)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the killed dev's dir is still there: %v", err)
	}
	ents, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "nimbus-queue-") {
			t.Errorf("nimbus dev made a queue dir of its own: %s", e.Name())
		}
		if strings.HasPrefix(e.Name(), "nimbus-dev-") {
			mine = append(mine, e.Name())
		}
	}
	if len(mine) != 1 {
		t.Fatalf("nimbus-dev-* dirs: %v, want this dev's one", mine)
	}
	b, err := os.ReadFile(filepath.Join(tmp, mine[0], ownerFile))
	if pid, start, ok := parseOwner(string(b)); err != nil || !ok || pid != os.Getpid() || start != procStartTicks(os.Getpid()) {
		t.Fatalf("owner file %q (%v), want this process", b, err)
	}
	if _, err := os.Stat(filepath.Join(tmp, mine[0], "queue")); err != nil {
		t.Fatalf("the queue is not in the state dir: %v", err)
	}
}
