package nomadplugin

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times. Linux fixes it
// at 100 on every architecture Nomad clients run on.
const clockTicks = 100

// procStat is the part of /proc/<pid>/stat the driver uses.
type procStat struct {
	pid       int
	state     byte
	ppid      int
	session   int
	utime     uint64 // clock ticks
	stime     uint64
	startTime uint64 // clock ticks after boot; with pid, a process identity
	rssPages  int64
}

// readStat parses /proc/<pid>/stat.
func readStat(procRoot string, pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(pid, b)
}

func parseStat(pid int, b []byte) (procStat, error) {
	// The command name may hold spaces and parentheses; it ends at the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procStat{}, fmt.Errorf("malformed stat of pid %d", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	// f[0] is field 3 (state) of proc(5); field N is f[N-3].
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("short stat of pid %d", pid)
	}
	num := func(n int) uint64 { v, _ := strconv.ParseUint(f[n-3], 10, 64); return v }
	rss, _ := strconv.ParseInt(f[24-3], 10, 64)
	return procStat{
		pid:       pid,
		state:     f[0][0],
		ppid:      int(num(4)),
		session:   int(num(6)),
		utime:     num(14),
		stime:     num(15),
		startTime: num(22),
		rssPages:  rss,
	}, nil
}

// dead reports a process that has exited but not been reaped (zombie) or
// is being torn down.
func (s procStat) dead() bool { return s.state == 'Z' || s.state == 'X' || s.state == 'x' }

// procIdentity names one process across pid reuse.
type procIdentity struct {
	pid       int
	startTime uint64
}

// alive reports whether the process identified by id still runs.
func (id procIdentity) alive(procRoot string) bool {
	st, err := readStat(procRoot, id.pid)
	if err != nil {
		return false
	}
	return st.startTime == id.startTime && !st.dead()
}

// tree returns the live processes that belong to the instance id: the
// instance itself, its descendants, and every process still in its session
// (environments re-parented after the instance died). Processes started
// before the instance cannot be ours and are skipped, which keeps a reused
// pid from pulling in strangers.
func (id procIdentity) tree(procRoot string) ([]procStat, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	all := make(map[int]procStat, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(procRoot, pid)
		if err != nil || st.dead() || st.startTime < id.startTime {
			continue
		}
		all[pid] = st
	}
	leader, leaderOK := all[id.pid]
	if leaderOK && leader.startTime != id.startTime {
		// The pid now names another process (and so may its session).
		return nil, nil
	}
	var out []procStat
	for pid, st := range all {
		if pid == id.pid || st.session == id.pid || descends(all, st, id.pid) {
			out = append(out, st)
		}
	}
	return out, nil
}

func descends(all map[int]procStat, st procStat, root int) bool {
	for hops := 0; hops < 64 && st.ppid > 1; hops++ {
		if st.ppid == root {
			return true
		}
		p, ok := all[st.ppid]
		if !ok {
			return false
		}
		st = p
	}
	return false
}

// killTree sends SIGKILL to every process of the instance.
func (id procIdentity) killTree(procRoot string) error {
	procs, err := id.tree(procRoot)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range procs {
		if err := unix.Kill(p.pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("killing pid %d: %w", p.pid, err))
		}
	}
	return errors.Join(errs...)
}

// signal sends sig to the instance process if it is still the same process.
func (id procIdentity) signal(procRoot string, sig unix.Signal) error {
	if !id.alive(procRoot) {
		return nil
	}
	if err := unix.Kill(id.pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signalling pid %d: %w", id.pid, err)
	}
	return nil
}

// openFIFO opens a log FIFO (or /dev/null) for writing without creating it,
// retrying while no reader has it open yet, until deadline. The returned
// file is in blocking mode so a child can inherit it as stdout/stderr.
func openFIFO(path string, deadline time.Time) (*os.File, error) {
	const pause = 20 * time.Millisecond
	for {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err == nil {
			if err := unix.SetNonblock(fd, false); err != nil {
				unix.Close(fd)
				return nil, fmt.Errorf("log sink %s: %w", path, err)
			}
			return os.NewFile(uintptr(fd), path), nil
		}
		if !errors.Is(err, unix.ENXIO) && !errors.Is(err, unix.EINTR) {
			return nil, fmt.Errorf("opening log sink %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("opening log sink %s: no reader before the start timeout", path)
		}
		time.Sleep(pause)
	}
}
