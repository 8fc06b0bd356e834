// Command escape is a real aws-lambda-go function that tries, on every
// invocation, to get out of its execution environment, and reports what
// each attempt got: read /etc/shadow, write outside /tmp, signal processes
// it did not start (the event's host pids), mount, ptrace, load a kernel
// module, create a namespace (also through the i386 and x32 system call
// ABIs), fill /tmp, fork without bound; plus its uid and
// how many processes it sees. An isolated environment refuses every one;
// the instance's tests assert that.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"syscall"

	"github.com/aws/aws-lambda-go/lambda"
	"golang.org/x/sys/unix"
)

type event struct {
	// Pids are host pids the function did not start (the instance's, a
	// neighbour environment's bootstrap).
	Pids []int `json:"pids"`
	// Forks bounds the fork bomb (0: 3000).
	Forks int `json:"forks"`
	// Fork is "skip" (every attempt but the fork bomb), "only" (the fork
	// bomb alone) or empty (everything).
	Fork string `json:"fork"`
	// FillOnly fills /tmp and does nothing else (the file is kept).
	FillOnly bool `json:"fill_only"`
}

type report struct {
	UID       int               `json:"uid"`
	Processes int               `json:"processes"`
	Attempts  map[string]string `json:"attempts"` // "ok" when allowed, else the error
	TmpBytes  int64             `json:"tmp_bytes"`
	Forked    int               `json:"forked"`
}

func result(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func rawResult(errno syscall.Errno) string {
	if errno == 0 {
		return "ok"
	}
	return errno.Error()
}

// childEnv, when set in the environment, makes the binary one attempt's
// short-lived child instead of the function.
const childEnv = "ESCAPE_CHILD"

func main() {
	if os.Getenv(childEnv) == "int80" {
		// unshare(CLONE_NEWUSER) under its i386 number: a filter that
		// checks only x86_64 numbers lets it through. Exit 0 when it did;
		// 3 when the kernel has no i386 ABI (int 0x80 faults).
		debug.SetPanicOnFault(true)
		defer func() {
			if recover() != nil {
				os.Exit(3)
			}
		}()
		if r := int80(i386Unshare, syscall.CLONE_NEWUSER); r != 0 {
			os.Exit(1)
		}
		os.Exit(0)
	}
	lambda.Start(func(_ context.Context, ev event) (*report, error) {
		r := &report{UID: os.Getuid(), Attempts: map[string]string{}}
		if ev.FillOnly {
			var err error
			r.TmpBytes, err = fill("/tmp/fill")
			r.Attempts["fill_tmp"] = result(err)
			return r, nil
		}
		if ev.Fork == "only" {
			var err error
			r.Forked, err = forkBomb(ev.Forks)
			r.Attempts["fork_bomb"] = result(err)
			return r, nil
		}
		_, err := os.ReadFile("/etc/shadow")
		r.Attempts["read_shadow"] = result(err)
		r.Attempts["write_task"] = result(os.WriteFile("/var/task/escape", []byte("x"), 0o644))
		r.Attempts["write_usr"] = result(os.WriteFile("/usr/escape", []byte("x"), 0o644))
		r.Attempts["write_root"] = result(os.WriteFile("/escape", []byte("x"), 0o644))
		for _, pid := range ev.Pids {
			r.Attempts["kill_"+strconv.Itoa(pid)] = result(syscall.Kill(pid, syscall.SIGKILL))
		}
		r.Attempts["kill_init"] = result(syscall.Kill(1, syscall.SIGKILL))
		_ = os.MkdirAll("/tmp/m", 0o755)
		r.Attempts["mount"] = result(syscall.Mount("tmpfs", "/tmp/m", "tmpfs", 0, ""))
		_, _, errno := syscall.RawSyscall(syscall.SYS_PTRACE, syscall.PTRACE_ATTACH, 1, 0)
		r.Attempts["ptrace"] = rawResult(errno)
		_, _, errno = syscall.RawSyscall(syscall.SYS_INIT_MODULE, 0, 0, 0)
		r.Attempts["init_module"] = rawResult(errno)
		_, _, errno = syscall.RawSyscall(unix.SYS_FINIT_MODULE, 0, 0, 0)
		r.Attempts["finit_module"] = rawResult(errno)
		r.Attempts["unshare_user"] = result(syscall.Unshare(syscall.CLONE_NEWUSER))
		if foreignABI {
			r.Attempts["i386_unshare"] = foreignChild("int80")
			// x32 numbers are native-arch calls with bit 30 set.
			_, _, errno = syscall.RawSyscall(x32Unshare, syscall.CLONE_NEWUSER, 0, 0)
			r.Attempts["x32_unshare"] = rawResult(errno)
		}
		r.Attempts["chroot"] = result(syscall.Chroot("/tmp"))
		r.Attempts["setuid_root"] = result(syscall.Setuid(0))
		r.TmpBytes, err = fill("/tmp/fill")
		r.Attempts["fill_tmp"] = result(err)
		_ = os.Remove("/tmp/fill")
		if ev.Fork != "skip" {
			r.Forked, err = forkBomb(ev.Forks)
			r.Attempts["fork_bomb"] = result(err)
		}
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if _, err := strconv.Atoi(e.Name()); err == nil {
				r.Processes++
			}
		}
		return r, nil
	})
}

// foreignChild runs this binary as the child named kind and reports how
// it ended: "ok" (its attempt worked), "exit status 1" (refused with an
// error) or the signal that killed it.
func foreignChild(kind string) string {
	self, err := os.Executable()
	if err != nil {
		return err.Error()
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childEnv+"="+kind)
	return result(cmd.Run())
}

// fill writes to path until the write fails and returns how much it wrote.
func fill(path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for n < 64<<30 {
		w, err := f.Write(buf)
		n += int64(w)
		if err != nil {
			return n, err
		}
	}
	return n, errors.New("wrote 64 GB without an error")
}

// forkBomb forks (raw fork: the children only pause, without the Go
// runtime) until the kernel refuses one (or max), then kills them all.
func forkBomb(max int) (int, error) {
	if max == 0 {
		max = 3000
	}
	var pids []int
	defer func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, 0, nil)
		}
	}()
	for len(pids) < max {
		pid, _, errno := syscall.RawSyscall(syscall.SYS_FORK, 0, 0, 0)
		if errno != 0 {
			return len(pids), errno
		}
		if pid == 0 {
			for {
				_, _, _ = syscall.RawSyscall(syscall.SYS_PAUSE, 0, 0, 0)
			}
		}
		pids = append(pids, int(pid))
	}
	return len(pids), fmt.Errorf("started %d processes without an error", max)
}
