package instance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
)

// vmHWM is a process's peak RSS in bytes (VmHWM of /proc/<pid>/status).
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// TestMaxMemoryUsedCoversAllocationAndRSS runs a real aws-lambda-go
// function that allocates and keeps 20 MB on every memory accounting path
// this host has: Max Memory Used must be at least the allocation and at
// least the process's peak RSS. A cgroup alone falls short of the RSS: the
// bootstrap's executable pages were brought into the page cache (and
// charged) by the build, not by the environment. The peak is the
// environment's since the process started, so a later invocation that
// allocates nothing reports it too.
func TestMaxMemoryUsedCoversAllocationAndRSS(t *testing.T) {
	paths := map[string]func(*Instance){
		"polling": func(in *Instance) { in.detectCgroup = func(string) *cgroupParent { return nil } },
	}
	if p := detectCgroup(""); p != nil {
		paths["cgroup"] = nil
		t.Logf("cgroup path: %s", p)
	} else {
		t.Log("no writable cgroup on this host: only the RSS-polling path runs")
	}
	const mb = 20
	for name, prep := range paths {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t, "memhog")
			in := startWith(t, cfg, prep)
			if (in.cgroup != nil) != (name == "cgroup") {
				t.Fatalf("instance cgroup %v on the %s path", in.cgroup, name)
			}
			r := invoke(t, in, &invokeapi.Request{Payload: event(map[string]int{"mb": mb})})
			if string(r.body) != `"held 20 MB"` {
				t.Fatalf("answer %s", r.body)
			}
			hwm := vmHWM(t, bootstrapPID(t, in.envs[0]))
			t.Logf("Max Memory Used %d MB, bootstrap VmHWM %.1f MB", r.report.MaxMemoryMB, float64(hwm)/(1<<20))
			if r.report.MaxMemoryMB < mb {
				t.Errorf("Max Memory Used %d MB < the %d MB allocated", r.report.MaxMemoryMB, mb)
			}
			// VmHWM is read after the report; whole MB leave room for the
			// runtime's next poll.
			if r.report.MaxMemoryMB < hwm>>20 {
				t.Errorf("Max Memory Used %d MB < the bootstrap's peak RSS %d MB", r.report.MaxMemoryMB, hwm>>20)
			}
			line := []byte("Max Memory Used: " + strconv.FormatInt(r.report.MaxMemoryMB, 10) + " MB")
			eventually(t, 5*time.Second, "the REPORT line in the log", func() bool { return fileContains(cfg.StdoutPath, line) })

			r2 := invoke(t, in, &invokeapi.Request{Payload: event(map[string]int{"mb": 0})})
			if string(r2.body) != `"held 20 MB"` || r2.report.MaxMemoryMB < r.report.MaxMemoryMB {
				t.Errorf("second invocation: %s, Max Memory Used %d MB, want at least the first's %d MB",
					r2.body, r2.report.MaxMemoryMB, r.report.MaxMemoryMB)
			}
		})
	}
}

func TestReportMBRoundsUp(t *testing.T) {
	for peak, want := range map[int64]int64{0: 0, 1: 1, 1 << 20: 1, 1<<20 + 1: 2, 27<<20 + 500<<10: 28} {
		if got := reportMB(peak); got != want {
			t.Errorf("reportMB(%d) = %d, want %d", peak, got, want)
		}
	}
}

// TestCgroupRSSMembers reads members from a cgroup.procs list, leaving out
// the instance itself (its spawner thread lives in a v1 environment's
// cgroup), and sums their RSS.
func TestCgroupRSSMembers(t *testing.T) {
	procs := filepath.Join(t.TempDir(), "cgroup.procs")
	ppid := os.Getppid()
	// Longer than one read chunk, with pids that do not exist.
	var list bytes.Buffer
	list.WriteString(strconv.Itoa(ppid) + "\n" + strconv.Itoa(os.Getpid()) + "\n")
	for i := range 60 {
		list.WriteString(strconv.Itoa(1<<22+i) + "\n")
	}
	if err := os.WriteFile(procs, list.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := newCgroupRSS(procs)
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	g.rescan()
	if len(g.members) != 1 || g.members[ppid] == nil {
		t.Fatalf("members %v, want the parent %d alone", g.members, ppid)
	}
	if n := g.rss(); n <= 0 {
		t.Fatalf("rss %d", n)
	}
	// A member that left the cgroup is dropped on the next rescan.
	if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g.rescan()
	if len(g.members) != 0 || g.rss() != 0 {
		t.Fatalf("members %v after the list emptied", g.members)
	}
}

// The environment's process is the OOM killer's first choice, so an
// environment over its limit never takes the instance (or `nimbus dev`)
// down with it.
func TestEnvironmentIsPreferredOOMVictim(t *testing.T) {
	cfg := testConfig(t, "slowinit")
	cfg.Env = map[string]string{"SLOWINIT_MS": "0"}
	in := start(t, cfg)
	r := invoke(t, in, &invokeapi.Request{Payload: []byte(`{}`)})
	var rep struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(r.body, &rep); err != nil || rep.PID == 0 {
		t.Fatalf("slowinit reply %s: %v", r.body, err)
	}
	if in.isolated { // the pid it knows is its namespace's
		rep.PID = bootstrapPID(t, in.envs[0])
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", rep.PID))
	if err != nil {
		t.Skipf("no oom_score_adj on this host: %v", err)
	}
	if got := strings.TrimSpace(string(b)); got != "1000" {
		t.Fatalf("bootstrap oom_score_adj = %s, want 1000", got)
	}
	self, _ := os.ReadFile("/proc/self/oom_score_adj")
	if strings.TrimSpace(string(self)) == "1000" {
		t.Fatalf("the instance's own oom_score_adj changed to 1000")
	}
}
