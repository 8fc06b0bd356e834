//go:build linux

package sandbox

import (
	"bytes"
	"os"
	"strings"
	"testing"
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
