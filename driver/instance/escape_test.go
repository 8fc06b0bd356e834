package instance

import (
	"encoding/json"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
)

// TestEscapeAttemptsAreRefused runs internal/testfn/escape, which tries to
// leave its environment in every way the sandbox closes, next to a
// neighbour instance, and checks that each attempt failed inside the
// environment while both instances keep serving.
func TestEscapeAttemptsAreRefused(t *testing.T) {
	ncfg := testConfig(t, "echo")
	neighbour := start(t, ncfg)
	if !neighbour.isolated {
		t.Skipf("environments are not isolated on this host: %v", neighbour.isolationMissing)
	}
	if r := invoke(t, neighbour, &invokeapi.Request{Payload: []byte(`"hi"`)}); string(r.body) != `"hi"` {
		t.Fatalf("neighbour: %s", r.body)
	}
	npid := bootstrapPID(t, neighbour.envs[0])

	cfg := testConfig(t, "escape")
	cfg.MemoryMB = 512
	cfg.EphemeralStorageMB = 16
	cfg.Timeout = 60_000_000_000
	in := start(t, cfg)
	ev, _ := json.Marshal(map[string]any{"pids": []int{os.Getpid(), npid}, "fork": "skip"})
	r := invoke(t, in, &invokeapi.Request{Payload: ev})
	if r.resp.FunctionError != "" {
		t.Fatalf("escape: %s", r.body)
	}
	var rep struct {
		UID       int               `json:"uid"`
		Processes int               `json:"processes"`
		Attempts  map[string]string `json:"attempts"`
		TmpBytes  int64             `json:"tmp_bytes"`
		Forked    int               `json:"forked"`
	}
	if err := json.Unmarshal(r.body, &rep); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	t.Logf("escape report: %s", r.body)
	e := in.envs[0]
	if rep.UID == 0 || uint32(rep.UID) != e.uid {
		t.Errorf("function uid %d, want its environment's %d (not root)", rep.UID, e.uid)
	}
	if rep.Processes >= 20 {
		t.Errorf("function sees %d processes, want fewer than 20", rep.Processes)
	}
	want := map[string]string{
		"read_shadow":                       "no such file",
		"write_task":                        "read-only file system",
		"write_usr":                         "read-only file system",
		"write_root":                        "read-only file system",
		"kill_" + strconv.Itoa(os.Getpid()): "no such process",
		"kill_" + strconv.Itoa(npid):        "no such process",
		"kill_init":                         "operation not permitted",
		"mount":                             "operation not permitted",
		"ptrace":                            "operation not permitted",
		"init_module":                       "operation not permitted",
		"finit_module":                      "operation not permitted",
		"unshare_user":                      "operation not permitted",
		"chroot":                            "operation not permitted",
		"setuid_root":                       "operation not permitted",
		"fill_tmp":                          "no space left on device",
	}
	if runtime.GOARCH == "amd64" {
		// The same call through the i386 ABI (int 0x80) kills the caller
		// (a foreign ABI is not allowed at all); through x32 it is ENOSYS.
		want["i386_unshare"] = "bad system call"
		want["x32_unshare"] = "function not implemented"
		if strings.Contains(rep.Attempts["i386_unshare"], "exit status 3") {
			// int 0x80 faults before any filter runs: this kernel has no
			// i386 ABI (sandbox's TestForeignABICallsAreKilled covers the filter).
			t.Logf("this kernel has no i386 system call ABI: int 0x80 faults")
			delete(want, "i386_unshare")
		}
	}
	for k, w := range want {
		if got := rep.Attempts[k]; !strings.Contains(got, w) {
			t.Errorf("%s: got %q, want an error containing %q", k, got, w)
		}
	}
	if rep.TmpBytes > 16<<20 {
		t.Errorf("wrote %d bytes to a 16 MB /tmp", rep.TmpBytes)
	}
	// The fork bomb, alone: the environment's process limit refuses it
	// (EAGAIN), or, when the forked children's kernel memory (page tables)
	// reaches the memory size first, its cgroup's OOM killer ends it with
	// Lambda's Runtime.OutOfMemory. Either way it stays inside.
	fb := invoke(t, in, &invokeapi.Request{Payload: []byte(`{"fork":"only"}`)})
	switch {
	case fb.resp.FunctionError != "":
		if !strings.Contains(string(fb.body), "Runtime.OutOfMemory") {
			t.Errorf("fork bomb: %s, want EAGAIN or Runtime.OutOfMemory", fb.body)
		}
	default:
		var frep struct {
			Attempts map[string]string `json:"attempts"`
			Forked   int               `json:"forked"`
		}
		if err := json.Unmarshal(fb.body, &frep); err != nil {
			t.Fatalf("%v: %s", err, fb.body)
		}
		if !strings.Contains(frep.Attempts["fork_bomb"], "resource temporarily unavailable") || frep.Forked >= 1024 {
			t.Errorf("fork bomb: forked %d, got %q, want the process limit's EAGAIN below 1024", frep.Forked, frep.Attempts["fork_bomb"])
		}
	}
	// The host and the neighbour are untouched and both keep serving.
	if err := syscall.Kill(npid, 0); err != nil {
		t.Errorf("neighbour's bootstrap %d: %v", npid, err)
	}
	if r := invoke(t, neighbour, &invokeapi.Request{Payload: []byte(`"again"`)}); string(r.body) != `"again"` || r.report.ColdStart {
		t.Errorf("neighbour after the escape attempts: %s cold=%v", r.body, r.report.ColdStart)
	}
	if r := invoke(t, in, &invokeapi.Request{Payload: []byte(`{"forks":1}`)}); r.resp.FunctionError != "" {
		t.Errorf("escape instance after the attempts: %s", r.body)
	}
}

// TestTmpIsChargedToTheFunctionsMemory pins down a documented difference
// from Lambda (specs/LANGUAGE.md, ephemeral_storage_mb): /tmp is a tmpfs,
// and the kernel charges its pages to the memory cgroup of the process that
// writes them, so a function cannot hold more data in /tmp than its memory
// size allows: filling a 512 MB /tmp from a 128 MB function ends in
// Lambda's Runtime.OutOfMemory, not ENOSPC. The environment keeps serving.
func TestTmpIsChargedToTheFunctionsMemory(t *testing.T) {
	cfg := testConfig(t, "escape")
	cfg.MemoryMB = 128
	cfg.EphemeralStorageMB = 512
	cfg.Timeout = 60_000_000_000
	in := start(t, cfg)
	if !in.isolated || in.cgroup == nil {
		t.Skipf("needs the sandbox and a memory cgroup (isolated %v, cgroup %v)", in.isolated, in.cgroup)
	}
	r := invoke(t, in, &invokeapi.Request{Payload: []byte(`{"fill_only":true}`)})
	if r.resp.FunctionError == "" || !strings.Contains(string(r.body), "Runtime.OutOfMemory") {
		t.Fatalf("filling /tmp past the memory size: %s, want Runtime.OutOfMemory", r.body)
	}
	// The OOM killer keeps choosing while /tmp holds the cgroup at its
	// limit, until the holder of /tmp's mount namespace (the zygote or the
	// init) is gone with it: the next start is a fresh environment.
	if r := invoke(t, in, &invokeapi.Request{Payload: []byte(`{"forks":1,"fork":"only"}`)}); r.resp.FunctionError != "" {
		t.Errorf("after the out-of-memory end: %s", r.body)
	}
}
