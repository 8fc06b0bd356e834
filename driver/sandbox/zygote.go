package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// ZygoteName is the argv[0] of an environment's zygote: an init that builds
// the environment once (namespaces, root, restrictions) and then starts a
// bootstrap whenever asked, so a cold start costs a fork and an exec, not
// the sandbox's setup.
const ZygoteName = "nimbus-sandbox-zygote"

// Zygote is the host side of a running zygote.
type Zygote struct {
	Cmd *exec.Cmd
	mu  sync.Mutex
	ctl *os.File
	// child is the host's copy of the zygote's end until Started.
	child *os.File
	dead  bool
}

// ZygoteCommand returns the (unstarted) command of a zygote for plan; the
// caller adds its SysProcAttr fields, starts it and calls Started.
func ZygoteCommand(plan *Plan) (*Zygote, error) {
	p, err := command(ZygoteName, plan, syscall.CLONE_NEWNS|syscall.CLONE_NEWPID)
	if err != nil {
		return nil, err
	}
	p.status.Close()
	p.Cmd.ExtraFiles[1].Close()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		p.Cmd.ExtraFiles[0].Close()
		return nil, err
	}
	z := &Zygote{Cmd: p.Cmd, ctl: os.NewFile(uintptr(fds[0]), "zygote-ctl"), child: os.NewFile(uintptr(fds[1]), "zygote-ctl")}
	p.Cmd.ExtraFiles[1] = z.child
	return z, nil
}

// Started closes the host's copies of the zygote's ends.
func (z *Zygote) Started() {
	for _, f := range z.Cmd.ExtraFiles {
		f.Close()
	}
}

// Ready waits until the zygote has built the environment (an error: it
// failed and ended; its reason went to its stderr).
func (z *Zygote) Ready() error {
	msg, err := z.read()
	if err == nil && msg[0] != 'R' {
		err = fmt.Errorf("sandbox zygote: unexpected message %q", msg)
	}
	if err != nil {
		z.Close()
	}
	return err
}

// Spawn starts the bootstrap with stdout and stderr as its output and
// returns its host pid (it leads its own process group) and a function
// that waits for its end. An error means the zygote is gone: use Command.
func (z *Zygote) Spawn(stdout, stderr *os.File) (pid int, wait func() syscall.WaitStatus, err error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.dead {
		return 0, nil, errors.New("sandbox zygote is gone")
	}
	fail := func(err error) (int, func() syscall.WaitStatus, error) {
		z.dead = true
		return 0, nil, err
	}
	rights := syscall.UnixRights(int(stdout.Fd()), int(stderr.Fd()))
	if err := syscall.Sendmsg(int(z.ctl.Fd()), []byte{'S'}, rights, nil, 0); err != nil {
		return fail(fmt.Errorf("asking the sandbox zygote: %w", err))
	}
	msg, err := z.read()
	if err != nil {
		return fail(err)
	}
	switch msg[0] {
	case 'E':
		return 0, nil, fmt.Errorf("starting the bootstrap: %s", msg[1:])
	case 'P':
	default:
		return fail(fmt.Errorf("sandbox zygote: unexpected message %q", msg))
	}
	zpid := z.Cmd.Process.Pid
	b, err := os.ReadFile("/proc/" + strconv.Itoa(zpid) + "/task/" + strconv.Itoa(zpid) + "/children")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) > 0 {
			pid, err = strconv.Atoi(f[0])
		} else {
			err = errors.New("no child")
		}
	}
	if err != nil {
		return fail(fmt.Errorf("finding the bootstrap of sandbox zygote %d: %w", zpid, err))
	}
	return pid, func() syscall.WaitStatus {
		msg, err := z.read()
		if err != nil || msg[0] != 'X' || len(msg) != 5 {
			// The zygote died (killed, out of memory): so did its namespace.
			z.mu.Lock()
			z.dead = true
			z.mu.Unlock()
			return syscall.WaitStatus(syscall.SIGKILL)
		}
		return syscall.WaitStatus(binary.LittleEndian.Uint32(msg[1:]))
	}, nil
}

func (z *Zygote) read() ([]byte, error) {
	buf := make([]byte, 512)
	n, _, _, _, err := syscall.Recvmsg(int(z.ctl.Fd()), buf, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("reading from the sandbox zygote: %w", err)
	}
	if n == 0 {
		return nil, errors.New("the sandbox zygote ended")
	}
	return buf[:n], nil
}

// Alive reports whether Spawn may still work.
func (z *Zygote) Alive() bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return !z.dead
}

// Close ends the zygote (and whatever still runs in its namespace).
func (z *Zygote) Close() {
	z.mu.Lock()
	z.dead = true
	z.mu.Unlock()
	z.ctl.Close()
	if z.Cmd.Process != nil {
		_ = z.Cmd.Process.Kill()
	}
}
