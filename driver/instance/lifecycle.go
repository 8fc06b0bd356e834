package instance

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/sandbox"
)

const (
	sigKill = syscall.SIGKILL
	sigTerm = syscall.SIGTERM
)

// outputGrace bounds how long an exited process's last output may take to
// drain before its exit is acted on.
const outputGrace = 200 * time.Millisecond

var timeSince = time.Since

// spawn starts the process of an environment that assignLocked or
// warmLocked moved to Initializing.
func (e *env) spawn() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != stateInitializing || e.pgid != 0 {
		return
	}
	if err := e.startLocked(); err != nil {
		e.log.Error("starting runtime", "error", err)
		e.mustTransitionLocked(stateStopped)
		if inv := e.inv; inv != nil {
			typ := "Runtime.Unknown"
			var ie *imageError
			switch {
			case errors.As(err, &ie):
				typ = ie.typ
			case errors.Is(err, ErrInvalidEntrypoint):
				typ = "Runtime.InvalidEntrypoint"
			}
			e.finishLocked(inv, functionError(errorJSON(typ, inv.event.RequestID, err.Error())))
		}
	}
}

// argv is the command an environment starts: the image's for an image
// function, else the bootstrap (host paths).
func (in *Instance) argv() ([]string, error) {
	if in.cfg.Image != nil {
		return in.imageArgv()
	}
	return entrypoint(in.cfg, in.optDir, in.runtimeDir)
}

// startLocked spawns the bootstrap in its own process group, with its
// output wired to the sinks, its memory watched and its init bounded.
func (e *env) startLocked() error {
	in := e.inst
	cfg := in.cfg
	argv, err := in.argv()
	if err != nil {
		return err
	}
	var cmd *exec.Cmd
	var sp *sandbox.Process
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: in.cred}
	// The environment's zygote, while it lives, starts the bootstrap in the
	// sandbox it already built; else a fresh init builds one.
	zyg := e.zyg
	useZyg := zyg != nil && zyg.Alive()
	if useZyg {
		// started below
	} else if in.isolated {
		plan, err := e.plan(argv)
		if err != nil {
			return err
		}
		if sp, err = sandbox.Command(plan); err != nil {
			return err
		}
		cmd = sp.Cmd
		// The init runs as root and takes the function's identity itself.
		attr.Cloneflags, attr.Credential = cmd.SysProcAttr.Cloneflags, nil
	} else {
		cmd = exec.Command(argv[0], argv[1:]...)
		cmd.Dir = cfg.CodeDir
		cmd.Env = environ(cfg, e.addr, in.optDir, in.runtimeDir, e.tmpDir, in.getenv)
	}
	closeSandbox := func() {
		if sp != nil {
			sp.Close()
		}
	}
	var cg *envCgroup
	switch {
	case e.spawner != nil: // cgroup v1: the environment's own, reused
		cg = e.cgV1
		cg.reset()
	case in.cgroup != nil: // cgroup v2: one per process, born in it
		if cg, err = in.cgroup.create(e.cgroupName(), int64(cfg.MemoryMB)<<20); err != nil {
			closeSandbox()
			return err
		}
		attr.UseCgroupFD = true
		attr.CgroupFD = int(cg.fd.Fd())
	}
	if cmd != nil {
		cmd.SysProcAttr = attr
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeSandbox()
		if cg != nil {
			cg.release()
		}
		return fmt.Errorf("creating stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		closeSandbox()
		if cg != nil {
			cg.release()
		}
		return fmt.Errorf("creating stderr pipe: %w", err)
	}
	exited := make(chan error, 1)
	pid := 0
	if useZyg {
		var wait func() syscall.WaitStatus
		if pid, wait, err = zyg.Spawn(outW, errW); err == nil {
			go func() { exited <- waitStatusError{wait()} }()
		}
	} else {
		cmd.Stdout, cmd.Stderr = outW, errW
		if e.spawner != nil {
			err = e.spawner.start(cmd, exited)
		} else {
			err = startProcess(cmd, exited)
		}
		if sp != nil {
			sp.Started()
		}
		if err == nil {
			pid = cmd.Process.Pid
			preferOOMVictim(pid)
		}
	}
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		closeSandbox()
		if cg != nil {
			cg.release()
		}
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.ENOEXEC) {
			return fmt.Errorf("%w: starting %s: %w", ErrInvalidEntrypoint, argv[0], err)
		}
		return fmt.Errorf("starting %s: %w", argv[0], err)
	}
	e.gen++
	gen := e.gen
	e.pgid = pid
	e.viaInit = in.isolated && !useZyg
	// The end of every invocation samples the RSS (fresh peak for short
	// invocations): of the cgroup's processes, else of the main process
	// (the watcher covers the whole group).
	e.lastRSS, e.rssAt = 0, time.Time{}
	if cg != nil {
		e.cgRSS, _ = newCgroupRSS(filepath.Join(cg.dir, "cgroup.procs"))
		if e.cgRSS != nil && useZyg {
			e.cgRSS.skip = zyg.Cmd.Process.Pid // the zygote is the platform's
		}
	}
	if e.cgRSS == nil && !e.viaInit {
		// (Through an init: the bootstrap is its child, found when sampled.)
		e.mainRSS, _ = openRSS(e.pgid)
	}
	e.cg = cg
	e.spawnedAt = time.Now()
	e.initDone = false
	e.coldPending = false
	e.reason = killNone
	e.peak.Store(0)
	e.exited = make(chan struct{})
	e.stopWatch = make(chan struct{})
	e.log.Debug("runtime started", "pid", e.pgid, "argv", argv)

	e.pipes.Store(&[2]*os.File{outR, errR})
	drained := make(chan struct{}, 2)
	go e.copyOutput(outR, in.stdout, invokeapi.StreamStdout, drained)
	go e.copyOutput(errR, in.stderr, invokeapi.StreamStderr, drained)
	if cg == nil {
		go e.watchMemory(gen, e.pgid, e.stopWatch)
	}
	e.initTimer = time.AfterFunc(cfg.InitTimeout, func() { e.initTimeout(gen) })
	go func() {
		werr := <-exited
		if sp != nil {
			// The init's own end is the bootstrap's, unless the init was
			// killed (or failed) before the bootstrap ended.
			if ws, ok := sp.Status(); ok {
				werr = waitStatusError{ws}
			}
		}
		close(e.stopWatchFor(gen))
		// Let the last output reach the sinks (and the tail) first.
		deadline := time.NewTimer(outputGrace)
		for i := 0; i < 2; i++ {
			select {
			case <-drained:
			case <-deadline.C:
				i = 2
			}
		}
		deadline.Stop()
		e.processExited(gen, werr)
	}()
	return nil
}

func (e *env) stopWatchFor(gen int) chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if gen != e.gen {
		return make(chan struct{})
	}
	return e.stopWatch
}

// copyOutput forwards one output stream to its sink and to the running
// invocation's tail.
func (e *env) copyOutput(r *os.File, sink *logSink, stream string, drained chan<- struct{}) {
	defer func() { drained <- struct{}{} }()
	defer r.Close()
	buf := make([]byte, 16*1024)
	// partial is a line read without its newline yet (bounded: a longer
	// one goes to the ring in pieces).
	var partial []byte
	ring := func(p []byte) {
		id := ""
		if r := e.curRequest.Load(); r != nil {
			id = *r
		}
		e.inst.logs.add(stream, id, string(p))
	}
	for {
		n, err := r.Read(buf)
		if n > 0 {
			e.outBusy.Add(1)
			if t := e.curTail.Load(); t != nil {
				_, _ = t.Write(buf[:n])
			}
			_, _ = sink.Write(buf[:n])
			partial = append(partial, buf[:n]...)
			if i := bytes.LastIndexByte(partial, '\n'); i >= 0 {
				ring(partial[:i+1])
				partial = append(partial[:0], partial[i+1:]...)
			}
			if len(partial) >= invokeapi.MaxLogLine {
				ring(partial)
				partial = partial[:0]
			}
			e.outBusy.Add(-1)
		}
		if err != nil {
			if len(partial) > 0 {
				ring(partial)
			}
			return
		}
	}
}

// drainGrace bounds how long a finishing invocation waits for output its
// runtime wrote before answering to reach the log tail.
const drainGrace = 50 * time.Millisecond

// drainOutput waits (briefly) until the output pipes are empty and no chunk
// is being processed, so output written before a response is in its tail.
func (e *env) drainOutput() {
	p := e.pipes.Load()
	if p == nil {
		return
	}
	deadline := time.Now().Add(drainGrace)
	for {
		if pending(p[0]) == 0 && pending(p[1]) == 0 && e.outBusy.Load() == 0 {
			return
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// pending is how many bytes wait unread in pipe f (FIONREAD).
func pending(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		var v int32
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&v))); errno == 0 {
			n = int(v)
		}
	})
	return n
}

// watchMemory samples the process group's RSS, keeps the peak and ends the
// environment when it exceeds the memory size.
func (e *env) watchMemory(gen, pgid int, stop <-chan struct{}) {
	limit := int64(e.inst.cfg.MemoryMB) << 20
	t := time.NewTicker(memoryPoll)
	defer t.Stop()
	group := newGroupRSS(pgid)
	defer group.close()
	for tick := 0; ; tick++ {
		// Rescanning /proc for the group's members is the costly part, so it
		// runs every rescanEvery polls; in between only known members are read.
		if tick%rescanEvery == 0 || len(group.members) == 0 {
			group.rescan()
		}
		rss := group.rss()
		e.raisePeak(rss)
		if rss > limit {
			e.memoryExceeded(gen, rss)
			return
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

func (e *env) killLocked(sig syscall.Signal) {
	if e.pgid > 0 {
		_ = syscall.Kill(-e.pgid, sig)
	}
}

// timeout ends an invocation that ran past its deadline and resets the environment.
func (e *env) timeout(inv *invocation) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if inv.finished || e.inv != inv {
		return
	}
	d := inv.event.Deadline.Sub(inv.start)
	msg := fmt.Sprintf("Task timed out after %.2f seconds", d.Seconds())
	line := []byte(time.Now().UTC().Format("2006-01-02T15:04:05.000Z") + " " + inv.event.RequestID + " " + msg + "\n")
	_, _ = inv.tail.Write(line)
	e.inst.stdout.TryWrite(line)
	e.inst.logs.add(invokeapi.StreamPlatform, inv.event.RequestID, string(line))
	e.log.Warn("invocation timed out", "request_id", inv.event.RequestID, "timeout", d)
	e.finishLocked(inv, functionError(errorJSON("Sandbox.Timedout", inv.event.RequestID, msg)))
	e.resetLocked(killTimeout)
}

// undelivered answers an invocation the environment never took (its
// runtime did not poll again in time) and resets the environment.
func (e *env) undelivered(inv *invocation) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if inv.finished || inv.delivered || e.inv != inv {
		return
	}
	cfg := e.inst.cfg
	e.log.Warn("runtime did not take the invocation in time", "request_id", inv.event.RequestID, "state", e.state)
	e.finishLocked(inv, functionError(errorJSON("Sandbox.Timedout", inv.event.RequestID,
		fmt.Sprintf("Task timed out after %.2f seconds", (cfg.InitTimeout+cfg.Timeout).Seconds()))))
	e.resetLocked(killTimeout)
}

// memoryExceeded ends an environment over its memory size.
func (e *env) memoryExceeded(gen int, rss int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if gen != e.gen || e.state == stateResetting || e.state == stateStopped {
		return
	}
	e.log.Warn("environment exceeded its memory size", "rss_mb", rss>>20, "memory_mb", e.inst.cfg.MemoryMB)
	if inv := e.inv; inv != nil && inv.delivered {
		e.finishLocked(inv, functionError(errorJSON("Runtime.OutOfMemory", inv.event.RequestID, "Runtime exited with error: signal: killed")))
	}
	e.resetLocked(killMemory)
}

// initTimeout ends an init phase that took too long.
func (e *env) initTimeout(gen int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if gen != e.gen || e.state != stateInitializing {
		return
	}
	e.log.Warn("init timed out", "init_timeout", e.inst.cfg.InitTimeout)
	e.resetLocked(killInitTimeout)
}

// resetLocked kills the process group at once (Lambda sends SIGKILL on reset).
func (e *env) resetLocked(reason killReason) {
	if e.state == stateResetting || e.state == stateStopped || e.state == stateClosed {
		return
	}
	e.reason = reason
	e.mustTransitionLocked(stateResetting)
	e.killLocked(sigKill)
}

// processExited settles the environment after its process ended: a
// delivered invocation gets the crash answer, one waiting for init gets the
// init failure, one assigned between invocations gets a fresh process.
func (e *env) processExited(gen int, werr error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if gen != e.gen {
		return
	}
	reason := e.reason
	if e.cg != nil {
		if e.cg.oomKilled() {
			reason = killMemory
		}
		e.raisePeak(e.cg.peak())
		e.cg.release()
		e.cg = nil
	}
	wasInit := !e.initDone
	if e.initTimer != nil {
		e.initTimer.Stop()
	}
	// Children the bootstrap left behind go with it.
	e.killLocked(sigKill)
	e.pgid = 0
	e.mainRSS.close()
	e.mainRSS = nil
	e.cgRSS.close()
	e.cgRSS = nil
	e.parked = nil
	e.reason = killNone
	close(e.exited)
	if e.state != stateStopped {
		e.mustTransitionLocked(stateStopped)
	}
	desc := exitDescription(werr)
	inv := e.inv
	if reason == killNone {
		e.log.Warn("runtime exited", "status", desc, "during_init", wasInit)
	}
	if inv == nil {
		return
	}
	id := inv.event.RequestID
	switch {
	case inv.delivered:
		typ, msg := "Runtime.ExitError", "Runtime exited with error: "+desc
		if reason == killMemory {
			typ, msg = "Runtime.OutOfMemory", "Runtime exited with error: signal: killed"
		}
		line := []byte("RequestId: " + id + " Error: " + msg + "\n" + typ + "\n")
		_, _ = inv.tail.Write(line)
		e.inst.stdout.TryWrite(line)
		e.inst.logs.add(invokeapi.StreamPlatform, id, string(line))
		e.finishLocked(inv, functionError(errorJSON(typ, id, msg)))
	case wasInit && !inv.respawn:
		var body []byte
		switch reason {
		case killMemory:
			body = errorJSON("Runtime.OutOfMemory", id, "Runtime exited during init with error: signal: killed")
		case killInitTimeout:
			body = errorJSON("Runtime.InitError", id, fmt.Sprintf("Init timed out after %.2f seconds", e.inst.cfg.InitTimeout.Seconds()))
		default:
			body = errorJSON("Runtime.InitError", id, "Runtime exited during init with error: "+desc)
		}
		e.finishLocked(inv, functionError(body))
	case e.inst.isClosing():
		e.finishLocked(inv, &outcome{platform: invokeapi.CodeShuttingDown})
	default:
		// Assigned while the previous process was finishing: start afresh.
		// A failure of this new init is the invocation's own.
		inv.respawn = false
		e.mustTransitionLocked(stateInitializing)
		if err := e.startLocked(); err != nil {
			e.mustTransitionLocked(stateStopped)
			e.finishLocked(inv, functionError(errorJSON("Runtime.InvalidEntrypoint", id, err.Error())))
		}
	}
}

// stop ends the environment for good: SIGTERM, SIGKILL after grace, then Closed.
func (e *env) stop(grace time.Duration, deadline <-chan struct{}) {
	e.mu.Lock()
	var exited chan struct{}
	if e.pgid > 0 {
		exited = e.exited
		if e.state != stateResetting {
			e.reason = killStop
			e.mustTransitionLocked(stateResetting)
		}
		e.killLocked(sigTerm)
	} else if e.state == stateInitializing {
		e.mustTransitionLocked(stateStopped) // assigned but never spawned
	}
	e.mu.Unlock()
	if exited != nil {
		t := time.NewTimer(grace)
		select {
		case <-exited:
		case <-t.C:
			e.mu.Lock()
			e.killLocked(sigKill)
			e.mu.Unlock()
			select {
			case <-exited:
			case <-deadline:
				e.log.Error("runtime did not exit after SIGKILL")
			}
		case <-deadline:
			e.mu.Lock()
			e.killLocked(sigKill)
			e.mu.Unlock()
		}
		t.Stop()
	}
	e.mu.Lock()
	if inv := e.inv; inv != nil {
		e.finishLocked(inv, &outcome{platform: invokeapi.CodeShuttingDown})
	}
	if e.state == stateStopped {
		e.mustTransitionLocked(stateClosed)
	}
	e.mu.Unlock()
}

// cgroupName names the environment's cgroup under the parent.
func (e *env) cgroupName() string { return "nimbus-" + e.inst.id + "-env-" + strconv.Itoa(e.idx) }

func (e *env) dirName() string { return filepath.Join(e.inst.cfg.StateDir, "env-"+strconv.Itoa(e.idx)) }
