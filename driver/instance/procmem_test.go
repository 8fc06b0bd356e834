package instance

import (
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"
	"time"
)

func TestStatmRSS(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1234 56 7 8 0 9 0\n", 56 * pageSize, true},
		{"0 0 0 0 0 0 0\n", 0, true}, // a zombie
		{"1234\n", 0, false},
		{"", 0, false},
	} {
		got, ok := statmRSS([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("statmRSS(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestGroupRSS runs a real process group (a shell and its child) and
// checks that both are found, sampled through held-open files, and dropped
// once they are gone.
func TestGroupRSS(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 60 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL); _ = cmd.Wait() })

	g := newGroupRSS(pgid)
	defer g.close()
	eventually(t, 5*time.Second, "both group members found", func() bool {
		g.rescan()
		return len(g.members) == 2
	})
	if _, ok := g.members[pgid]; !ok {
		t.Fatalf("members %v do not include the group leader %d", g.members, pgid)
	}
	if rss := g.rss(); rss <= 0 {
		t.Fatalf("group rss = %d, want > 0", rss)
	}
	// Our own process is not a member.
	if g.inGroup(os.Getpid()) {
		t.Fatal("the test process counted as a group member")
	}

	main, err := openRSS(pgid)
	if err != nil {
		t.Fatal(err)
	}
	defer main.close()
	if n, ok := main.rss(); !ok || n <= 0 {
		t.Fatalf("main rss = %d, %v", n, ok)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	_ = cmd.Wait()
	// The reaped leader's held file fails; the orphaned sleep may linger as
	// a zombie of init for a moment, so poll until the group is empty.
	if _, ok := main.rss(); ok {
		t.Fatal("statm of a reaped process still read")
	}
	eventually(t, 5*time.Second, "members dropped", func() bool {
		_ = g.rss()
		g.rescan()
		return len(g.members) == 0
	})
}

func TestProcsFor(t *testing.T) {
	for _, tc := range []struct{ envs, cpus, want int }{
		{1, 2, 1}, {4, 2, 1}, {5, 2, 2}, {64, 2, 2}, {64, 32, 16}, {0, 4, 1}, {3, 1, 1},
	} {
		if got := procsFor(tc.envs, tc.cpus); got != tc.want {
			t.Errorf("procsFor(%d, %d) = %d, want %d", tc.envs, tc.cpus, got, tc.want)
		}
	}
}

func TestTuneRuntimeKeepsOperatorSettings(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	gc := debug.SetGCPercent(100)
	debug.SetGCPercent(gc)
	t.Cleanup(func() { runtime.GOMAXPROCS(procs); debug.SetGCPercent(gc) })

	set := map[string]string{"GOMAXPROCS": "7", "GOGC": "300"}
	tuneRuntime(&Config{Environments: 64}, func(k string) string { return set[k] })
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS changed to %d despite the operator's setting", got)
	}
	if got := debug.SetGCPercent(gc); got != gc {
		t.Errorf("GC percent changed to %d despite the operator's setting", got)
	}

	tuneRuntime(&Config{Environments: 1}, func(string) string { return "" })
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("GOMAXPROCS = %d for one environment, want 1", got)
	}
	if got := debug.SetGCPercent(gc); got != instanceGOGC {
		t.Errorf("GC percent = %d, want %d", got, instanceGOGC)
	}
}
