package nomadplugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
	"github.com/nimbus-fn/nimbus/driver/sandbox"
)

// maxExecOutput bounds what ExecTask buffers per stream (script checks
// print little; this keeps a runaway command from exhausting the plugin).
const maxExecOutput = 1 << 20

// execCommand builds a command that runs in the function's code directory
// with the task's environment, as the function's user.
func (d *Driver) execCommand(ctx context.Context, taskID string, argv []string) (*exec.Cmd, *task, error) {
	t, ok := d.lookup(taskID)
	if !ok {
		return nil, nil, status.Errorf(codes.NotFound, "%v: %s", errTaskNotFound, taskID)
	}
	if len(argv) == 0 || argv[0] == "" {
		return nil, nil, status.Error(codes.InvalidArgument, "exec: command is empty")
	}
	if t.exited() {
		return nil, nil, status.Errorf(codes.FailedPrecondition, "task %s has exited", taskID)
	}
	if initPID, uid, gid, ok := runningEnvironment(t.proc.pid); ok {
		// The instance isolates its environments: enter a running one.
		cmd, err := enterCommand(ctx, t, argv, initPID, uid, gid)
		if err != nil {
			return nil, nil, status.Error(codes.FailedPrecondition, err.Error())
		}
		return cmd, t, nil
	}
	if t.state.Image != "" {
		return nil, nil, status.Error(codes.FailedPrecondition, "exec: no environment of this image function is running (its filesystem exists only inside one); invoke it first")
	}
	// No isolated environment runs (none started yet, or the host cannot
	// isolate): the operator's command runs beside the instance, in the
	// code directory as the task's user, as it did before isolation.
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = t.state.CodeDir
	env := make([]string, 0, len(t.cfg.GetEnv())+1)
	for k, v := range t.cfg.GetEnv() {
		env = append(env, k+"="+v)
	}
	env = append(env, "LAMBDA_TASK_ROOT="+t.state.CodeDir)
	sort.Strings(env)
	cmd.Env = env
	if p, err := lookPathIn(argv[0], t.cfg.GetEnv()["PATH"]); err == nil {
		cmd.Path = p
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The command leads its own process group (or, on a tty, session): on a
	// timeout or a closed stream kill the whole group, or a script check's
	// children outlive it as orphans, one set per check interval.
	cmd.Cancel = func() error {
		err := unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		if errors.Is(err, unix.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	if t.state.RunAs != "" {
		cred, err := credential(t.state.RunAs)
		if err != nil {
			return nil, nil, status.Error(codes.FailedPrecondition, err.Error())
		}
		cmd.SysProcAttr.Credential = cred
	}
	cmd.WaitDelay = time.Second
	return cmd, t, nil
}

// enterCommand runs argv inside the execution environment whose sandbox
// init is initPID: its PID and network namespaces, its root, its uid and
// its restrictions (driver/sandbox's exec helper), at /var/task with the
// task's environment.
func enterCommand(ctx context.Context, t *task, argv []string, initPID int, uid, gid uint32) (*exec.Cmd, error) {
	root := fmt.Sprintf("/proc/%d/root", initPID)
	path := argv[0]
	if !bytes.ContainsRune([]byte(path), '/') {
		for _, dir := range bytes.Split([]byte(sandbox.Path), []byte{':'}) {
			p := string(dir) + "/" + path
			if fi, err := os.Stat(root + p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				path = p
				break
			}
		}
	}
	env := make([]string, 0, len(t.cfg.GetEnv())+2)
	for k, v := range t.cfg.GetEnv() {
		if k != "PATH" {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, "LAMBDA_TASK_ROOT="+sandbox.TaskRoot, "PATH="+sandbox.Path)
	sort.Strings(env)
	helper, err := sandbox.EnterCommand(&sandbox.Plan{
		Argv: append([]string{path}, argv[1:]...), Env: env, Dir: sandbox.TaskRoot,
		UID: uid, GID: gid, Target: initPID,
	})
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, helper.Path)
	cmd.Args, cmd.Env, cmd.ExtraFiles, cmd.SysProcAttr = helper.Args, helper.Env, helper.ExtraFiles, helper.SysProcAttr
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error {
		err := unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		if errors.Is(err, unix.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = time.Second
	go func() { // the plan pipe's read end is the child's once it started
		<-ctx.Done()
		for _, f := range cmd.ExtraFiles {
			f.Close()
		}
	}()
	return cmd, nil
}

// runningEnvironment finds, among the instance process's children, a
// sandbox init with a running bootstrap, and the bootstrap's uid and gid.
func runningEnvironment(instancePID int) (initPID int, uid, gid uint32, ok bool) {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", instancePID))
	for _, tk := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", instancePID, tk.Name()))
		for _, f := range bytes.Fields(b) {
			pid, _ := strconv.Atoi(string(f))
			argv0, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if string(bytes.SplitN(argv0, []byte{0}, 2)[0]) != sandbox.InitName {
				continue
			}
			kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
			kf := bytes.Fields(kids)
			if len(kf) == 0 {
				continue
			}
			st, err := os.ReadFile(fmt.Sprintf("/proc/%s/status", kf[0]))
			if err != nil {
				continue
			}
			u, g := statusID(st, "Uid:"), statusID(st, "Gid:")
			if u < 0 || g < 0 {
				continue
			}
			return pid, uint32(u), uint32(g), true
		}
	}
	return 0, 0, 0, false
}

// statusID reads the real id of a /proc/<pid>/status "Uid:" or "Gid:" line.
func statusID(status []byte, key string) int {
	for _, line := range bytes.Split(status, []byte{'\n'}) {
		if rest, ok := bytes.CutPrefix(line, []byte(key)); ok {
			f := bytes.Fields(rest)
			if len(f) > 0 {
				if n, err := strconv.Atoi(string(f[0])); err == nil {
					return n
				}
			}
		}
	}
	return -1
}

// lookPathIn resolves a bare command name against the task's PATH.
func lookPathIn(name, path string) (string, error) {
	if path == "" || bytes.ContainsRune([]byte(name), '/') {
		return "", errors.New("no lookup needed")
	}
	for _, dir := range bytes.Split([]byte(path), []byte{':'}) {
		p := string(dir) + "/" + name
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

func credential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, numErr := strconv.Atoi(name); numErr != nil {
			return nil, fmt.Errorf("run_as user %q: %w", name, err)
		}
		u, err = user.LookupId(name)
		if err != nil {
			return nil, fmt.Errorf("run_as uid %q: %w", name, err)
		}
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("run_as user %q has non-numeric ids", name)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// exitResult converts a finished command's state.
func exitResult(ps *os.ProcessState) *driverpb.ExitResult {
	res := &driverpb.ExitResult{}
	if ps == nil {
		res.ExitCode = -1
		return res
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Signal = int32(ws.Signal())
		res.ExitCode = 128 + int32(ws.Signal())
		return res
	}
	res.ExitCode = int32(ps.ExitCode())
	return res
}

// capped is a buffer that keeps the first max bytes.
type capped struct {
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// ExecTask runs a command to completion (script checks, template scripts)
// and returns its output and exit status; result is always set on success.
func (d *Driver) ExecTask(ctx context.Context, req *driverpb.ExecTaskRequest) (*driverpb.ExecTaskResponse, error) {
	if to := req.GetTimeout().AsDuration(); to > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, to)
		defer cancel()
	}
	cmd, _, err := d.execCommand(ctx, req.GetTaskId(), req.GetCommand())
	if err != nil {
		return nil, err
	}
	stdout, stderr := &capped{max: maxExecOutput}, &capped{max: maxExecOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "exec %s: %v", req.GetCommand()[0], err)
	}
	_ = cmd.Wait()
	return &driverpb.ExecTaskResponse{
		Stdout: stdout.buf.Bytes(),
		Stderr: stderr.buf.Bytes(),
		Result: exitResult(cmd.ProcessState),
	}, nil
}

// ExecTaskStreaming runs an interactive command (`nomad alloc exec`): the
// first message carries setup, later ones stdin data, stdin close and
// terminal sizes; the answer streams stdout and stderr (merged on a tty)
// and ends with exited and the result.
func (d *Driver) ExecTaskStreaming(srv driverpb.Driver_ExecTaskStreamingServer) error {
	first, err := srv.Recv()
	if err != nil {
		return err
	}
	setup := first.GetSetup()
	if setup == nil {
		return status.Error(codes.InvalidArgument, "exec stream: first message has no setup")
	}
	ctx, cancel := context.WithCancel(srv.Context())
	defer cancel()
	cmd, t, err := d.execCommand(ctx, setup.GetTaskId(), setup.GetCommand())
	if err != nil {
		return err
	}
	out := &streamSender{srv: srv}
	var (
		stdin   io.WriteCloser
		resize  func(*driverpb.ExecTaskStreamingRequest_TerminalSize)
		readers sync.WaitGroup
		outputs []io.Closer // read ends, closed if still open after the grace
	)
	if setup.GetTty() {
		master, slave, err := openPty()
		if err != nil {
			return status.Errorf(codes.Internal, "exec stream: %v", err)
		}
		defer master.Close()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr.Setpgid = false
		cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, true, 0
		resize = func(sz *driverpb.ExecTaskStreamingRequest_TerminalSize) {
			_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(sz.GetHeight()), Col: uint16(sz.GetWidth())})
		}
		if sz := first.GetTtySize(); sz != nil {
			resize(sz)
		}
		if err := cmd.Start(); err != nil {
			slave.Close()
			return status.Errorf(codes.FailedPrecondition, "exec %s: %v", setup.GetCommand()[0], err)
		}
		slave.Close()
		stdin = ttyInput{master}
		outputs = []io.Closer{master}
		readers.Add(1)
		go func() { defer readers.Done(); out.pump(master, true) }()
	} else {
		in, err := cmd.StdinPipe()
		if err != nil {
			return status.Errorf(codes.Internal, "exec stream: %v", err)
		}
		// Our own pipes rather than StdoutPipe: Wait must not close the
		// read ends (see drainOutput).
		so, sow, err := os.Pipe()
		if err != nil {
			return status.Errorf(codes.Internal, "exec stream: %v", err)
		}
		defer so.Close()
		se, sew, err := os.Pipe()
		if err != nil {
			sow.Close()
			return status.Errorf(codes.Internal, "exec stream: %v", err)
		}
		defer se.Close()
		cmd.Stdout, cmd.Stderr = sow, sew
		err = cmd.Start()
		sow.Close()
		sew.Close()
		if err != nil {
			return status.Errorf(codes.FailedPrecondition, "exec %s: %v", setup.GetCommand()[0], err)
		}
		stdin = in
		resize = func(*driverpb.ExecTaskStreamingRequest_TerminalSize) {}
		outputs = []io.Closer{so, se}
		readers.Add(2)
		go func() { defer readers.Done(); out.pump(so, true) }()
		go func() { defer readers.Done(); out.pump(se, false) }()
	}
	t.logger.Debug("exec started", "command", setup.GetCommand()[0], "tty", setup.GetTty())
	if data := first.GetStdin(); data != nil {
		forwardStdin(stdin, data)
	}
	// Input runs until the client closes its side; the command's end does
	// not wait for it.
	go func() {
		for {
			msg, err := srv.Recv()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					cancel() // the client went away: stop the command
				}
				return
			}
			if sz := msg.GetTtySize(); sz != nil {
				resize(sz)
			}
			if data := msg.GetStdin(); data != nil {
				forwardStdin(stdin, data)
			}
		}
	}()
	_ = cmd.Wait()
	drainOutput(&readers, outputs, outputGrace)
	return out.send(&driverpb.ExecTaskStreamingResponse{Exited: true, Result: exitResult(cmd.ProcessState)})
}

// outputGrace is how long a finished exec command's output may keep coming
// (from what it left running in the background) before the session ends.
const outputGrace = time.Second

// drainOutput waits for the output pumps to reach end of file once the
// command has exited. A process the command started in the background can
// hold the output open long after the command ended (`cmd &` and then
// `exit` in `nomad alloc exec`); after grace the read ends are closed so
// the session ends with the command, as exec.Cmd's WaitDelay does.
func drainOutput(readers *sync.WaitGroup, outputs []io.Closer, grace time.Duration) {
	done := make(chan struct{})
	go func() {
		readers.Wait()
		close(done)
	}()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-done:
		return
	case <-timer.C:
	}
	for _, c := range outputs {
		_ = c.Close()
	}
	<-done
}

func forwardStdin(w io.WriteCloser, op *driverpb.ExecTaskStreamingIOOperation) {
	if len(op.GetData()) > 0 {
		_, _ = w.Write(op.GetData())
	}
	if op.GetClose() {
		_ = w.Close()
	}
}

// ttyInput writes to a pty master; closing it sends end-of-file (^D) the
// way a terminal does, instead of hanging up the session.
type ttyInput struct{ f *os.File }

func (t ttyInput) Write(p []byte) (int, error) { return t.f.Write(p) }
func (t ttyInput) Close() error {
	_, err := t.f.Write([]byte{4})
	return err
}

// streamSender serialises sends on the exec stream.
type streamSender struct {
	mu  sync.Mutex
	srv driverpb.Driver_ExecTaskStreamingServer
}

func (s *streamSender) send(m *driverpb.ExecTaskStreamingResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv.Send(m)
}

// pump forwards r to the stream until EOF (or EIO, a pty whose other side
// is gone) and then sends the stream's close marker.
func (s *streamSender) pump(r io.Reader, stdout bool) {
	buf := make([]byte, 32*1024)
	wrap := func(op *driverpb.ExecTaskStreamingIOOperation) *driverpb.ExecTaskStreamingResponse {
		if stdout {
			return &driverpb.ExecTaskStreamingResponse{Stdout: op}
		}
		return &driverpb.ExecTaskStreamingResponse{Stderr: op}
	}
	for {
		n, err := r.Read(buf)
		if n > 0 {
			data := append([]byte(nil), buf[:n]...)
			if s.send(wrap(&driverpb.ExecTaskStreamingIOOperation{Data: data})) != nil {
				return
			}
		}
		if err != nil {
			_ = s.send(wrap(&driverpb.ExecTaskStreamingIOOperation{Close: true}))
			return
		}
	}
}

// openPty opens a pseudo-terminal pair through /dev/ptmx.
func openPty() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening pty: %w", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlocking pty: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("naming pty: %w", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("opening pty slave: %w", err)
	}
	return m, s, nil
}
