package nomadplugin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"
	"golang.org/x/sys/unix"

	"github.com/nimbus-fn/nimbus/driver/taskconfig"
)

func TestParseStatHandlesOddCommandNames(t *testing.T) {
	line := "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 3 0 98765 1000000 321 18446744073709551615\n"
	st, err := parseStat(4242, []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{pid: 4242, state: 'S', ppid: 1, session: 4242, utime: 17, stime: 5, startTime: 98765, rssPages: 321}
	if st != want {
		t.Errorf("parseStat = %+v, want %+v", st, want)
	}
	if _, err := parseStat(1, []byte("1 (x) S 1")); err == nil {
		t.Error("short stat line accepted")
	}
}

func TestTreeFindsSessionMembersAndIgnoresStrangers(t *testing.T) {
	root := t.TempDir()
	write := func(pid, line string) {
		if err := os.MkdirAll(filepath.Join(root, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, pid, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stat := func(pid, state, ppid, sid, start string) string {
		return pid + " (p) " + state + " " + ppid + " " + pid + " " + sid + " 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 " + start + " 0 10 0\n"
	}
	write("100", stat("100", "S", "1", "100", "500"))   // the instance
	write("101", stat("101", "S", "100", "101", "510")) // environment in its own session, a child
	write("102", stat("102", "S", "101", "101", "520")) // grandchild
	write("103", stat("103", "S", "1", "100", "530"))   // re-parented, still in the session
	write("104", stat("104", "S", "1", "104", "540"))   // a stranger
	write("105", stat("105", "S", "1", "100", "400"))   // older than the instance: not ours
	write("106", stat("106", "Z", "100", "100", "550")) // zombie
	procs, err := procIdentity{pid: 100, startTime: 500}.tree(root)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]bool{}
	for _, p := range procs {
		got[p.pid] = true
	}
	for _, pid := range []int{100, 101, 102, 103} {
		if !got[pid] {
			t.Errorf("pid %d missing from the tree", pid)
		}
	}
	for _, pid := range []int{104, 105, 106} {
		if got[pid] {
			t.Errorf("pid %d wrongly in the tree", pid)
		}
	}
	// The pid names another process now: nothing is ours.
	if procs, _ := (procIdentity{pid: 100, startTime: 499}).tree(root); len(procs) != 0 {
		t.Errorf("reused pid yields %v", procs)
	}
	if (procIdentity{pid: 100, startTime: 499}).alive(root) || !(procIdentity{pid: 100, startTime: 500}).alive(root) {
		t.Error("alive ignores the start time")
	}
}

func TestWithin(t *testing.T) {
	for rel, ok := range map[string]bool{
		"local/code": true, ".": true, "local/../local/code": true,
		"..": false, "../other": false, "/etc": false, "local/../../x": false, "..foo": true,
	} {
		_, err := within("/alloc/task", rel)
		if (err == nil) != ok {
			t.Errorf("within(%q): err = %v, want ok=%v", rel, err, ok)
		}
	}
}

func TestTaskDirName(t *testing.T) {
	if got := taskDirName("0b1c/fn/ab12cd34"); got != "nimbus-ab12cd34" {
		t.Errorf("taskDirName = %q", got)
	}
	if got := taskDirName("../../x y"); strings.ContainsAny(got, "/ ") || got == "nimbus-" {
		t.Errorf("taskDirName of a hostile id = %q", got)
	}
}

func TestParseSignal(t *testing.T) {
	for name, want := range map[string]unix.Signal{"SIGTERM": unix.SIGTERM, "sigint": unix.SIGINT, "HUP": unix.SIGHUP, " SIGKILL ": unix.SIGKILL} {
		if got, err := parseSignal(name); err != nil || got != want {
			t.Errorf("parseSignal(%q) = %v, %v", name, got, err)
		}
	}
	if _, err := parseSignal("SIGWHAT"); err == nil {
		t.Error("unknown signal accepted")
	}
}

func TestRunAs(t *testing.T) {
	s, err := Config{DefaultRunAs: "lambda", AllowedRunAs: []string{"nobody"}, StatsInterval: "1s", FingerprintInterval: "1s", StartTimeout: "1s", StopSignal: "TERM"}.validate()
	if err != nil {
		t.Fatal(err)
	}
	for req, want := range map[string]string{"": "lambda", "lambda": "lambda", "nobody": "nobody"} {
		if got, err := s.runAs(req); err != nil || got != want {
			t.Errorf("runAs(%q) = %q, %v", req, got, err)
		}
	}
	if _, err := s.runAs("root"); err == nil {
		t.Error("root allowed without being listed")
	}
}

func TestDecodeReadsEveryNumberEncoding(t *testing.T) {
	ty, err := taskSchema().impliedType()
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]cty.Value{}
	for name, at := range ty.AttributeTypes() {
		vals[name] = cty.NullVal(at)
	}
	vals["function"] = cty.StringVal("f")
	vals["runtime"] = cty.StringVal("provided")
	vals["invoke_secret"] = cty.StringVal("s")
	vals["memory_mb"] = cty.NumberIntVal(1024)
	vals["environments"] = cty.MustParseNumberVal("2")
	vals["layer_dirs"] = cty.ListVal([]cty.Value{cty.StringVal("local/l1")})
	b, err := ctymsgpack.Marshal(cty.ObjectVal(vals), ty)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := DecodeTaskConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if tc.MemoryMB != 1024 || tc.Environments != 2 || len(tc.LayerDirs) != 1 || tc.Timeout != "3s" {
		t.Errorf("decoded %+v", tc)
	}
	// A config Normalize rejects is reported as invalid.
	vals["memory_mb"] = cty.NumberIntVal(64)
	b, _ = ctymsgpack.Marshal(cty.ObjectVal(vals), ty)
	if _, err := DecodeTaskConfig(b); !errors.Is(err, taskconfig.ErrInvalid) {
		t.Errorf("memory_mb 64: err = %v", err)
	}
}

func TestIsolationConfig(t *testing.T) {
	base := DefaultConfig()
	s, err := base.validate()
	if err != nil || s.UIDRange != "64000-64999" || s.AllowRoot {
		t.Fatalf("defaults: %+v %v", s, err)
	}
	for _, bad := range []Config{
		{UIDRange: "10-5"},
		{UIDRange: "nope"},
		{ChrootEnv: map[string]string{"/etc": "/etc"}},
		{ChrootEnv: map[string]string{"usr": "/usr"}},
	} {
		c := DefaultConfig()
		if bad.UIDRange != "" {
			c.UIDRange = bad.UIDRange
		}
		c.ChrootEnv = bad.ChrootEnv
		if _, err := c.validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if got := isolationAttr(nil); got != "full" {
		t.Errorf("isolation attribute %q", got)
	}
	if got := isolationAttr([]string{"root"}); got != "none (missing: root)" {
		t.Errorf("isolation attribute %q", got)
	}
}

func TestRegistryAuthConfig(t *testing.T) {
	c := DefaultConfig()
	c.RegistryAuth = []map[string]string{{"registry": "r.example:5000", "username": "u", "password": "p"}, {"registry": "ghcr.io", "token": "t"}}
	c.InsecureRegistries = []string{"r.example:5000"}
	s, err := c.validate()
	if err != nil {
		t.Fatal(err)
	}
	a := s.registryAuth
	if len(a.Credentials) != 2 || a.Credentials[0].Password != "p" || a.Credentials[1].Token != "t" || a.InsecureRegistries[0] != "r.example:5000" {
		t.Fatalf("auth %+v", a)
	}
	if s.ImageCacheDir != DefaultImageCacheDir || s.ImageCacheMaxMB != DefaultImageCacheMaxMB {
		t.Fatalf("image cache defaults: %q %d", s.ImageCacheDir, s.ImageCacheMaxMB)
	}
}
