package instance

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxProcs is Lambda's limit of processes and threads per environment:
// RLIMIT_NPROC of the function's uid inside the sandbox, and pids.max of
// its cgroup on cgroup v2.
const maxProcs = 1024

// cgroupParent is a writable cgroup directory under which each environment
// gets its own cgroup. Nil means memory is limited by polling RSS.
//
// With cgroup v2 the parent has the memory controller enabled for its
// children and processes are born in their cgroup (clone3 with
// CLONE_INTO_CGROUP). With cgroup v1 the parent is a directory of the
// memory hierarchy; there is no CLONE_INTO_CGROUP, so the thread that
// forks the process joins the environment's cgroup first (v1 lets single
// threads move through "tasks") and the child is born there, then the
// thread goes back to self.
type cgroupParent struct {
	dir string
	v1  bool
	// memory and pids (v2) are the controllers the parent offers its
	// children: memory always when detected (detection requires it), pids
	// when the hierarchy has it (each environment's cgroup then caps its
	// processes with pids.max).
	memory, pids bool
	// self is the instance's own v1 memory cgroup, where the forking thread returns.
	self string
}

func (p *cgroupParent) String() string {
	if p.v1 {
		return "cgroup v1 memory " + p.dir
	}
	return "cgroup v2 " + p.dir
}

// detectCgroup returns the parent for environments' cgroups: cgroup v2 when
// a cgroup2 hierarchy with the memory controller is mounted and writable
// (a hybrid host's cgroup2 mount, whose controllers are all bound to v1,
// does not count), else the cgroup v1 memory hierarchy when it is, else
// nil. The mounts come from /proc/self/mountinfo. parent overrides the
// instance's own cgroup.
func detectCgroup(parent string) *cgroupParent {
	return detectCgroupFrom(parent, "/proc/self/mountinfo", "/proc/self/cgroup")
}

func detectCgroupFrom(parent, mountinfo, procCgroup string) *cgroupParent {
	if p := detectCgroupV2(parent, mountinfo, procCgroup); p != nil {
		return p
	}
	return detectCgroupV1(parent, mountinfo, procCgroup)
}

// detectCgroupV2 finds the cgroup2 mount in mountinfo and, unless parent
// is given, the instance's own cgroup in procCgroup (its "0::" line). The
// parent must offer the memory controller to its children; pids is enabled
// too when the hierarchy has it.
func detectCgroupV2(parent, mountinfo, procCgroup string) *cgroupParent {
	mount, mountRoot := cgroupMount(mountinfo, func(fstype, _ string) bool { return fstype == "cgroup2" })
	if mount == "" {
		return nil
	}
	if b, err := os.ReadFile(filepath.Join(mount, "cgroup.controllers")); err != nil || !hasWord(strings.TrimSpace(string(b)), "memory", " ") {
		return nil // memory is bound to a v1 hierarchy (or absent)
	}
	if parent == "" {
		b, err := os.ReadFile(procCgroup)
		if err != nil {
			return nil
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok {
				rel, err := filepath.Rel(mountRoot, p)
				if err != nil || strings.HasPrefix(rel, "..") {
					return nil // our cgroup is not visible through the mount
				}
				parent = aboveEnvCgroups(filepath.Join(mount, rel))
			}
		}
		if parent == "" {
			return nil
		}
	}
	if !enableControllers(parent, "memory") {
		return nil
	}
	p := &cgroupParent{dir: parent, memory: true, pids: enableControllers(parent, "pids")}
	if !canCreateChild(parent) {
		return nil
	}
	return p
}

// enableControllers makes parent offer controller to its children (it
// fails, EBUSY, when parent holds processes itself) and reports whether it does.
func enableControllers(parent, controller string) bool {
	ctl := filepath.Join(parent, "cgroup.subtree_control")
	b, err := os.ReadFile(ctl)
	if err != nil {
		return false
	}
	if hasWord(strings.TrimSpace(string(b)), controller, " ") {
		return true
	}
	return os.WriteFile(ctl, []byte("+"+controller), 0) == nil
}

// envCgroupRE matches an environment's cgroup name (env.cgroupName).
var envCgroupRE = regexp.MustCompile(`^nimbus-[0-9a-f]{8}-env-[0-9]+$`)

// aboveEnvCgroups is dir without the environment cgroups at its end. On
// cgroup v1 a spawner thread lives in its environment's cgroup, and the
// process's own cgroup file reports its main thread's, which may be such a
// spawner thread when several instances share a process (nimbus dev, tests):
// a second instance must not nest its environments (and their memory)
// inside the first's.
func aboveEnvCgroups(dir string) string {
	for envCgroupRE.MatchString(filepath.Base(dir)) {
		dir = filepath.Dir(dir)
	}
	return dir
}

// detectCgroupV1 finds the memory hierarchy's mount in mountinfo and the
// instance's own memory cgroup in procCgroup. The default parent is that
// own cgroup, so environments stay inside whatever limits the instance
// itself runs under.
func detectCgroupV1(parent, mountinfo, procCgroup string) *cgroupParent {
	mount, mountRoot := v1MemoryMount(mountinfo)
	if mount == "" {
		return nil
	}
	self := ""
	if b, err := os.ReadFile(procCgroup); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			// "4:memory:/path" (the controller list may name several).
			f := strings.SplitN(line, ":", 3)
			if len(f) == 3 && hasWord(f[1], "memory", ",") {
				rel, err := filepath.Rel(mountRoot, f[2])
				if err != nil || strings.HasPrefix(rel, "..") {
					return nil // our cgroup is not visible through the mount
				}
				self = aboveEnvCgroups(filepath.Join(mount, rel))
			}
		}
	}
	if self == "" {
		return nil
	}
	if parent == "" {
		parent = self
	}
	if _, err := os.Stat(filepath.Join(parent, "memory.limit_in_bytes")); err != nil {
		return nil
	}
	if !canCreateChild(parent) {
		return nil
	}
	return &cgroupParent{dir: parent, v1: true, self: self}
}

// v1MemoryMount returns the mount point of the cgroup v1 memory hierarchy
// and the path inside the hierarchy that the mount shows.
func v1MemoryMount(mountinfo string) (mount, root string) {
	return cgroupMount(mountinfo, func(fstype, superOpts string) bool {
		return fstype == "cgroup" && hasWord(superOpts, "memory", ",")
	})
}

// cgroupMount returns the mount point and root of the first mount in
// mountinfo that match accepts (by filesystem type and super options).
func cgroupMount(mountinfo string, match func(fstype, superOpts string) bool) (mount, root string) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || !match(qf[0], qf[2]) {
			continue
		}
		return pf[4], pf[3]
	}
	return "", ""
}

func hasWord(list, word, sep string) bool {
	for _, w := range strings.Split(list, sep) {
		if w == word {
			return true
		}
	}
	return false
}

// canCreateChild probes that cgroups can be made under parent.
func canCreateChild(parent string) bool {
	probe := filepath.Join(parent, "nimbus-probe-"+strconv.Itoa(os.Getpid()))
	if os.Mkdir(probe, 0o755) != nil {
		return false
	}
	_ = os.Remove(probe)
	return true
}

// staleAfter is how old an empty environment cgroup of another instance
// must be before sweep removes it (a fresh one may be about to take its
// process).
const staleAfter = time.Minute

// sweep removes empty environment cgroups that instances killed before
// they could clean up (SIGKILL) left in the parent; the parent's owner
// (Nomad, for a task's cgroup) cannot remove a cgroup that has children.
// rmdir refuses cgroups that still hold processes, so only empty ones go.
func (p *cgroupParent) sweep(now time.Time) {
	ents, err := os.ReadDir(p.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, "nimbus-") || !strings.Contains(name, "-env-") {
			continue
		}
		if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > staleAfter {
			_ = os.Remove(filepath.Join(p.dir, name))
		}
	}
}

// envCgroup is one environment process tree's cgroup: per process on v2,
// per environment on v1 (see spawner).
type envCgroup struct {
	dir  string
	v1   bool
	self string   // v1: where the forking thread returns
	fd   *os.File // v2: for SysProcAttr.CgroupFD
	// peakFile is held open for the sample at the end of every invocation:
	// memory.peak (else memory.current) on v2, memory.max_usage_in_bytes on v1.
	peakFile *procFile
	buf      [32]byte
	// keep (v1) is a process that outlives the environment's processes:
	// its sandbox zygote.
	keep int
	// oomBase (v1) is the oom_kill count when the current process started:
	// a v1 environment keeps its cgroup across processes.
	oomBase int64
}

// create makes a fresh cgroup limited to limit bytes with no swap.
func (p *cgroupParent) create(name string, limit int64) (*envCgroup, error) {
	dir := filepath.Join(p.dir, name)
	_ = os.Remove(dir) // a leftover from a previous process of this environment
	// A cgroup still draining from the previous process is reused.
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("creating cgroup %s: %w", dir, err)
	}
	c := &envCgroup{dir: dir, v1: p.v1, self: p.self}
	lim := []byte(strconv.FormatInt(limit, 10))
	if p.v1 {
		// A reused cgroup keeps its old peak; start counting afresh.
		_ = os.WriteFile(filepath.Join(dir, "memory.max_usage_in_bytes"), []byte("0"), 0)
		if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), lim, 0); err != nil {
			_ = os.Remove(dir)
			return nil, fmt.Errorf("setting memory.limit_in_bytes in %s: %w", dir, err)
		}
		// memory+swap = memory: no swap (absent without swap accounting).
		_ = os.WriteFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"), lim, 0)
		c.peakFile, _ = openProcFile(filepath.Join(dir, "memory.max_usage_in_bytes"))
		return c, nil
	}
	if p.memory {
		if err := os.WriteFile(filepath.Join(dir, "memory.max"), lim, 0); err != nil {
			_ = os.Remove(dir)
			return nil, fmt.Errorf("setting memory.max in %s: %w", dir, err)
		}
		_ = os.WriteFile(filepath.Join(dir, "memory.swap.max"), []byte("0"), 0)
	}
	if p.pids {
		if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte(strconv.Itoa(maxProcs)), 0); err != nil {
			_ = os.Remove(dir)
			return nil, fmt.Errorf("setting pids.max in %s: %w", dir, err)
		}
	}
	fd, err := os.Open(dir)
	if err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("opening cgroup %s: %w", dir, err)
	}
	c.fd = fd
	for _, f := range []string{"memory.peak", "memory.current"} {
		if pf, err := openProcFile(filepath.Join(dir, f)); err == nil {
			c.peakFile = pf
			break
		}
	}
	return c, nil
}

// reset (v1) readies the environment's cgroup for its next process: the
// peak restarts from the current use and earlier OOM kills are not counted.
func (c *envCgroup) reset() {
	_ = os.WriteFile(filepath.Join(c.dir, "memory.max_usage_in_bytes"), []byte("0"), 0)
	c.oomBase = c.oomKills()
}

// enterThread (v1) moves the calling OS thread into the cgroup, so that a
// process it forks is born there. The caller has locked its thread.
func (c *envCgroup) enterThread() error {
	tid := []byte(strconv.Itoa(syscall.Gettid()))
	if err := os.WriteFile(filepath.Join(c.dir, "tasks"), tid, 0); err != nil {
		return fmt.Errorf("moving the spawning thread into cgroup %s: %w", c.dir, err)
	}
	return nil
}

// addProcess (v1) moves a started process into the cgroup.
func (c *envCgroup) addProcess(pid int) error {
	if err := os.WriteFile(filepath.Join(c.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("moving process %d into cgroup %s: %w", pid, c.dir, err)
	}
	return nil
}

// leaveThread (v1) moves the calling OS thread back to the instance's cgroup.
func (c *envCgroup) leaveThread() {
	_ = os.WriteFile(filepath.Join(c.self, "tasks"), []byte(strconv.Itoa(syscall.Gettid())), 0)
}

// peak is the highest memory use seen, in bytes.
func (c *envCgroup) peak() int64 {
	if c.peakFile == nil {
		return 0
	}
	b, err := c.peakFile.read(c.buf[:])
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// oomKilled reports whether the kernel killed a process of this cgroup for
// memory (the oom_kill count of memory.events on v2, memory.oom_control on v1).
func (c *envCgroup) oomKilled() bool { return c.oomKills() > c.oomBase }

func (c *envCgroup) oomKills() int64 {
	name := "memory.events"
	if c.v1 {
		name = "memory.oom_control"
	}
	return readKV(filepath.Join(c.dir, name))["oom_kill"]
}

// release ends a process's use of the cgroup: what is left in it is
// killed; a v2 cgroup (one per process) is removed, a v1 one (the
// environment's, where its spawner thread lives) is kept for the next.
func (c *envCgroup) release() {
	if c.v1 {
		c.killAllV1()
		return
	}
	c.remove()
}

// remove kills what is left in the cgroup and deletes it.
func (c *envCgroup) remove() {
	// Processes that left the process group are still in the cgroup.
	if c.v1 {
		c.killAllV1()
	} else {
		_ = os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0)
	}
	if c.fd != nil {
		_ = c.fd.Close()
	}
	c.peakFile.close()
	if os.Remove(c.dir) == nil {
		return
	}
	// rmdir is refused (EBUSY) until the killed processes are gone (v2's
	// cgroup.kill does not wait for them either); retry briefly off the
	// caller's lock. A cgroup left behind is reused by the next process,
	// or swept.
	go func() {
		for range 200 {
			time.Sleep(10 * time.Millisecond)
			if err := os.Remove(c.dir); err == nil || errors.Is(err, fs.ErrNotExist) {
				return
			}
		}
	}()
}

// killAllV1 sends SIGKILL to every process in a v1 cgroup (v1 has no
// cgroup.kill) but the instance, whose spawner thread may be there.
func (c *envCgroup) killAllV1() {
	b, err := os.ReadFile(filepath.Join(c.dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 && pid != os.Getpid() && pid != c.keep {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
