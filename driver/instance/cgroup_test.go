package instance

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
)

func TestDetectCgroupV1FromMountinfo(t *testing.T) {
	hier := t.TempDir() // stands in for the memory hierarchy's mount
	own := filepath.Join(hier, "jobs", "me")
	if err := os.MkdirAll(own, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(own, "memory.limit_in_bytes"), []byte("9223372036854771712\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mountinfo := filepath.Join(dir, "mountinfo")
	procCgroup := filepath.Join(dir, "cgroup")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The mount shows the hierarchy from /outer down, as in a container.
	write(mountinfo, "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"+
		"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"+
		"35 31 0:32 /outer "+hier+" rw,relatime shared:5 - cgroup cgroup rw,memory\n")
	write(procCgroup, "9:name=systemd:/\n4:memory:/outer/jobs/me\n0::/\n")

	p := detectCgroupV1("", mountinfo, procCgroup)
	if p == nil || !p.v1 || p.dir != own || p.self != own {
		t.Fatalf("detected %+v, want v1 parent and self %s", p, own)
	}
	// An explicit parent wins; self stays the instance's own cgroup.
	if err := os.WriteFile(filepath.Join(hier, "memory.limit_in_bytes"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p := detectCgroupV1(hier, mountinfo, procCgroup); p == nil || p.dir != hier || p.self != own {
		t.Fatalf("with a parent: %+v", p)
	}
	// A cgroup outside what the mount shows, or no memory hierarchy: nothing.
	write(procCgroup, "4:memory:/elsewhere\n")
	if p := detectCgroupV1("", mountinfo, procCgroup); p != nil {
		t.Fatalf("cgroup outside the mount detected: %+v", p)
	}
	write(mountinfo, "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n")
	if p := detectCgroupV1("", mountinfo, procCgroup); p != nil {
		t.Fatalf("no memory mount, detected %+v", p)
	}
}

// hostCgroupV1 is the real v1 memory parent of this host, or skips.
func hostCgroupV1(t *testing.T) *cgroupParent {
	t.Helper()
	if detectCgroupV2("", "/proc/self/mountinfo", "/proc/self/cgroup") != nil {
		t.Skip("this host has a writable cgroup v2; the v1 path is not used")
	}
	p := detectCgroupV1("", "/proc/self/mountinfo", "/proc/self/cgroup")
	if p == nil {
		t.Skip("no writable cgroup v1 memory hierarchy (needs root on a v1 host)")
	}
	return p
}

func readInt(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCgroupV1Environment runs a real function in its environment's
// cgroup v1: the process is born in it (forked by the environment's
// spawner thread, which lives there) with the memory size as its limit,
// Max Memory Used comes from memory.max_usage_in_bytes (and the RSS of the
// cgroup's processes) and restarts with each process, the kernel's OOM
// kill answers Runtime.OutOfMemory (no RSS watcher runs with a cgroup), and
// the cgroup goes when the instance stops.
func TestCgroupV1Environment(t *testing.T) {
	host := hostCgroupV1(t)
	in := start(t, testConfig(t, "memhog"))
	if in.cgroup == nil || !in.cgroup.v1 || in.cgroup.dir != host.dir {
		t.Fatalf("instance cgroup %+v, want v1 under %s", in.cgroup, host.dir)
	}
	r := invoke(t, in, &invokeapi.Request{Payload: event(map[string]int{"mb": 20})})
	if string(r.body) != `"held 20 MB"` || r.report.MaxMemoryMB < 20 {
		t.Fatalf("answer %s %+v", r.body, r.report)
	}
	e := in.envs[0]
	e.mu.Lock()
	pid, cg := e.pgid, e.cg
	e.mu.Unlock()
	if cg == nil || cg != e.cgV1 || filepath.Dir(cg.dir) != host.dir {
		t.Fatalf("environment cgroup %+v", cg)
	}
	if got := readInt(t, filepath.Join(cg.dir, "memory.limit_in_bytes")); got != 128<<20 {
		t.Fatalf("memory.limit_in_bytes = %d, want %d", got, 128<<20)
	}
	procs, err := os.ReadFile(filepath.Join(cg.dir, "cgroup.procs"))
	want := map[string]bool{strconv.Itoa(pid): true, strconv.Itoa(os.Getpid()): true}
	if e.viaInit { // the sandbox init, born in the cgroup, and its child
		want[strconv.Itoa(bootstrapPID(t, e))] = true
	}
	if e.zyg != nil { // the sandbox zygote, born in the cgroup, forks the bootstrap there
		want[strconv.Itoa(e.zyg.Cmd.Process.Pid)] = true
	}
	got := map[string]bool{}
	for _, p := range strings.Fields(string(procs)) {
		got[p] = true
	}
	if err != nil || len(got) != len(want) {
		t.Fatalf("cgroup.procs = %q (%v), want %v: the bootstrap (and its init) and the instance (its spawner thread)", procs, err, want)
	}
	for p := range want {
		if !got[p] {
			t.Fatalf("cgroup.procs = %q, want %v", procs, want)
		}
	}
	// Of the instance, only the spawner thread is in the cgroup.
	tasks, _ := os.ReadFile(filepath.Join(cg.dir, "tasks"))
	ours := 0
	for _, tid := range strings.Fields(string(tasks)) {
		if _, err := os.Stat("/proc/self/task/" + tid); err == nil {
			ours++
		}
	}
	if ours != 1 {
		t.Fatalf("%d instance threads in the environment's cgroup, want the spawner alone", ours)
	}

	r = invoke(t, in, &invokeapi.Request{RequestID: "hog", Payload: event(map[string]int{"mb": 400, "hold_ms": 30000})})
	wantBody := `{"errorType":"Runtime.OutOfMemory","errorMessage":"RequestId: hog Error: Runtime exited with error: signal: killed"}`
	if string(r.body) != wantBody {
		t.Fatalf("answer %s", r.body)
	}
	// A new process in the same cgroup: the OOM kill and the 128 MB peak
	// of the killed one are not its own.
	r = invoke(t, in, &invokeapi.Request{Payload: event(map[string]int{"mb": 1})})
	if string(r.body) != `"held 1 MB"` || r.resp.FunctionError != "" || r.report.MaxMemoryMB >= 100 {
		t.Fatalf("after oom: %s %+v", r.body, r.report)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := in.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the environment's cgroup removed", func() bool {
		_, err := os.Stat(cg.dir)
		return os.IsNotExist(err)
	})
}

// TestOutOfMemoryPolling covers the fallback without cgroups: the RSS
// watcher ends an environment over its memory size.
func TestOutOfMemoryPolling(t *testing.T) {
	in := startWith(t, testConfig(t, "memhog"), func(in *Instance) {
		in.detectCgroup = func(string) *cgroupParent { return nil }
	})
	if in.cgroup != nil {
		t.Fatalf("cgroup %+v in use", in.cgroup)
	}
	r := invoke(t, in, &invokeapi.Request{RequestID: "hog", Payload: event(map[string]int{"mb": 400, "hold_ms": 30000})})
	want := `{"errorType":"Runtime.OutOfMemory","errorMessage":"RequestId: hog Error: Runtime exited with error: signal: killed"}`
	if string(r.body) != want {
		t.Fatalf("answer %s", r.body)
	}
	r = invoke(t, in, &invokeapi.Request{Payload: event(map[string]int{"mb": 20})})
	if string(r.body) != `"held 20 MB"` || r.report.MaxMemoryMB < 20 {
		t.Fatalf("after oom: %s %+v", r.body, r.report)
	}
}

// TestCgroupV1ThreadJoin checks what makes a process born in its v1 cgroup:
// a locked thread can move itself in through "tasks" and back out.
func TestCgroupV1ThreadJoin(t *testing.T) {
	host := hostCgroupV1(t)
	cg, err := host.create("nimbus-test-"+strconv.Itoa(os.Getpid()), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cg.remove)
	rel := func() string {
		b, _ := os.ReadFile("/proc/thread-self/cgroup")
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.SplitN(line, ":", 3); len(f) == 3 && hasWord(f[1], "memory", ",") {
				return f[2]
			}
		}
		return ""
	}
	type seen struct {
		in, out string
		err     error
	}
	done := make(chan seen)
	go func() {
		runtime.LockOSThread() // the thread ends with the goroutine
		var s seen
		if s.err = cg.enterThread(); s.err == nil {
			s.in = rel()
			cg.leaveThread()
			s.out = rel()
		}
		done <- s
	}()
	s := <-done
	if s.err != nil {
		t.Fatal(s.err)
	}
	if !strings.HasSuffix(s.in, "/"+filepath.Base(cg.dir)) || strings.HasSuffix(s.out, "/"+filepath.Base(cg.dir)) {
		t.Fatalf("thread cgroup inside %q, after leaving %q; want inside %s", s.in, s.out, cg.dir)
	}
}

func TestCgroupSweepRemovesOnlyStaleEnvironmentCgroups(t *testing.T) {
	dir := t.TempDir() // directories behave as empty cgroups do for rmdir
	p := &cgroupParent{dir: dir}
	mk := func(name string, age time.Duration) string {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-age)
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
		return d
	}
	stale := mk("nimbus-dead0001-env-0", time.Hour)
	fresh := mk("nimbus-live0002-env-0", time.Second)
	other := mk("not-ours", time.Hour)
	busy := mk("nimbus-busy0003-env-1", time.Hour)
	if err := os.WriteFile(filepath.Join(busy, "tasks"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err) // stands in for a cgroup with a process: rmdir fails
	}
	p.sweep(time.Now())
	for d, want := range map[string]bool{stale: false, fresh: true, other: true, busy: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(d), err == nil, want)
		}
	}
}

// A process whose main thread sits in an environment's cgroup (a v1
// spawner thread of another instance in the same process) detects the
// cgroup above it as its own, so instances never nest their environments.
func TestEnvironmentCgroupsAreNotParents(t *testing.T) {
	for in, want := range map[string]string{
		"/sys/fs/cgroup/memory/nomad/alloc":                                   "/sys/fs/cgroup/memory/nomad/alloc",
		"/sys/fs/cgroup/memory/nomad/nimbus-8e2a5d8a-env-0":                   "/sys/fs/cgroup/memory/nomad",
		"/sys/fs/cgroup/memory/x/nimbus-8e2a5d8a-env-0/nimbus-0e09657a-env-3": "/sys/fs/cgroup/memory/x",
		"/sys/fs/cgroup/memory/nimbus-app":                                    "/sys/fs/cgroup/memory/nimbus-app",
	} {
		if got := aboveEnvCgroups(in); got != want {
			t.Errorf("aboveEnvCgroups(%s) = %s, want %s", in, got, want)
		}
	}
}
