package nomadtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// RootDir creates a root dir for an agent (named with prefix) and removes
// it when the test ends, after the agent and its processes (call it before
// them: cleanups run last-in first-out). It is not t.TempDir because a
// killed agent can leave mounts below it (secrets tmpfs): then it is left,
// and the test log says so, rather than walked into.
func RootDir(tb testing.TB, prefix string) string {
	tb.Helper()
	root, err := os.MkdirTemp("", prefix)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if m := MountsUnder(root); len(m) > 0 {
			tb.Logf("leaving %s: mounts remain below it: %s", root, strings.Join(m, ", "))
			return
		}
		if err := os.RemoveAll(root); err != nil {
			tb.Logf("removing %s: %v", root, err)
		}
	})
	return root
}

// MountsUnder lists the mount points at or below dir (from
// /proc/self/mountinfo; none where it cannot be read).
func MountsUnder(dir string) []string {
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

// ProcsUnder lists live processes whose command line or working directory
// lies under dir (an instance's config path, its environments' code dir).
func ProcsUnder(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if bytes.Contains(cmdline, []byte(dir)) || strings.HasPrefix(cwd, dir) {
			if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
				f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+2:]))
				if f[0] == "Z" {
					continue
				}
			}
			out = append(out, pid)
		}
	}
	return out
}

// KillLeftovers kills whatever a run left under root (instances are
// detached from the agent by design), unmounts the secrets tmpfs Nomad
// mounts per task when it runs as root, and removes root best-effort.
func KillLeftovers(tb testing.TB, root string) {
	for _, pid := range ProcsUnder(root) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], root+"/") {
				_ = syscall.Unmount(f[4], syscall.MNT_DETACH)
			}
		}
	}
	if err := os.RemoveAll(root); err != nil {
		tb.Logf("removing %s: %v (Nomad may leave secrets mounts behind)", root, err)
	}
}

// DriverOptions is a single-node server and client (not -dev: its client
// state must survive a restart) in root, loading the nimbus driver from
// pluginDir with a 1 s stats interval and its bundle cache under root.
func DriverOptions(root, pluginDir string) Options {
	return Options{
		Persistent: true,
		Dir:        root,
		PluginDir:  pluginDir,
		HCL: fmt.Sprintf(`plugin "nimbus-driver" {
  config {
    stats_interval   = "1s"
    bundle_cache_dir = %q
  }
}
`, filepath.Join(root, "bundles")),
	}
}

// StartWithDriver runs an agent (server and client) that loads the
// nimbus driver binary driverBin and registers services in the Consul
// agent at consulAddr (none when empty), and waits until the driver is
// healthy. Its directory (named with prefix) and any instance left
// running go when tb ends.
func StartWithDriver(tb testing.TB, driverBin, consulAddr, prefix string) *Agent {
	tb.Helper()
	return StartWithDriverOptions(tb, driverBin, consulAddr, prefix, nil)
}

// StartWithDriverOptions is StartWithDriver with edit applied to the
// agent's options (Consul token, workload identity) before it starts.
func StartWithDriverOptions(tb testing.TB, driverBin, consulAddr, prefix string, edit func(*Options)) *Agent {
	tb.Helper()
	Binary(tb, "")
	root := RootDir(tb, prefix)
	pluginDir := filepath.Join(root, "plugins")
	if err := os.MkdirAll(pluginDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(driverBin)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pluginDir, "nimbus-driver"), b, 0o755); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { KillLeftovers(tb, root) })
	opts := DriverOptions(root, pluginDir)
	opts.ConsulAddr = consulAddr
	if edit != nil {
		edit(&opts)
	}
	agent := Start(tb, opts)
	WaitDriverHealthy(tb, agent.Client(tb))
	return agent
}

// WaitDriverHealthy waits (90 s at most) for a ready node whose nimbus
// driver is detected and healthy, and returns it.
func WaitDriverHealthy(tb testing.TB, c *api.Client) *api.Node {
	tb.Helper()
	deadline := time.Now().Add(90 * time.Second)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if stubs, _, err := c.Nodes().List(nil); err == nil && len(stubs) > 0 && stubs[0].Status == "ready" {
			if n, _, err := c.Nodes().Info(stubs[0].ID, nil); err == nil {
				if d := n.Drivers["nimbus"]; d != nil && d.Detected && d.Healthy {
					return n
				}
			}
		}
		if time.Now().After(deadline) {
			tb.Fatal("timed out after 1m30s waiting for the nimbus driver to be detected and healthy on a ready node")
		}
		<-tick.C
	}
}
