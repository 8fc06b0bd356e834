package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ownerFile is the file in a temporary dir of nimbus dev that names the
// process owning the dir: "PID START", START being the process's start
// time in clock ticks since boot (/proc/PID/stat field 22; 0 where /proc
// is missing), so a reused pid is not taken for the owner.
const ownerFile = "nimbus.pid"

// staleTempPrefixes name the temporary dirs a killed nimbus dev or gateway
// leaves behind; sweepStaleTempDirs removes those whose owner is gone.
var staleTempPrefixes = []string{"nimbus-dev-", "nimbus-queue-", buildTempPrefix}

// buildTempPrefix names the dir compileSpecs builds function code in.
const buildTempPrefix = "nimbus-build-"

// makeOwnedTempDir creates a dir named prefix* in base, with an owner file
// naming this process.
func makeOwnedTempDir(base, prefix string) (string, error) {
	dir, err := os.MkdirTemp(base, prefix)
	if err != nil {
		return "", err
	}
	pid := os.Getpid()
	owner := fmt.Sprintf("%d %d\n", pid, procStartTicks(pid))
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner), 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// sweepStaleTempDirs removes the dirs directly in base whose names start
// with one of prefixes and whose owner file names a process that no longer
// runs. Dirs without a readable owner file are left alone: nobody can say
// they are stale. It returns the dirs it removed.
func sweepStaleTempDirs(base string, prefixes []string) ([]string, error) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || !hasAnyPrefix(e.Name(), prefixes) {
			continue
		}
		dir := filepath.Join(base, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, start, ok := parseOwner(string(b))
		if !ok || ownerAlive(pid, start) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, dir)
	}
	return removed, errors.Join(errs...)
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func parseOwner(s string) (pid int, start uint64, ok bool) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, 0, false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return 0, 0, false
	}
	if len(f) > 1 {
		start, _ = strconv.ParseUint(f[1], 10, 64)
	}
	return pid, start, true
}

// ownerAlive says whether process pid runs and, when start is known on
// both sides, is the process that started at start.
func ownerAlive(pid int, start uint64) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if now := procStartTicks(pid); start != 0 && now != 0 && now != start {
		return false // the pid was reused
	}
	return true
}

// procStartTicks is when process pid started, in clock ticks since boot
// (/proc/PID/stat field 22); 0 when unknown.
func procStartTicks(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}
