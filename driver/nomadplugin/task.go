package nomadplugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
)

// taskState is the handle's driver_state (JSON, handleVersion 1): all a
// fresh plugin process needs to re-attach to an instance, because Nomad
// does not keep msgpack_driver_config across agent restarts.
type taskState struct {
	// Pid and StartTicks identify the instance process across pid reuse.
	Pid        int       `json:"pid"`
	StartTicks uint64    `json:"start_ticks"`
	StartedAt  time.Time `json:"started_at"`
	// Dir holds the instance's config, ready and exit-status files;
	// StateDir its working state.
	Dir        string `json:"dir"`
	StateDir   string `json:"state_dir"`
	ConfigPath string `json:"config_path"`
	StatusPath string `json:"status_path"`
	InvokeAddr string `json:"invoke_addr"`
	Function   string `json:"function"`
	Version    string `json:"version"`
	// CodeDir and RunAs are where and as whom ExecTask runs commands.
	CodeDir string `json:"code_dir"`
	// Image is the image of an image function (exec needs a running
	// environment then: there is no host code directory to fall back on).
	Image string `json:"image,omitempty"`
	RunAs string `json:"run_as,omitempty"`
}

// exitStatus is what the instance subcommand writes to its status file
// when it returns (a killed instance writes nothing).
type exitStatus struct {
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error,omitempty"`
}

// task tracks one instance process.
type task struct {
	id     string
	cfg    *driverpb.TaskConfig
	state  taskState
	proc   procIdentity
	logger hclog.Logger

	done chan struct{} // closed once the instance has exited

	mu          sync.Mutex
	result      *driverpb.ExitResult
	errMsg      string
	completedAt time.Time
	sentSignal  unix.Signal // last signal the driver sent, for unknown exit statuses
}

func newTask(cfg *driverpb.TaskConfig, st taskState, logger hclog.Logger) *task {
	return &task{
		id:     cfg.GetId(),
		cfg:    cfg,
		state:  st,
		proc:   procIdentity{pid: st.Pid, startTime: st.StartTicks},
		logger: logger,
		done:   make(chan struct{}),
	}
}

func (t *task) exited() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// finish records the exit once; later calls are ignored.
func (t *task) finish(res *driverpb.ExitResult, errMsg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.result != nil {
		return
	}
	t.result, t.errMsg, t.completedAt = res, errMsg, time.Now()
	close(t.done)
	t.logger.Info("instance exited", "exit_code", res.GetExitCode(), "signal", res.GetSignal(), "error", errMsg)
}

func (t *task) exit() (*driverpb.ExitResult, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.result, t.errMsg
}

func (t *task) noteSignal(sig unix.Signal) {
	t.mu.Lock()
	t.sentSignal = sig
	t.mu.Unlock()
}

// reap waits for an instance the plugin started itself (its child).
func (t *task) reap(cmd *exec.Cmd, procRoot string) {
	err := cmd.Wait()
	res := &driverpb.ExitResult{}
	msg := ""
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Signaled():
			res.Signal = int32(ws.Signal())
			res.ExitCode = 128 + int32(ws.Signal())
		default:
			res.ExitCode = int32(ws.ExitStatus())
		}
	} else if err != nil {
		res.ExitCode = 1
		msg = err.Error()
	}
	if st, ok := readExitStatus(t.state.StatusPath); ok && st.Error != "" {
		msg = st.Error
	}
	t.cleanupTree(procRoot)
	t.finish(res, msg)
}

// watch polls an instance the plugin did not start (recovered after a
// plugin or agent restart): it cannot wait(2) for it, so it watches the pid
// and reads the exit status the instance left behind.
func (t *task) watch(procRoot string, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for range tick.C {
		if !t.proc.alive(procRoot) {
			break
		}
	}
	t.cleanupTree(procRoot)
	t.finish(t.unsupervisedExit())
}

// unsupervisedExit is the best exit result for an instance that ended
// while no plugin process was its parent.
func (t *task) unsupervisedExit() (*driverpb.ExitResult, string) {
	if st, ok := readExitStatus(t.state.StatusPath); ok {
		return &driverpb.ExitResult{ExitCode: int32(st.ExitCode)}, st.Error
	}
	t.mu.Lock()
	sig := t.sentSignal
	t.mu.Unlock()
	if sig != 0 {
		return &driverpb.ExitResult{ExitCode: 128 + int32(sig), Signal: int32(sig)}, ""
	}
	return &driverpb.ExitResult{ExitCode: 1}, "instance exited while unsupervised; its exit status is unknown"
}

// cleanupTree kills environments left behind by an exited instance.
func (t *task) cleanupTree(procRoot string) {
	if err := t.proc.killTree(procRoot); err != nil {
		t.logger.Warn("killing leftover processes", "error", err)
	}
}

func readExitStatus(path string) (exitStatus, bool) {
	if path == "" {
		return exitStatus{}, false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return exitStatus{}, false
	}
	var st exitStatus
	if json.Unmarshal(b, &st) != nil {
		return exitStatus{}, false
	}
	return st, true
}

// WriteExitStatus records how the instance subcommand ended, for a driver
// that is not its parent. It writes atomically.
func writeExitStatus(path string, code int, runErr error) error {
	st := exitStatus{ExitCode: code}
	if runErr != nil {
		st.Error = runErr.Error()
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing exit status: %w", err)
	}
	return os.Rename(tmp, path)
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// taskDirName is a file name for a task id ("<alloc>/<task>/<hex>").
func taskDirName(id string) string {
	return "nimbus-" + unsafeChars.ReplaceAllString(filepath.Base(filepath.Clean("/"+id)), "_")
}

// within joins rel under base and refuses paths that leave base.
func within(base, rel string) (string, error) {
	if filepath.IsAbs(rel) {
		return "", fmt.Errorf("path %q must be relative to the task directory", rel)
	}
	p := filepath.Join(base, rel)
	if p != base && !isUnder(p, base) {
		return "", fmt.Errorf("path %q leaves the task directory", rel)
	}
	return p, nil
}

func isUnder(p, base string) bool {
	r, err := filepath.Rel(base, p)
	return err == nil && r != ".." && !filepath.IsAbs(r) && !startsDotDot(r)
}

func startsDotDot(r string) bool {
	return len(r) >= 3 && r[:3] == ".."+string(filepath.Separator)
}

var errTaskNotFound = errors.New("task not found for given id")
