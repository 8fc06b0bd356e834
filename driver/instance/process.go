package instance

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// prSetNoNewPrivs is PR_SET_NO_NEW_PRIVS from <linux/prctl.h>.
const prSetNoNewPrivs = 38

// ErrInvalidEntrypoint means there is no executable bootstrap to run.
var ErrInvalidEntrypoint = errors.New("invalid entrypoint")

// entrypoint returns the argv that starts the runtime.
func entrypoint(c *Config, optDir, runtimeDir string) ([]string, error) {
	if !strings.HasPrefix(c.Runtime, "provided") {
		return managedEntrypoint(c, runtimeDir)
	}
	for _, p := range []string{filepath.Join(c.CodeDir, "bootstrap"), filepath.Join(optDir, "bootstrap")} {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return []string{p}, nil
		}
		return nil, fmt.Errorf("%w: %s is not an executable file", ErrInvalidEntrypoint, p)
	}
	return nil, fmt.Errorf("%w: no bootstrap in %s or a layer", ErrInvalidEntrypoint, c.CodeDir)
}

// mergeLayers builds the /opt equivalent: every layer's tree, later layers
// winning for the same file, as symlinks to the unpacked layer files.
func mergeLayers(layers []string, optDir string) error {
	if err := os.MkdirAll(optDir, 0o755); err != nil {
		return err
	}
	for _, layer := range layers {
		err := filepath.WalkDir(layer, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(layer, p)
			dst := filepath.Join(optDir, rel)
			if d.IsDir() {
				return os.MkdirAll(dst, 0o755)
			}
			_ = os.Remove(dst)
			return os.Symlink(p, dst)
		})
		if err != nil {
			return fmt.Errorf("merging layer %s: %w", layer, err)
		}
	}
	return nil
}

// environ builds a runtime process's environment: defaults, the user's
// variables, then the reserved Lambda variables (which win).
func environ(c *Config, runtimeAPI, optDir, runtimeDir, tmpDir string, base func(string) string) []string {
	vars := map[string]string{
		"PATH":            joinPath(base("PATH"), filepath.Join(optDir, "bin")),
		"LANG":            "en_US.UTF-8",
		"TZ":              ":UTC",
		"LD_LIBRARY_PATH": joinPath(c.CodeDir, filepath.Join(c.CodeDir, "lib"), filepath.Join(optDir, "lib")),
		"PYTHONPATH":      joinPath(filepath.Join(optDir, "python"), c.CodeDir),
		"NODE_PATH":       joinPath(filepath.Join(optDir, "nodejs", "node_modules"), filepath.Join(optDir, "nodejs"), c.CodeDir),
	}
	if home := base("HOME"); home != "" {
		vars["HOME"] = home
	}
	for k, v := range c.Env {
		vars[k] = v
	}
	reserved := map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          runtimeAPI,
		"_HANDLER":                        c.Handler,
		"LAMBDA_TASK_ROOT":                c.CodeDir,
		"LAMBDA_RUNTIME_DIR":              runtimeDir,
		"AWS_LAMBDA_FUNCTION_NAME":        c.Function,
		"AWS_LAMBDA_FUNCTION_VERSION":     c.Version,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(c.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + c.Function,
		"AWS_LAMBDA_LOG_STREAM_NAME":      logStreamName(c.Version),
		"AWS_LAMBDA_INITIALIZATION_TYPE":  c.InitializationType,
		"AWS_REGION":                      c.Region,
		"AWS_DEFAULT_REGION":              c.Region,
		"TMPDIR":                          tmpDir,
	}
	for k, v := range reserved {
		vars[k] = v
	}
	if !strings.HasPrefix(c.Runtime, "provided") {
		vars["AWS_EXECUTION_ENV"] = "AWS_Lambda_" + c.Runtime
	} else {
		delete(vars, "AWS_EXECUTION_ENV")
	}
	// The legacy go1.x RPC mode wins over the Runtime API in aws-lambda-go
	// builds without lambda.norpc; it must never be set.
	delete(vars, "_LAMBDA_SERVER_PORT")
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func joinPath(parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, ":")
}

// logStreamName is Lambda's YYYY/MM/DD/[version]<32 hex> stream name.
func logStreamName(version string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("2006/01/02") + "/[" + version + "]" + hex.EncodeToString(b[:])
}

// credential resolves RunAs (a user name or numeric uid).
func credential(runAs string) (*syscall.Credential, error) {
	if runAs == "" {
		return nil, nil
	}
	u, err := user.Lookup(runAs)
	if err != nil {
		if u, err = user.LookupId(runAs); err != nil {
			return nil, fmt.Errorf("looking up run_as user %q: %w", runAs, err)
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q uid %q: %w", runAs, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q gid %q: %w", runAs, u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: false, Groups: []uint32{uint32(gid)}}, nil
}

// startProcess starts cmd from a dedicated OS thread that first sets
// no_new_privs (inherited by the child), then waits for it on that same
// thread so Pdeathsig (tied to the forking thread) stays armed for the
// child's life. It returns the start error; exited receives the wait result.
// (On cgroup v1 hosts environments fork through their spawner instead.)
func startProcess(cmd *exec.Cmd, exited chan<- error) error {
	started := make(chan error, 1)
	go func() {
		// The thread is never unlocked: it ends with this goroutine, so the
		// no_new_privs flag never leaks into the rest of the process.
		runtime.LockOSThread()
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0); errno != 0 {
			started <- fmt.Errorf("setting no_new_privs: %w", errno)
			return
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	return <-started
}

// exitDescription is Lambda's wording of a process end ("exit status 3",
// "signal: killed").
func exitDescription(err error) string {
	var ws waitStatusError
	if errors.As(err, &ws) {
		if ws.ws.Signaled() {
			return "signal: " + ws.ws.Signal().String()
		}
		return fmt.Sprintf("exit status %d", ws.ws.ExitStatus())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "signal: " + ws.Signal().String()
		}
		return fmt.Sprintf("exit status %d", ee.ExitCode())
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// readKV reads "key value" lines (cgroup memory.events).
func readKV(path string) map[string]int64 {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		out[k] = n
	}
	return out
}

// preferOOMVictim makes the environment's process the OOM killer's first
// choice (oom_score_adj 1000, inherited by its children). On cgroup v1 hosts
// the instance's spawner thread lives in the environment's memory cgroup, so
// without this an environment that hits its limit could have the kernel pick
// the instance itself — the whole gateway under `nimbus dev` — when the
// instance's RSS is the larger. Raising the value needs no privilege; a
// failure (no /proc, the process already gone) changes nothing else.
func preferOOMVictim(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid), []byte("1000"), 0)
}
