//go:build linux

package sandbox

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// run starts argv in a fresh environment with the defaults a function gets
// and returns its output and wait status.
func run(t *testing.T, argv ...string) (string, int) {
	t.Helper()
	if len(Missing()) > 0 {
		t.Skipf("no isolation here: %v", Missing())
	}
	root := t.TempDir()
	code := t.TempDir()
	if err := os.WriteFile(code+"/hello", []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	plan := &Plan{
		Root:   root,
		Mounts: append(DefaultMounts(), Mount{Source: code, Target: TaskRoot}),
		TmpMB:  4,
		UID:    64999, GID: 64999,
		Files: map[string]string{"/etc/passwd": Passwd(64999, 64999)},
		Argv:  argv,
		Env:   []string{"PATH=" + Path},
		Dir:   TaskRoot,
	}
	p, err := Command(plan)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	p.Cmd.Stdout, p.Cmd.Stderr = &out, &out
	err = p.Cmd.Start()
	p.Started()
	if err != nil {
		t.Fatal(err)
	}
	werr := p.Cmd.Wait()
	ws, ok := p.Status()
	if !ok {
		t.Fatalf("init reported no status (%v): %s", werr, out.String())
	}
	return out.String(), ws.ExitStatus()
}

func TestShellSeesOnlyItsEnvironment(t *testing.T) {
	out, code := run(t, "/bin/sh", "-c", `id -u; cat /var/task/hello; echo; cat /etc/shadow 2>&1; touch /var/task/x 2>&1; touch /usr/x 2>&1; ls /proc | grep -c '^[0-9]'; { head -c 5000000 /dev/zero > /tmp/big; } 2>&1; echo done`)
	t.Logf("%s (exit %d)", out, code)
	for _, want := range []string{"64999\n", "hi\n", "/etc/shadow: No such file", "Read-only file system", "No space left", "done"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestEnterJoinsARunningEnvironment runs a command the way `nomad alloc
// exec` does: it sees the environment's root and processes, as its user.
func TestEnterJoinsARunningEnvironment(t *testing.T) {
	if len(Missing()) > 0 {
		t.Skipf("no isolation here: %v", Missing())
	}
	code := t.TempDir()
	if err := os.WriteFile(code+"/hello", []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Command(&Plan{
		Root: t.TempDir(), Mounts: append(DefaultMounts(), Mount{Source: code, Target: TaskRoot}),
		UID: 64997, GID: 64997, Argv: []string{"/bin/sleep", "30"}, Env: []string{"PATH=" + Path}, Dir: TaskRoot,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Cmd.Start()
	p.Started()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Cmd.Process.Kill(); _ = p.Cmd.Wait() })
	init := p.Cmd.Process.Pid
	// The bootstrap runs once the init has a child.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(init) + "/task/" + strconv.Itoa(init) + "/children")
		if len(strings.TrimSpace(string(b))) > 0 {
			break
		}
		select {
		case <-deadline:
			t.Fatal("the environment's bootstrap never started")
		case <-tick.C:
		}
	}
	cmd, err := EnterCommand(&Plan{Argv: []string{"/bin/sh", "-c", "id -u; cat hello; echo; cat /proc/1/cmdline; echo; cat /etc/shadow"}, Env: []string{"PATH=" + Path}, Dir: TaskRoot, UID: 64997, GID: 64997, Target: init})
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	t.Logf("%s (%v)", out, err)
	if err == nil {
		t.Error("cat /etc/shadow succeeded")
	}
	for _, want := range []string{"64997\n", "hi\n", InitName, "No such file"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestZygoteSpawnsAgainAndAgain starts bootstraps from one prepared
// environment: each gets its own output and wait status, and what one
// leaves behind is gone before the next starts.
func TestZygoteSpawnsAgainAndAgain(t *testing.T) {
	if len(Missing()) > 0 {
		t.Skipf("no isolation here: %v", Missing())
	}
	z, err := ZygoteCommand(&Plan{
		Root: t.TempDir(), Mounts: DefaultMounts(), TmpMB: 4, UID: 64996, GID: 64996,
		Argv: []string{"/bin/sh", "-c", `echo "$(cat /proc/[0-9]*/comm | grep -c sleep) $(cat /tmp/n 2>/dev/null | wc -l)"; sleep 60 & echo x >> /tmp/n; exit 3`},
		Env:  []string{"PATH=" + Path}, Dir: "/",
	})
	if err != nil {
		t.Fatal(err)
	}
	z.Cmd.Stderr = os.Stderr
	err = z.Cmd.Start()
	z.Started()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { z.Close(); _ = z.Cmd.Wait() })
	if err := z.Ready(); err != nil {
		t.Fatal(err)
	}
	// No sleep left by the previous bootstrap; /tmp is the environment's.
	for i, want := range []string{"0 0\n", "0 1\n", "0 2\n"} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		pid, wait, err := z.Spawn(w, w)
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		ws := wait()
		out := make([]byte, 100)
		n, _ := r.Read(out)
		r.Close()
		if ws.ExitStatus() != 3 || string(out[:n]) != want {
			t.Errorf("spawn %d (pid %d): status %v output %q, want 3 and %q", i, pid, ws.ExitStatus(), out[:n], want)
		}
	}
}
