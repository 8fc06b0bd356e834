package instance

import (
	"errors"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Memory sampling from /proc without cgroups. os.ReadFile costs about ten
// system calls per /proc file (open, fstat, four fcntl and a refused
// epoll_ctl for the poller, two reads, close); a sample is taken at the end
// of every invocation and 20 times a second per environment, so the files
// are opened once and re-read with pread (one call).

var (
	pageSize = int64(os.Getpagesize())
	selfPid  = os.Getpid()
)

// procFile is a /proc file held open for repeated reads. The descriptor
// stays bound to the process it was opened for: after that process is gone
// reads fail, even if its pid is reused.
type procFile struct{ fd int }

func openProcFile(path string) (*procFile, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &procFile{fd: fd}, nil
	}
}

// read fills buf from the start of the file and returns the bytes read.
func (f *procFile) read(buf []byte) ([]byte, error) {
	n, err := f.readAt(buf, 0)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// readAt reads into buf from offset off (0 at the end of the file).
func (f *procFile) readAt(buf []byte, off int64) (int, error) {
	for {
		n, err := syscall.Pread(f.fd, buf, off)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		return n, err
	}
}

func (f *procFile) close() {
	if f != nil && f.fd >= 0 {
		_ = syscall.Close(f.fd)
		f.fd = -1
	}
}

// statmRSS is the resident size in bytes from a /proc/<pid>/statm text
// ("size resident shared ..." in pages).
func statmRSS(b []byte) (int64, bool) {
	i := 0
	for i < len(b) && b[i] != ' ' { // skip size
		i++
	}
	i++
	var pages int64
	digits := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		pages = pages*10 + int64(b[i]-'0')
		digits++
	}
	if digits == 0 {
		return 0, false
	}
	return pages * pageSize, true
}

// rssReader samples one process's RSS through its statm file.
type rssReader struct {
	f   *procFile
	buf [128]byte
}

func openRSS(pid int) (*rssReader, error) {
	f, err := openProcFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return nil, err
	}
	return &rssReader{f: f}, nil
}

// rss is the process's resident size in bytes (false once it is gone).
func (r *rssReader) rss() (int64, bool) {
	b, err := r.f.read(r.buf[:])
	if err != nil {
		return 0, false
	}
	return statmRSS(b)
}

func (r *rssReader) close() {
	if r != nil {
		r.f.close()
	}
}

// groupRSS sums the RSS of an environment's processes: the members of a
// process group, found by scanning /proc (every process's stat names its
// group), or the processes of a cgroup, listed by its cgroup.procs (which
// also holds children that left the group). Members are found on rescan;
// in between only the known members' statm files are read.
type groupRSS struct {
	pgid    int
	procs   *procFile // cgroup.procs; nil: scan /proc for pgid
	skip    int       // a pid in cgroup.procs that is not the function's (its sandbox zygote)
	members map[int]*rssReader
	seen    map[int]bool
	statBuf [512]byte
	list    []byte
	// scanned is when the member list was last refreshed (see
	// rescanIfStale).
	scanned time.Time
}

// memberRescan is how long a cgroup's member list is trusted between
// per-invocation samples. Re-listing cgroup.procs on every invocation cost
// several system calls on the warm path; the main process is sampled every
// time, and a child started in between is found within this interval (its
// anonymous memory is in the cgroup's own peak meanwhile).
const memberRescan = time.Second

// rescanIfStale refreshes the member list when it is older than
// memberRescan or empty.
func (g *groupRSS) rescanIfStale(now time.Time) {
	if len(g.members) == 0 || now.Sub(g.scanned) >= memberRescan {
		g.rescan()
		g.scanned = now
	}
}

func newGroupRSS(pgid int) *groupRSS {
	return &groupRSS{pgid: pgid, members: map[int]*rssReader{}, seen: map[int]bool{}}
}

// newCgroupRSS lists members from procsPath (a cgroup.procs file). The
// instance's own pid is never a member: on cgroup v1 its spawner thread
// lives in the environment's cgroup.
func newCgroupRSS(procsPath string) (*groupRSS, error) {
	f, err := openProcFile(procsPath)
	if err != nil {
		return nil, err
	}
	g := newGroupRSS(0)
	g.procs = f
	return g, nil
}

// rescan refreshes the member list.
func (g *groupRSS) rescan() {
	clear(g.seen)
	if g.procs != nil {
		if !g.scanProcs() {
			return
		}
	} else if !g.scanGroup() {
		return
	}
	for pid := range g.seen {
		if _, ok := g.members[pid]; !ok {
			if r, err := openRSS(pid); err == nil {
				g.members[pid] = r
			}
		}
	}
	for pid, r := range g.members {
		if !g.seen[pid] {
			r.close()
			delete(g.members, pid)
		}
	}
}

// scanProcs reads the pids in cgroup.procs (one a line) into seen.
func (g *groupRSS) scanProcs() bool {
	g.list = g.list[:0]
	var chunk [256]byte
	for {
		n, err := g.procs.readAt(chunk[:], int64(len(g.list)))
		if err != nil {
			return false
		}
		if n == 0 {
			break
		}
		g.list = append(g.list, chunk[:n]...)
	}
	self, pid := selfPid, 0
	for _, c := range g.list {
		if c >= '0' && c <= '9' {
			pid = pid*10 + int(c-'0')
			continue
		}
		if pid > 0 && pid != self && pid != g.skip {
			g.seen[pid] = true
		}
		pid = 0
	}
	return true
}

// scanGroup finds the process group's members in /proc.
func (g *groupRSS) scanGroup() bool {
	d, err := os.Open("/proc")
	if err != nil {
		return false
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return false
	}
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(name)
		if err == nil && g.inGroup(pid) {
			g.seen[pid] = true
		}
	}
	return true
}

// inGroup reads /proc/<pid>/stat: after the parenthesised command come
// state, ppid and pgrp.
func (g *groupRSS) inGroup(pid int) bool {
	f, err := openProcFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	b, err := f.read(g.statBuf[:])
	f.close()
	if err != nil {
		return false
	}
	i := len(b) - 1
	for i >= 0 && b[i] != ')' {
		i--
	}
	if i < 0 {
		return false
	}
	field := 0
	for j := i + 1; j < len(b); {
		for j < len(b) && b[j] == ' ' {
			j++
		}
		start := j
		for j < len(b) && b[j] != ' ' {
			j++
		}
		if field == 2 {
			n, err := strconv.Atoi(string(b[start:j]))
			return err == nil && n == g.pgid
		}
		field++
	}
	return false
}

// rss sums the known members' RSS; members that are gone are dropped.
func (g *groupRSS) rss() int64 {
	var total int64
	for pid, r := range g.members {
		n, ok := r.rss()
		if !ok {
			r.close()
			delete(g.members, pid)
			continue
		}
		total += n
	}
	return total
}

func (g *groupRSS) close() {
	if g == nil {
		return
	}
	for pid, r := range g.members {
		r.close()
		delete(g.members, pid)
	}
	g.procs.close()
}
