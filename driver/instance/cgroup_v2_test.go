package instance

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
)

// TestDetectCgroupChoiceFromMountinfo: the version comes from mountinfo. A
// cgroup2 mount whose hierarchy has the memory controller wins (the
// instance's own cgroup, from its "0::" line, is the parent, offering
// memory and pids to its children); a hybrid host's cgroup2 mount, whose
// controllers are bound to v1, does not, and the v1 memory hierarchy is used.
func TestDetectCgroupChoiceFromMountinfo(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v2 := filepath.Join(dir, "v2")     // stands in for the cgroup2 mount
	v1mem := filepath.Join(dir, "mem") // and for the v1 memory hierarchy's
	write(filepath.Join(v2, "outer", "me", "cgroup.subtree_control"), "")
	write(filepath.Join(v1mem, "me", "memory.limit_in_bytes"), "9223372036854771712\n")
	mountinfo := filepath.Join(dir, "mountinfo")
	procCgroup := filepath.Join(dir, "cgroup")
	write(procCgroup, "4:memory:/me\n0::/outer/me\n")
	v2line := "40 30 0:37 / " + v2 + " rw,relatime - cgroup2 cgroup2 rw\n"
	v1line := "34 30 0:31 / " + v1mem + " rw,relatime - cgroup cgroup rw,memory\n"

	// Hybrid: cgroup2 mounted, but memory is v1's.
	write(filepath.Join(v2, "cgroup.controllers"), "hugetlb\n")
	write(mountinfo, v1line+v2line)
	if p := detectCgroupFrom("", mountinfo, procCgroup); p == nil || !p.v1 || p.dir != filepath.Join(v1mem, "me") {
		t.Fatalf("hybrid host: detected %+v, want the v1 memory cgroup", p)
	}
	// Unified: memory is v2's.
	write(filepath.Join(v2, "cgroup.controllers"), "cpuset cpu io memory pids\n")
	write(mountinfo, v2line)
	p := detectCgroupFrom("", mountinfo, procCgroup)
	if p == nil || p.v1 || p.dir != filepath.Join(v2, "outer", "me") || !p.memory || !p.pids {
		t.Fatalf("unified host: detected %+v, want v2 %s with memory and pids", p, filepath.Join(v2, "outer", "me"))
	}
	// Our cgroup outside what the mount shows: not v2.
	write(procCgroup, "0::/\n")
	write(mountinfo, "40 30 0:37 /outer/me "+v2+" rw,relatime - cgroup2 cgroup2 rw\n")
	write(procCgroup, "0::/elsewhere\n")
	if p := detectCgroupFrom("", mountinfo, procCgroup); p != nil {
		t.Fatalf("cgroup outside the mount: detected %+v", p)
	}

	// And this host, from its own mountinfo.
	real := detectCgroup("")
	t.Logf("this host: %v", real)
	if b, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil && !hasWord(strings.TrimSpace(string(b)), "memory", " ") && real != nil && !real.v1 {
		t.Errorf("hybrid host without v2 memory: chose %v", real)
	}
}

// mountCgroup2 mounts the cgroup2 hierarchy on a fresh directory and makes
// a parent cgroup in it for the test (removed, with the mount, at its end).
// On a cgroup v1 host the hierarchy has only the controllers v1 left free.
func mountCgroup2(t *testing.T) (parent string, controllers []string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting cgroup2 needs root")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("none", mnt, "cgroup2", 0, ""); err != nil {
		t.Skipf("cannot mount cgroup2: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })
	b, err := os.ReadFile(filepath.Join(mnt, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	parent = filepath.Join(mnt, fmt.Sprintf("nimbus-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-")))
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(parent)
		for _, e := range ents {
			if e.IsDir() {
				_ = os.Remove(filepath.Join(parent, e.Name()))
			}
		}
		if err := os.Remove(parent); err != nil {
			t.Errorf("removing the test's cgroup: %v", err)
		}
	})
	return parent, strings.Fields(string(b))
}

// v2Parent is the parent the instance would use on a unified host, with the
// controllers this hierarchy can offer.
func v2Parent(t *testing.T, dir string) *cgroupParent {
	t.Helper()
	return &cgroupParent{dir: dir, memory: enableControllers(dir, "memory"), pids: enableControllers(dir, "pids")}
}

// TestCgroupV2ProcessLifecycle runs the v2 path on a real cgroup2 mount: a
// per-process cgroup created under the parent, a real process born in it
// (CLONE_INTO_CGROUP), its limits, and release killing what is left and
// removing the cgroup.
func TestCgroupV2ProcessLifecycle(t *testing.T) {
	dir, ctrls := mountCgroup2(t)
	p := v2Parent(t, dir)
	t.Logf("cgroup2 controllers here: %v; memory %v, pids %v", ctrls, p.memory, p.pids)
	cg, err := p.create("nimbus-0123abcd-env-0", 128<<20)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", "sleep 600 & sleep 600")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.fd.Fd()), Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	procs := func() []string {
		b, _ := os.ReadFile(filepath.Join(cg.dir, "cgroup.procs"))
		return strings.Fields(string(b))
	}
	// Born there: the shell from its first instruction, its children after.
	if !slices.Contains(procs(), strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("process %d is not in %s: %v", cmd.Process.Pid, cg.dir, procs())
	}
	gatewaytest.Eventually(t, 5*time.Second, func() bool { return len(procs()) == 3 }, "the shell's two children in the cgroup")
	if p.pids {
		if n := readInt(t, filepath.Join(cg.dir, "pids.max")); n != maxProcs {
			t.Errorf("pids.max %d, want %d", n, maxProcs)
		}
		if n := readInt(t, filepath.Join(cg.dir, "pids.current")); n != 3 {
			t.Errorf("pids.current %d, want 3", n)
		}
	}
	if p.memory {
		if n := readInt(t, filepath.Join(cg.dir, "memory.max")); n != 128<<20 {
			t.Errorf("memory.max %d", n)
		}
	}
	// The shell's background child left the process group: release still
	// ends it (cgroup.kill) and removes the cgroup.
	cg.release()
	if err := <-waited; err == nil {
		t.Fatal("the process survived release")
	}
	gatewaytest.Eventually(t, 5*time.Second, func() bool {
		_, err := os.Stat(cg.dir)
		return os.IsNotExist(err)
	}, "the cgroup removed")
}

// TestCgroupV2Instance runs isolated environments on a real cgroup2 parent
// (the v2 path: a fresh init per process, born in its own cgroup): the
// bootstrap is in its environment's cgroup while it runs, an environment
// with network "none" works there too, and nothing is left under the
// parent after the instance stops.
func TestCgroupV2Instance(t *testing.T) {
	dir, _ := mountCgroup2(t)
	p := v2Parent(t, dir)
	for _, network := range []string{"", NetworkNone} {
		t.Run("network="+network, func(t *testing.T) {
			cfg := testConfig(t, "netprobe")
			cfg.Network = network
			in := startWith(t, cfg, func(in *Instance) {
				in.detectCgroup = func(string) *cgroupParent { return p }
			})
			if !in.isolated {
				t.Skipf("environments are not isolated on this host: %v", in.isolationMissing)
			}
			for i := range 2 {
				r := invoke(t, in, &invokeapi.Request{Payload: []byte(`{}`)})
				if r.resp.FunctionError != "" {
					t.Fatalf("invocation %d: %s", i, r.body)
				}
				var rep netReport
				if err := json.Unmarshal(r.body, &rep); err != nil {
					t.Fatal(err)
				}
				if network == NetworkNone && (len(rep.Interfaces) != 1 || rep.Interfaces[0] != "lo") {
					t.Errorf("network none on v2: interfaces %v", rep.Interfaces)
				}
			}
			e := in.envs[0]
			if e.zyg != nil {
				t.Error("a zygote on cgroup v2: its forks would not be born in fresh cgroups")
			}
			cgDir := filepath.Join(dir, e.cgroupName())
			b, err := os.ReadFile(filepath.Join(cgDir, "cgroup.procs"))
			if err != nil {
				t.Fatal(err)
			}
			if pid := bootstrapPID(t, e); !slices.Contains(strings.Fields(string(b)), strconv.Itoa(pid)) {
				t.Errorf("bootstrap %d not in %s: %s", pid, cgDir, b)
			}
		})
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			t.Errorf("left behind under the parent: %s", e.Name())
		}
	}
}
