package plugintest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
)

// Alloc is an allocation directory laid out as Nomad's client does, with
// one task whose stdout and stderr FIFOs are drained like logmon does.
type Alloc struct {
	ID       string
	Dir      string // <alloc_dir>/<alloc_id>
	TaskName string
	TaskDir  string // <Dir>/<TaskName>
	Stdout   *LogSink
	Stderr   *LogSink
}

// NewAlloc creates the directories (alloc/{logs,tmp,data}, <task>/{local,
// secrets,private,tmp}) and the log FIFOs under base.
func NewAlloc(tb testing.TB, base, taskName string) *Alloc {
	tb.Helper()
	id := randomHex(tb, 16)
	a := &Alloc{ID: id, Dir: filepath.Join(base, id), TaskName: taskName}
	a.TaskDir = filepath.Join(a.Dir, taskName)
	for _, d := range []string{"alloc/logs", "alloc/tmp", "alloc/data"} {
		must(tb, os.MkdirAll(filepath.Join(a.Dir, d), 0o755))
	}
	for _, d := range []string{"local", "secrets", "private", "tmp"} {
		must(tb, os.MkdirAll(filepath.Join(a.TaskDir, d), 0o755))
	}
	logs := filepath.Join(a.Dir, "alloc", "logs")
	a.Stdout = newLogSink(tb, filepath.Join(logs, "."+taskName+".stdout.fifo"))
	a.Stderr = newLogSink(tb, filepath.Join(logs, "."+taskName+".stderr.fifo"))
	return a
}

// TaskID is a fresh Nomad task id: "<alloc_id>/<task>/<8 hex>".
func (a *Alloc) TaskID(tb testing.TB) string {
	return a.ID + "/" + a.TaskName + "/" + randomHex(tb, 4)
}

// TaskConfig is what Nomad's task runner sends in StartTask for this
// alloc's task: the encoded driver config, the full env, one group port
// per label and the FIFO paths.
func (a *Alloc) TaskConfig(id string, msgpack []byte, env map[string]string, ports map[string]int) *driverpb.TaskConfig {
	res := &driverpb.Resources{
		AllocatedResources: &driverpb.AllocatedTaskResources{
			Cpu:    &driverpb.AllocatedCpuResources{CpuShares: 100},
			Memory: &driverpb.AllocatedMemoryResources{MemoryMb: 256},
		},
		LinuxResources: &driverpb.LinuxResources{CpuShares: 100, MemoryLimitBytes: 256 << 20},
	}
	full := map[string]string{
		"NOMAD_ALLOC_ID":    a.ID,
		"NOMAD_TASK_NAME":   a.TaskName,
		"NOMAD_ALLOC_DIR":   filepath.Join(a.Dir, "alloc"),
		"NOMAD_TASK_DIR":    filepath.Join(a.TaskDir, "local"),
		"NOMAD_SECRETS_DIR": filepath.Join(a.TaskDir, "secrets"),
		"PATH":              os.Getenv("PATH"),
	}
	for label, port := range ports {
		res.Ports = append(res.Ports, &driverpb.PortMapping{Label: label, Value: int32(port), HostIp: "127.0.0.1"})
		full["NOMAD_PORT_"+label] = strconv.Itoa(port)
		full["NOMAD_HOST_PORT_"+label] = strconv.Itoa(port)
		full["NOMAD_ADDR_"+label] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		full["NOMAD_IP_"+label] = "127.0.0.1"
	}
	for k, v := range env {
		full[k] = v
	}
	return &driverpb.TaskConfig{
		Id:                  id,
		Name:                a.TaskName,
		MsgpackDriverConfig: msgpack,
		Env:                 full,
		Resources:           res,
		AllocDir:            a.Dir,
		StdoutPath:          a.Stdout.Path,
		StderrPath:          a.Stderr.Path,
		TaskGroupName:       "ondemand",
		JobName:             "nimbus-test",
		JobId:               "nimbus-test",
		AllocId:             a.ID,
		Namespace:           "default",
		NodeName:            "harness",
		NodeId:              randomHex(nil, 16),
	}
}

// LogSink is one logmon FIFO: created up front, read continuously (the
// reader reopens after each writer goes away, as a restarted task's does).
type LogSink struct {
	Path string
	mu   sync.Mutex
	buf  bytes.Buffer
}

func newLogSink(tb testing.TB, path string) *LogSink {
	tb.Helper()
	must(tb, unix.Mkfifo(path, 0o600))
	s := &LogSink{Path: path}
	// O_RDWR keeps the FIFO open with no writer, so reads block instead of
	// returning EOF between task restarts, and the driver's non-blocking
	// write open always finds a reader.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must(tb, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 32*1024)
		for {
			n, err := f.Read(b)
			if n > 0 {
				s.mu.Lock()
				s.buf.Write(b[:n])
				s.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	tb.Cleanup(func() {
		f.Close()
		<-done
	})
	return s
}

// String is everything written so far.
func (s *LogSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func randomHex(tb testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, b); err != nil && tb != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func must(tb testing.TB, err error) {
	if err != nil && !errors.Is(err, os.ErrExist) {
		tb.Helper()
		tb.Fatal(err)
	}
}

// FreePort returns a loopback TCP port that was free a moment ago, as
// Nomad's port allocator would hand out.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
