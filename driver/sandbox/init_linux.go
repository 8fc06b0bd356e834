//go:build linux

package sandbox

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

func init() {
	// Checked before any main or TestMain: the host re-executed itself to
	// become an environment's init (or the exec helper).
	if len(os.Args) == 0 {
		return
	}
	switch os.Args[0] {
	case InitName:
		runInit()
	case EnterName:
		runEnter()
	case ZygoteName:
		runZygote()
	}
}

// fail reports a setup failure on the environment's stderr (the function's
// log) and ends the init before any function code ran.
func fail(err error) {
	fmt.Fprintf(os.Stderr, "nimbus sandbox: %v\n", err)
	os.Exit(126)
}

func readPlan() *Plan {
	f := os.NewFile(3, "plan")
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		fail(fmt.Errorf("reading plan: %w", err))
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		fail(fmt.Errorf("decoding plan: %w", err))
	}
	if len(p.Argv) == 0 || !filepath.IsAbs(p.Argv[0]) {
		fail(fmt.Errorf("plan: argv[0] must be an absolute path, got %q", p.Argv))
	}
	return &p
}

// runInit is the environment's PID 1. Everything privileged happens on the
// main OS thread, locked here: capabilities' bounding set, no_new_privs and
// the seccomp filter are per thread, and the bootstrap is forked from it.
func runInit() {
	plan := setUp()
	status := os.NewFile(4, "status")
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	cmd := childCommand(plan, "")
	if err := cmd.Start(); err != nil {
		fail(fmt.Errorf("starting %s: %w", plan.Argv[0], err))
	}
	pid := cmd.Process.Pid
	go func() {
		for s := range sigs {
			_ = syscall.Kill(pid, s.(syscall.Signal))
		}
	}()
	// PID 1 adopts every orphan: reap them all until the bootstrap ends,
	// then leave (the kernel kills what is left in the namespace).
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			fail(fmt.Errorf("waiting for the bootstrap: %w", err))
		}
		if got == pid {
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], uint32(ws))
			_, _ = status.Write(b[:])
			os.Exit(0)
		}
	}
}

// setUp is what the init and the zygote do before any bootstrap: read the
// plan, build the environment's root, limit its processes and drop the
// privileges. Fd 4 (the status pipe or the control socket) is kept from
// the bootstraps.
func setUp() *Plan {
	runtime.LockOSThread()
	// The environment, not its host, is the OOM killer's first choice
	// (inherited by the bootstrap).
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte("1000"), 0)
	plan := readPlan()
	syscall.CloseOnExec(4)
	if plan.JoinNetNS {
		// On this thread, which forks every process of the environment.
		if err := joinNetNS(netnsFD); err != nil {
			fail(err)
		}
	}
	lastCap := lastCapability()
	if err := buildRoot(plan); err != nil {
		fail(err)
	}
	if plan.MaxProcs > 0 {
		// Inherited by the bootstrap; the init (root) is not held to it.
		lim := syscall.Rlimit{Cur: plan.MaxProcs, Max: plan.MaxProcs}
		if err := syscall.Setrlimit(rlimitNproc, &lim); err != nil {
			fail(fmt.Errorf("limiting processes: %w", err))
		}
	}
	if err := restrict(lastCap); err != nil {
		fail(err)
	}
	return plan
}

// runZygote is runInit that starts a bootstrap per request on fd 4 (a
// SOCK_SEQPACKET socket: "S" with the output fds, answered "P" once
// started or "E<error>", then "X<wait status>" when it ended, after which
// every process left in the namespace is killed). It ends when the host
// closes the socket.
func runZygote() {
	plan := setUp()
	const ctl = 4
	send := func(b []byte) {
		if err := syscall.Sendmsg(ctl, b, nil, nil, 0); err != nil {
			os.Exit(0) // the host is gone
		}
	}
	send([]byte{'R'})
	buf := make([]byte, 16)
	oob := make([]byte, syscall.CmsgSpace(2*4))
	for {
		n, oobn, _, _, err := syscall.Recvmsg(ctl, buf, oob, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n == 0 {
			os.Exit(0)
		}
		var fds []int
		if msgs, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if r, err := syscall.ParseUnixRights(&m); err == nil {
					fds = append(fds, r...)
				}
			}
		}
		if buf[0] != 'S' || len(fds) != 2 {
			for _, fd := range fds {
				syscall.Close(fd)
			}
			send([]byte("Ebad request"))
			continue
		}
		out, errOut := os.NewFile(uintptr(fds[0]), "stdout"), os.NewFile(uintptr(fds[1]), "stderr")
		cmd := childCommand(plan, "")
		cmd.Stdout, cmd.Stderr = out, errOut
		cmd.SysProcAttr.Setpgid = true // the host kills its group
		err = cmd.Start()
		out.Close()
		errOut.Close()
		if err != nil {
			send([]byte("E" + err.Error()))
			continue
		}
		send([]byte{'P'})
		pid := cmd.Process.Pid
		for {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(-1, &ws, 0, nil)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				fail(fmt.Errorf("waiting for the bootstrap: %w", err))
			}
			if got == pid {
				// What the bootstrap left behind goes with it.
				_ = syscall.Kill(-1, syscall.SIGKILL)
				for {
					if _, err := syscall.Wait4(-1, nil, 0, nil); err == syscall.ECHILD {
						break
					}
				}
				msg := make([]byte, 5)
				msg[0] = 'X'
				binary.LittleEndian.PutUint32(msg[1:], uint32(ws))
				send(msg)
				break
			}
		}
	}
}

// childCommand is the function's process: its identity, its environment,
// killed with its parent.
func childCommand(plan *Plan, chroot string) *exec.Cmd {
	cmd := &exec.Cmd{Path: plan.Argv[0], Args: plan.Argv, Env: plan.Env, Dir: plan.Dir}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     chroot,
		Credential: &syscall.Credential{Uid: plan.UID, Gid: plan.GID, Groups: []uint32{plan.GID}},
	}
	if chroot == "" {
		// (Not for Enter: Go's child compares getppid() with the parent's
		// pid, and a parent outside the child's PID namespace reads as 0.)
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	return cmd
}

const rlimitNproc = 6 // RLIMIT_NPROC

const (
	msRec     = syscall.MS_REC
	msPrivate = syscall.MS_PRIVATE
)

// buildRoot assembles the environment's root on a tmpfs at plan.Root and
// pivots into it. Only this mount namespace sees any of it.
func buildRoot(plan *Plan) error {
	if err := syscall.Mount("", "/", "", msRec|msPrivate, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	root := plan.Root
	if err := syscall.Mount("tmpfs", root, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("mounting the root tmpfs on %s: %w", root, err)
	}
	if len(plan.RootLayers) > 0 {
		var err error
		if root, err = imageRoot(root, plan); err != nil {
			return err
		}
	}
	mounts := append([]Mount(nil), plan.Mounts...)
	// Parents before children, so a nested target's mount point exists.
	sort.SliceStable(mounts, func(i, j int) bool {
		return strings.Count(filepath.Clean(mounts[i].Target), "/") < strings.Count(filepath.Clean(mounts[j].Target), "/")
	})
	for _, m := range mounts {
		if len(m.Layers) > 0 {
			if err := overlay(root, m.Layers, m.Target); err != nil {
				return err
			}
			continue
		}
		if err := bind(root, m.Source, m.Target, !m.Writable, false); err != nil {
			if os.IsNotExist(err) {
				continue // a host path this machine does not have
			}
			return err
		}
	}
	tmpMB := plan.TmpMB
	if tmpMB <= 0 {
		tmpMB = 512
	}
	tmp := filepath.Join(root, TmpDir)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	opts := fmt.Sprintf("size=%dm,mode=0700,uid=%d,gid=%d", tmpMB, plan.UID, plan.GID)
	if err := syscall.Mount("tmpfs", tmp, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mounting /tmp: %w", err)
	}
	proc := filepath.Join(root, "proc")
	if err := os.MkdirAll(proc, 0o555); err != nil {
		return err
	}
	if err := syscall.Mount("proc", proc, "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	dev := filepath.Join(root, "dev")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return err
	}
	for _, n := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		if err := bind(root, "/dev/"+n, "/dev/"+n, false, true); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	for n, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(dev, n)); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(plan.Files))
	for n := range plan.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	stage := filepath.Join(root, ".nimbus")
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return err
	}
	for i, n := range names {
		src := filepath.Join(stage, strconv.Itoa(i))
		if err := os.WriteFile(src, []byte(plan.Files[n]), 0o644); err != nil {
			return err
		}
		if err := bind(root, src, n, true, false); err != nil {
			return err
		}
	}
	return pivot(root)
}

// imageRoot stacks the plan's image layers at tmpfs/root with a writable
// upper layer in the tmpfs (for mount points only: pivot makes the root
// read-only) and returns the stacked root.
//
// The mount options string is limited to a page, which the layers' own
// paths (a cache directory and a 71-character digest name each) fill at
// about 40 layers; so the layers are named by short symlinks in the
// tmpfs (l/0, l/1, …, as Docker's overlay2 driver does) and the options
// name those relative to it, which leaves room for overlayfs's own limit
// (MaxRootLayers) and lets a layer's path hold any character.
func imageRoot(tmpfs string, plan *Plan) (string, error) {
	if n := len(plan.RootLayers); n > MaxRootLayers {
		return "", fmt.Errorf("the image has %d layers; overlayfs stacks at most %d", n, MaxRootLayers)
	}
	upper, work, root, short := filepath.Join(tmpfs, "upper"), filepath.Join(tmpfs, "work"), filepath.Join(tmpfs, "root"), filepath.Join(tmpfs, "l")
	for _, d := range []string{upper, work, root, short} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", err
		}
	}
	names := make([]string, len(plan.RootLayers))
	for i, l := range plan.RootLayers {
		names[i] = "l/" + strconv.FormatInt(int64(i), 36)
		if err := os.Symlink(l, filepath.Join(tmpfs, names[i])); err != nil {
			return "", fmt.Errorf("naming image layer %d: %w", i, err)
		}
	}
	lower := strings.Join(names, ":")
	if len(names) == 1 {
		// overlayfs needs two lower layers without an upper; with one, the
		// empty upper is enough.
		lower = names[0]
	}
	// Relative lower paths resolve against the working directory; the
	// init leaves it at the new root when it pivots.
	if err := syscall.Chdir(tmpfs); err != nil {
		return "", err
	}
	opts := "lowerdir=" + lower + ",upperdir=upper,workdir=work"
	if err := syscall.Mount("overlay", root, "overlay", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		return "", fmt.Errorf("stacking the image's %d layers as the root: %w", len(plan.RootLayers), err)
	}
	if plan.Dir != "" {
		if err := os.MkdirAll(filepath.Join(root, plan.Dir), 0o755); err != nil {
			return "", fmt.Errorf("creating the working directory %s: %w", plan.Dir, err)
		}
	}
	return root, nil
}

// bind mounts source (a host path) at target inside root, read-only if ro.
func bind(root, source, target string, ro, devices bool) error {
	fi, err := os.Stat(source)
	if err != nil {
		return err
	}
	dst := filepath.Join(root, target)
	if fi.IsDir() {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return fmt.Errorf("creating mount point %s: %w", target, err)
		}
	} else if _, err := os.Lstat(dst); err != nil {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("creating mount point %s: %w", target, err)
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("creating mount point %s: %w", target, err)
		}
		f.Close()
	}
	if err := syscall.Mount(source, dst, "", syscall.MS_BIND|msRec, ""); err != nil {
		return fmt.Errorf("binding %s at %s: %w", source, target, err)
	}
	flags := uintptr(syscall.MS_BIND | syscall.MS_REMOUNT | syscall.MS_NOSUID)
	if !devices {
		flags |= syscall.MS_NODEV
	}
	if ro {
		flags |= syscall.MS_RDONLY
	}
	if err := syscall.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("restricting %s: %w", target, err)
	}
	return nil
}

// overlay stacks layers (the first on top) read-only at target; one layer
// is a plain read-only bind.
func overlay(root string, layers []string, target string) error {
	if len(layers) == 1 {
		return bind(root, layers[0], target, true, false)
	}
	dst := filepath.Join(root, target)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, l := range layers {
		if strings.ContainsAny(l, ":,\\") {
			return fmt.Errorf("layer path %q cannot be stacked (':', ',' or '\\')", l)
		}
	}
	opts := "lowerdir=" + strings.Join(layers, ":")
	if err := syscall.Mount("overlay", dst, "overlay", syscall.MS_RDONLY|syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		return fmt.Errorf("stacking layers at %s: %w", target, err)
	}
	return nil
}

// pivot makes root the root of the mount namespace, drops the host's tree
// and makes the root tmpfs itself read-only.
func pivot(root string) error {
	oldRoot, err := syscall.Open("/", syscall.O_DIRECTORY|syscall.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(oldRoot)
	if err := syscall.Chdir(root); err != nil {
		return err
	}
	if err := syscall.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := syscall.Fchdir(oldRoot); err != nil {
		return err
	}
	if err := syscall.Mount("", ".", "", syscall.MS_SLAVE|msRec, ""); err != nil {
		return err
	}
	if err := syscall.Unmount(".", syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host root: %w", err)
	}
	if err := syscall.Chdir("/"); err != nil {
		return err
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REMOUNT|syscall.MS_RDONLY|syscall.MS_NOSUID|syscall.MS_NODEV, ""); err != nil {
		return fmt.Errorf("making the root read-only: %w", err)
	}
	return nil
}

func lastCapability() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 63
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 63
	}
	return n
}

const (
	prCapbsetDrop   = 24
	prSetNoNewPrivs = 38
	prCapAmbient    = 47
	prCapAmbientClr = 4
)

// restrict drops the calling thread's capability bounding set and ambient
// set, sets no_new_privs and installs the seccomp filter; processes it forks
// inherit all of it, and a uid switch clears their remaining capabilities.
func restrict(lastCap int) error {
	for c := 0; c <= lastCap; c++ {
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prCapbsetDrop, uintptr(c), 0); errno != 0 && errno != syscall.EINVAL {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, errno)
		}
	}
	_, _, _ = syscall.RawSyscall6(syscall.SYS_PRCTL, prCapAmbient, prCapAmbientClr, 0, 0, 0, 0)
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0); errno != 0 {
		return fmt.Errorf("setting no_new_privs: %w", errno)
	}
	return loadSeccomp()
}

// runEnter runs a command inside a running environment (`nomad alloc
// exec`): the PID and network namespaces of its init, its root (through
// /proc/<init>/root: Go cannot setns into a mount namespace from a
// multi-threaded process), its identity and restrictions.
func runEnter() {
	runtime.LockOSThread()
	plan := readPlan()
	lastCap := lastCapability()
	for _, ns := range []struct {
		name string
		flag int
	}{{"pid", syscall.CLONE_NEWPID}, {"net", syscall.CLONE_NEWNET}} {
		fd, err := syscall.Open(fmt.Sprintf("/proc/%d/ns/%s", plan.Target, ns.name), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			fail(fmt.Errorf("opening the environment's %s namespace: %w", ns.name, err))
		}
		if _, _, errno := syscall.RawSyscall(sysSetns, uintptr(fd), uintptr(ns.flag), 0); errno != 0 {
			fail(fmt.Errorf("entering the environment's %s namespace: %w", ns.name, errno))
		}
		syscall.Close(fd)
	}
	if err := restrict(lastCap); err != nil {
		fail(err)
	}
	cmd := childCommand(plan, fmt.Sprintf("/proc/%d/root", plan.Target))
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				os.Exit(128 + int(ws.Signal()))
			}
			os.Exit(ee.ExitCode())
		}
		fail(err)
	}
	os.Exit(0)
}
