package instance

import (
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
)

// spawner forks one environment's processes on cgroup v1 hosts from an OS
// thread that stays in the environment's cgroup for the environment's life.
//
// v1 has no CLONE_INTO_CGROUP: a process is born in its cgroup only if the
// thread forking it is there. Moving a thread or process is a write to the
// kernel's global cgroup threadgroup lock, which (measured here) costs one
// RCU grace period, 7–10 ms, whenever no migration happened in the last
// ~100 ms; on the cold start path that is most of the platform's overhead.
// The spawner thread pays it once, when the environment is created (the
// instance's Start waits for it, so it counts as instance start-up, not as
// an invocation's cold start). Like the per-spawn thread used otherwise, it sets
// no_new_privs (inherited by the children) and outlives every child it
// forks, so Pdeathsig (tied to the forking thread) stays armed.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	cmd *exec.Cmd
	res chan error
}

// newSpawner starts the thread and returns once it is in cg (or the kernel
// refused the move).
func newSpawner(cg *envCgroup) *spawner {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	ready := make(chan struct{})
	go s.run(cg, ready)
	<-ready
	return s
}

func (s *spawner) run(cg *envCgroup, ready chan struct{}) {
	runtime.LockOSThread()
	if syscall.Gettid() == syscall.Getpid() {
		// The main thread: on cgroup v1 the memory of the whole process is
		// charged to its cgroup, so it must never join an environment's
		// (the environment's OOM killer would then end the instance).
		// Hand over to a goroutine on another thread, holding this one
		// until that one is locked.
		go s.run(cg, ready)
		<-ready
		runtime.UnlockOSThread()
		return
	}
	defer close(s.done)
	// Never unlocked: the thread ends with this goroutine, so neither
	// no_new_privs nor the cgroup leaks into the rest of the process.
	var setupErr error
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0); errno != 0 {
		setupErr = fmt.Errorf("setting no_new_privs: %w", errno)
	}
	// Should the kernel refuse a single thread, each process is moved
	// right after it started instead.
	joined := setupErr == nil && cg.enterThread() == nil
	close(ready)
	for req := range s.reqs {
		if setupErr != nil {
			req.res <- setupErr
			continue
		}
		err := req.cmd.Start()
		if err == nil && !joined {
			if err = cg.addProcess(req.cmd.Process.Pid); err != nil {
				_ = req.cmd.Process.Kill()
				_ = req.cmd.Wait()
			}
		}
		req.res <- err
	}
	if joined {
		cg.leaveThread() // so the cgroup can be removed at once
	}
}

// start forks cmd on the spawner's thread; exited receives its wait result.
func (s *spawner) start(cmd *exec.Cmd, exited chan<- error) error {
	res := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, res: res}
	if err := <-res; err != nil {
		return err
	}
	go func() { exited <- cmd.Wait() }()
	return nil
}

// stop ends the thread once no process it forked runs any more.
func (s *spawner) stop() {
	close(s.reqs)
	<-s.done
}
