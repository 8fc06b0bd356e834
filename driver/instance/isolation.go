package instance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/nimbus-fn/nimbus/driver/sandbox"
)

// Isolation configures the sandbox every environment runs in (see
// driver/sandbox). The zero value isolates fully wherever the host allows:
// a uid from DefaultUIDRange per environment, the default chroot_env.
type Isolation struct {
	// Disabled runs environments unisolated even on a host that could
	// isolate them: the benchmarks' baseline. The driver never sets it.
	Disabled bool `json:"disabled,omitempty"`
	// UIDRange is "first-last": each environment runs as its own uid (and
	// gid of the same number) leased from it. Ignored when RunAs is set.
	UIDRange string `json:"uid_range,omitempty"`
	// AllowRoot lets RunAs name root (uid 0): still without capabilities.
	AllowRoot bool `json:"allow_root,omitempty"`
	// ChrootEnv maps host paths to the paths they are bound at (read-only)
	// inside every environment; empty means sandbox.DefaultChrootEnv.
	ChrootEnv map[string]string `json:"chroot_env,omitempty"`
}

// DefaultUIDRange is where environments' uids come from by default.
const DefaultUIDRange = "64000-64999"

// ParseUIDRange parses "first-last" (1 ≤ first ≤ last).
func ParseUIDRange(s string) (first, last uint32, err error) {
	a, b, ok := strings.Cut(s, "-")
	f, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 32)
	l, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 32)
	if !ok || err1 != nil || err2 != nil || f == 0 || l < f {
		return 0, 0, fmt.Errorf("uid_range %q: want \"first-last\" with 0 < first <= last", s)
	}
	return uint32(f), uint32(l), nil
}

// uidLockDir holds one lock file per leased uid, shared by every process
// hosting environments on the machine (each instance under Nomad is its
// own process); flock releases a lease when its holder dies.
var uidLockDir = "/run/nimbus/uids"

// uidLease is one uid held for one environment's life.
type uidLease struct {
	uid uint32
	f   *os.File
}

// leaseUID takes the first free uid of [first, last].
func leaseUID(first, last uint32) (*uidLease, error) {
	if err := os.MkdirAll(uidLockDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the uid lease dir: %w", err)
	}
	for u := first; u <= last && u >= first; u++ {
		f, err := os.OpenFile(filepath.Join(uidLockDir, strconv.FormatUint(uint64(u), 10)), os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("leasing a uid: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			return &uidLease{uid: u, f: f}, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("no free uid in %d-%d: every one runs an environment", first, last)
}

func (l *uidLease) release() {
	if l != nil {
		l.f.Close()
	}
}

// isolationPlan decides at New whether environments are isolated and as
// whom: ok false means unisolated (missing lists why, for the one log line).
func isolationPlan(c *Config, cred *syscall.Credential) (ok bool, missing []string, err error) {
	iso := c.Isolation
	if cred != nil && cred.Uid == 0 && !iso.AllowRoot {
		return false, nil, errors.New("instance config: run_as names root; running functions as root needs allow_root")
	}
	if iso.UIDRange != "" {
		if _, _, err := ParseUIDRange(iso.UIDRange); err != nil {
			return false, nil, fmt.Errorf("instance config: %w", err)
		}
	}
	if iso.Disabled {
		if c.Network == NetworkNone {
			return false, nil, errors.New("instance config: network \"none\" needs the sandbox, and isolation is disabled")
		}
		return false, nil, nil
	}
	missing = sandbox.Missing()
	if len(missing) > 0 && c.Network == NetworkNone {
		// Never the host's network instead.
		return false, missing, fmt.Errorf("network \"none\" needs a network namespace of the environment's own, which this host cannot give (missing: %s)", strings.Join(missing, "; "))
	}
	return len(missing) == 0, missing, nil
}

// sandboxPaths are the paths a process sees inside its environment.
var sandboxPaths = struct{ code, opt, runtime, tmp string }{sandbox.TaskRoot, sandbox.OptDir, sandbox.RuntimeDir, sandbox.TmpDir}

// plan builds the sandbox plan that runs argv (host paths) in e.
func (e *env) plan(argv []string) (*sandbox.Plan, error) {
	in := e.inst
	c := in.cfg
	if c.Image != nil {
		return e.imagePlan(argv), nil
	}
	chroot := c.Isolation.ChrootEnv
	if len(chroot) == 0 {
		chroot = sandbox.DefaultChrootEnv
	}
	mounts := sandbox.ChrootMounts(chroot)
	mounts = append(mounts,
		sandbox.Mount{Source: c.CodeDir, Target: sandboxPaths.code},
		sandbox.Mount{Source: in.runtimeDir, Target: sandboxPaths.runtime})
	// /opt is the layers stacked, the last (highest priority) on top; the
	// host's merged tree of symlinks would point outside the environment.
	opt := sandbox.Mount{Source: in.optDir, Target: sandboxPaths.opt}
	for i := len(c.LayerDirs) - 1; i >= 0; i-- {
		opt.Layers = append(opt.Layers, c.LayerDirs[i])
	}
	mounts = append(mounts, opt)
	inner := make([]string, len(argv))
	for i, a := range argv {
		inner[i] = e.inside(a)
	}
	if !strings.HasPrefix(c.Runtime, "provided") {
		// The interpreter is the one inside the environment.
		exe, err := lookInside(filepath.Base(argv[0]), chroot)
		if err != nil {
			return nil, err
		}
		inner[0] = exe
	}
	ic := *c
	ic.CodeDir = sandboxPaths.code
	base := func(k string) string {
		if k == "PATH" {
			return strings.TrimSuffix(sandbox.Path, ":/opt/bin")
		}
		return ""
	}
	return &sandbox.Plan{
		Root:     e.rootDir,
		Mounts:   mounts,
		TmpMB:    c.EphemeralStorageMB,
		MaxProcs: maxProcs,
		UID:      e.uid,
		GID:      e.gid,
		Files: map[string]string{
			"/etc/passwd": sandbox.Passwd(e.uid, e.gid),
			"/etc/group":  sandbox.Group(e.gid),
		},
		Argv:  inner,
		Env:   environ(&ic, e.addr, sandboxPaths.opt, sandboxPaths.runtime, sandboxPaths.tmp, base),
		Dir:   sandboxPaths.code,
		NetNS: e.netns,
	}, nil
}

// inside maps a host path under the code, layer or runtime dirs to the
// path the environment sees.
func (e *env) inside(p string) string {
	in := e.inst
	for _, m := range [][2]string{{in.cfg.CodeDir, sandboxPaths.code}, {in.optDir, sandboxPaths.opt}, {in.runtimeDir, sandboxPaths.runtime}} {
		if rel, err := filepath.Rel(m[0], p); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join(m[1], rel)
		}
	}
	return p
}

// lookInside finds an executable by name on the environment's PATH,
// through the chroot_env binds that make it up.
func lookInside(name string, chroot map[string]string) (string, error) {
	for _, dir := range filepath.SplitList(sandbox.Path) {
		for src, dst := range chroot {
			rel, err := filepath.Rel(dst, dir)
			if err != nil || strings.HasPrefix(rel, "..") {
				continue
			}
			host := filepath.Join(src, rel, name)
			if fi, err := os.Stat(host); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return filepath.Join(dir, name), nil
			}
		}
	}
	return "", fmt.Errorf("%w: %s is not on the environment's PATH (%s)", ErrInvalidEntrypoint, name, sandbox.Path)
}

func (in *Instance) uidRange() string {
	if in.cfg.Isolation.UIDRange != "" {
		return in.cfg.Isolation.UIDRange
	}
	return DefaultUIDRange
}

// isolateEnv gives e its identity (RunAs, else a leased uid) and the
// directory its root is assembled on.
func (in *Instance) isolateEnv(e *env) error {
	if in.cred != nil {
		e.uid, e.gid = in.cred.Uid, in.cred.Gid
	} else {
		first, last, err := ParseUIDRange(in.uidRange())
		if err != nil {
			return err
		}
		if e.uidLease, err = leaseUID(first, last); err != nil {
			return err
		}
		e.uid, e.gid = e.uidLease.uid, e.uidLease.uid
	}
	e.rootDir = filepath.Join(e.dirName(), "root")
	if err := os.MkdirAll(e.rootDir, 0o700); err != nil {
		e.uidLease.release()
		return fmt.Errorf("creating environment root: %w", err)
	}
	return nil
}

// waitStatusError is the end of a bootstrap, as its init reported it.
type waitStatusError struct{ ws syscall.WaitStatus }

func (w waitStatusError) Error() string { return exitDescription(w) }

// bootstrapRSS opens the RSS of the bootstrap an environment's init (host
// pid initPID) started: its first child.
func bootstrapRSS(initPID int) *rssReader {
	pid := strconv.Itoa(initPID)
	b, err := os.ReadFile("/proc/" + pid + "/task/" + pid + "/children")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return nil
	}
	child, err := strconv.Atoi(f[0])
	if err != nil {
		return nil
	}
	r, _ := openRSS(child)
	return r
}

// openToFunctions makes the top directories of the code and the layers
// searchable and readable by the environments' users (their contents keep
// their own modes): they are bound into the environments as they are.
func openToFunctions(dirs ...string) {
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && fi.Mode().Perm()&0o005 != 0o005 {
			_ = os.Chmod(d, fi.Mode().Perm()|0o055)
		}
	}
}

// Isolated reports whether the instance's environments run in the sandbox.
func (in *Instance) Isolated() bool { return in.isolated }

// startZygote starts the environment's sandbox zygote, born (like every
// process of the environment) in its cgroup: the sandbox's setup (mount
// and pid namespaces, root, restrictions) then happens once, at instance
// start, and a cold start is a fork and an exec. Without a zygote each
// process gets a fresh init.
func (e *env) startZygote() {
	in := e.inst
	argv, err := in.argv()
	if err != nil {
		return // every start will report it
	}
	plan, err := e.plan(argv)
	if err != nil {
		return
	}
	z, err := sandbox.ZygoteCommand(plan)
	if err != nil {
		e.log.Debug("no sandbox zygote", "error", err)
		return
	}
	z.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Cloneflags: z.Cmd.SysProcAttr.Cloneflags}
	z.Cmd.Stderr = in.stderr // its setup errors, if any
	exited := make(chan error, 1)
	if e.spawner != nil {
		err = e.spawner.start(z.Cmd, exited)
	} else {
		err = startProcess(z.Cmd, exited)
	}
	z.Started()
	if err != nil {
		e.log.Debug("no sandbox zygote", "error", err)
		return
	}
	// Start waits for the setup: it is instance start-up, not a cold start.
	if err := z.Ready(); err != nil {
		e.log.Warn("sandbox zygote failed; environments start through a fresh init", "error", err)
		return
	}
	e.zyg = z
	if e.cgV1 != nil {
		e.cgV1.keep = z.Cmd.Process.Pid
	}
	go func() {
		if err := <-exited; err != nil && !in.isClosing() {
			e.log.Debug("sandbox zygote ended; environments start through a fresh init", "status", exitDescription(err))
		}
	}()
}

// closeZygote ends the environment's zygote.
func (e *env) closeZygote() {
	if e.zyg != nil {
		e.zyg.Close()
	}
}
