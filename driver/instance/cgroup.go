package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const cgroupRoot = "/sys/fs/cgroup"

// cgroupParent is a writable cgroup v2 directory with the memory controller
// enabled for its children. Nil means memory is limited by polling RSS.
type cgroupParent struct{ dir string }

// detectCgroup returns the cgroup v2 parent for environments, or nil when
// cgroup v2 is not mounted or the tree is not writable. parent overrides the
// instance's own cgroup.
func detectCgroup(parent string) *cgroupParent {
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err != nil {
		return nil // not a cgroup v2 (unified) host
	}
	if parent == "" {
		b, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			return nil
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok {
				parent = filepath.Join(cgroupRoot, p)
			}
		}
		if parent == "" {
			return nil
		}
	}
	ctl := filepath.Join(parent, "cgroup.subtree_control")
	if b, err := os.ReadFile(ctl); err != nil {
		return nil
	} else if !strings.Contains(" "+string(b)+" ", " memory") {
		// Fails (EBUSY) when the parent holds processes itself.
		if os.WriteFile(ctl, []byte("+memory"), 0) != nil {
			return nil
		}
	}
	probe := filepath.Join(parent, "nimbus-probe-"+strconv.Itoa(os.Getpid()))
	if os.Mkdir(probe, 0o755) != nil {
		return nil
	}
	_ = os.Remove(probe)
	return &cgroupParent{dir: parent}
}

// envCgroup is one environment process tree's cgroup.
type envCgroup struct {
	dir string
	fd  *os.File // for SysProcAttr.CgroupFD
}

// create makes a fresh cgroup limited to limit bytes with no swap.
func (p *cgroupParent) create(name string, limit int64) (*envCgroup, error) {
	dir := filepath.Join(p.dir, name)
	_ = os.Remove(dir) // a leftover from a previous process of this environment
	// A cgroup still draining from the previous process is reused.
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("creating cgroup %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.max"), []byte(strconv.FormatInt(limit, 10)), 0); err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("setting memory.max in %s: %w", dir, err)
	}
	_ = os.WriteFile(filepath.Join(dir, "memory.swap.max"), []byte("0"), 0)
	fd, err := os.Open(dir)
	if err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("opening cgroup %s: %w", dir, err)
	}
	return &envCgroup{dir: dir, fd: fd}, nil
}

// peak is the highest memory use seen (memory.peak, else memory.current).
func (c *envCgroup) peak() int64 {
	for _, f := range []string{"memory.peak", "memory.current"} {
		if b, err := os.ReadFile(filepath.Join(c.dir, f)); err == nil {
			n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			return n
		}
	}
	return 0
}

// oomKilled reports whether the kernel killed a process of this cgroup for memory.
func (c *envCgroup) oomKilled() bool {
	return readKV(filepath.Join(c.dir, "memory.events"))["oom_kill"] > 0
}

// remove deletes the cgroup once its processes are gone.
func (c *envCgroup) remove() {
	// Processes that left the process group are still in the cgroup.
	_ = os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0)
	_ = c.fd.Close()
	_ = os.Remove(c.dir)
}
