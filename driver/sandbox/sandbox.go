package sandbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
)

// InitName is the argv[0] under which a binary linking this package runs the
// environment init instead of its main; EnterName runs the exec helper.
const (
	InitName  = "nimbus-sandbox-init"
	EnterName = "nimbus-sandbox-enter"
)

// Well-known paths inside an environment.
const (
	TaskRoot   = "/var/task"
	OptDir     = "/opt"
	RuntimeDir = "/var/runtime"
	TmpDir     = "/tmp"
	// Path is the PATH of processes inside an environment (Lambda's, less /var/lang/bin).
	Path = "/usr/local/bin:/usr/bin/:/bin:/opt/bin"
)

// Mount is one bind mount into the environment's root.
type Mount struct {
	// Source is a host path (file or directory); Target the path inside.
	Source string `json:"source"`
	Target string `json:"target"`
	// Writable leaves the bind read-write (default read-only).
	Writable bool `json:"writable,omitempty"`
	// Layers, instead of Source, stacks host directories read-only at
	// Target (overlayfs), the first on top: Lambda's /opt from layers.
	Layers []string `json:"layers,omitempty"`
}

// MaxRootLayers is the most layers a root stacks: overlayfs's own limit
// on lower layers (the kernel's OVL_MAX_STACK).
const MaxRootLayers = 500

// Plan is what the init builds and runs. The host side fills it and passes
// it to Command.
type Plan struct {
	// Root is an empty host directory the init mounts the environment's root
	// tmpfs on (inside its own mount namespace: the host never sees it).
	Root string `json:"root"`
	// RootLayers, when set, make the environment's root an image's
	// filesystem instead of an empty tmpfs: host directories stacked
	// read-only with overlayfs, the first on top (an OCI image's unpacked
	// layers, top layer first, in overlayfs form). Mount points the plan
	// needs (/tmp, /proc, /dev, Dir, Files, Mounts) are made in a small
	// private tmpfs layered above them; the root is read-only all the same.
	// At most MaxRootLayers.
	RootLayers []string `json:"root_layers,omitempty"`
	// Mounts are bound in order, read-only unless marked.
	Mounts []Mount `json:"mounts"`
	// TmpMB sizes the tmpfs at /tmp (0: 512).
	TmpMB int `json:"tmp_mb"`
	// UID and GID are the function's identity; 0 only when root is allowed.
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
	// MaxProcs caps the processes and threads of the function's uid
	// (RLIMIT_NPROC; 0: no cap). Environments have a uid each, so it bounds
	// one environment: a fork bomb gets EAGAIN.
	MaxProcs uint64 `json:"max_procs,omitempty"`
	// Files are small files created read-only inside (e.g. /etc/passwd).
	Files map[string]string `json:"files,omitempty"`
	// Argv, Env and Dir start the bootstrap (paths as seen inside).
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
	// Target (Enter only) is the host pid of the environment's init.
	Target int `json:"target,omitempty"`
	// NetNS, when set, is the network namespace the environment joins
	// (network "none"); nil leaves it on the host's network. The init gets
	// it as fd 5 (JoinNetNS tells it so).
	NetNS     *NetNS `json:"-"`
	JoinNetNS bool   `json:"join_netns,omitempty"`
}

// netnsFD is where the init finds Plan.NetNS.
const netnsFD = 5

// Process is a started environment init, for the host side.
type Process struct {
	Cmd    *exec.Cmd
	status *os.File
}

// Command returns the command that starts plan's environment through the
// init (not started yet: the caller adds its output, its SysProcAttr fields
// and starts it, then calls Started). The plan travels on a pipe written
// before the start; the init's report of the bootstrap's wait status comes
// back on another.
func Command(plan *Plan) (*Process, error) {
	return command(InitName, plan, syscall.CLONE_NEWNS|syscall.CLONE_NEWPID)
}

// EnterCommand returns the command that runs plan.Argv inside the running
// environment whose init is plan.Target (`nomad alloc exec`): in its PID and
// network namespaces, under its root, with the function's identity and
// restrictions. Output and exit status are the command's own.
func EnterCommand(plan *Plan) (*exec.Cmd, error) {
	p, err := command(EnterName, plan, 0)
	if err != nil {
		return nil, err
	}
	p.status.Close()
	p.Cmd.ExtraFiles = p.Cmd.ExtraFiles[:1]
	return p.Cmd, nil
}

func command(name string, plan *Plan, flags uintptr) (*Process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sandbox: finding own executable: %w", err)
	}
	var netns *os.File
	if plan.NetNS != nil && name != EnterName {
		if netns, err = plan.NetNS.dup(); err != nil {
			return nil, err
		}
		plan.JoinNetNS = true
	}
	b, err := json.Marshal(plan)
	if err != nil {
		netns.Close()
		return nil, err
	}
	planR, planW, err := os.Pipe()
	if err != nil {
		netns.Close()
		return nil, err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		planR.Close()
		planW.Close()
		netns.Close()
		return nil, err
	}
	// The plan is written by a goroutine: it may exceed the pipe's buffer.
	go func() {
		_, _ = planW.Write(b)
		planW.Close()
	}()
	cmd := &exec.Cmd{Path: self, Args: []string{name}, Env: []string{}}
	cmd.ExtraFiles = []*os.File{planR, statusW}
	if netns != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, netns) // netnsFD
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags}
	return &Process{Cmd: cmd, status: statusR}, nil
}

// Started closes the host's copies of the child's ends; call it once after
// Cmd.Start (whatever its result).
func (p *Process) Started() {
	for _, f := range p.Cmd.ExtraFiles {
		f.Close()
	}
}

// Status reads, after Cmd.Wait, the bootstrap's wait status as reported by
// the init; ok is false when the init ended before reporting one (a setup
// failure, or the init itself was killed), in which case the init's own
// exit status describes the end.
func (p *Process) Status() (ws syscall.WaitStatus, ok bool) {
	defer p.status.Close()
	var b [4]byte
	if _, err := io.ReadFull(p.status, b[:]); err != nil {
		return 0, false
	}
	return syscall.WaitStatus(binary.LittleEndian.Uint32(b[:])), true
}

// Close releases the status pipe of a process that was never started.
func (p *Process) Close() {
	p.status.Close()
	if len(p.Cmd.ExtraFiles) > 2 {
		p.Cmd.ExtraFiles[2].Close()
	}
}

// ErrUnsupported is returned where the host cannot isolate environments.
var ErrUnsupported = errors.New("sandbox: not supported on this host")
