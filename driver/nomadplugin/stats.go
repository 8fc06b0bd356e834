package nomadplugin

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
)

// TaskStats streams the instance's resource usage (the instance plus its
// environments) every collection interval until Nomad cancels the stream or
// the task exits. Every message sets stats, timestamp and agg_resource_usage:
// Nomad dereferences them unchecked.
func (d *Driver) TaskStats(req *driverpb.TaskStatsRequest, srv driverpb.Driver_TaskStatsServer) error {
	t, ok := d.lookup(req.GetTaskId())
	if !ok {
		return status.Errorf(codes.NotFound, "%v: %s", errTaskNotFound, req.GetTaskId())
	}
	every := req.GetCollectionInterval().AsDuration()
	if every <= 0 {
		every = d.settings().statsInterval
	}
	s := newSampler(d.opts.ProcRoot, t.proc)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if err := srv.Send(&driverpb.TaskStatsResponse{Stats: s.sample(t.id)}); err != nil {
			return err
		}
		select {
		case <-srv.Context().Done():
			return nil
		case <-t.done:
			return nil
		case <-tick.C:
		}
	}
}

// sampler turns successive /proc readings into CPU rates.
type sampler struct {
	procRoot string
	id       procIdentity
	mhz      float64
	last     map[int]cpuTicks
	lastAt   time.Time
}

type cpuTicks struct{ user, system uint64 }

func newSampler(procRoot string, id procIdentity) *sampler {
	return &sampler{procRoot: procRoot, id: id, mhz: cpuMHz(procRoot), last: map[int]cpuTicks{}}
}

var (
	cpuFields = []driverpb.CPUUsage_Fields{
		driverpb.CPUUsage_SYSTEM_MODE, driverpb.CPUUsage_USER_MODE,
		driverpb.CPUUsage_TOTAL_TICKS, driverpb.CPUUsage_PERCENT,
	}
	memFields = []driverpb.MemoryUsage_Fields{driverpb.MemoryUsage_RSS}
)

// sample reads every process of the instance. CPU values are percentages of
// one core over the time since the previous sample (0 on the first one);
// total_ticks is that share in MHz, comparable to the task's cpu resource.
func (s *sampler) sample(taskID string) *driverpb.TaskStats {
	now := time.Now()
	procs, _ := s.id.tree(s.procRoot)
	elapsed := now.Sub(s.lastAt).Seconds()
	first := s.lastAt.IsZero()
	page := uint64(os.Getpagesize())
	agg := usage(0, 0, 0, 0)
	byPid := make(map[string]*driverpb.TaskResourceUsage, len(procs))
	cur := make(map[int]cpuTicks, len(procs))
	for _, p := range procs {
		c := cpuTicks{user: p.utime, system: p.stime}
		cur[p.pid] = c
		var userPct, sysPct float64
		if prev, ok := s.last[p.pid]; ok && !first && elapsed > 0 {
			userPct = pct(c.user-min(prev.user, c.user), elapsed)
			sysPct = pct(c.system-min(prev.system, c.system), elapsed)
		}
		rss := uint64(max(p.rssPages, 0)) * page
		u := usage(userPct, sysPct, s.mhz, rss)
		byPid[strconv.Itoa(p.pid)] = u
		agg.Cpu.UserMode += u.Cpu.UserMode
		agg.Cpu.SystemMode += u.Cpu.SystemMode
		agg.Cpu.Percent += u.Cpu.Percent
		agg.Cpu.TotalTicks += u.Cpu.TotalTicks
		agg.Memory.Rss += rss
	}
	s.last, s.lastAt = cur, now
	return &driverpb.TaskStats{
		Id:                 taskID,
		Timestamp:          timestamppb.New(now),
		AggResourceUsage:   agg,
		ResourceUsageByPid: byPid,
	}
}

func pct(ticks uint64, seconds float64) float64 {
	return float64(ticks) / clockTicks / seconds * 100
}

func usage(userPct, sysPct, mhz float64, rss uint64) *driverpb.TaskResourceUsage {
	total := userPct + sysPct
	return &driverpb.TaskResourceUsage{
		Cpu: &driverpb.CPUUsage{
			UserMode:       userPct,
			SystemMode:     sysPct,
			Percent:        total,
			TotalTicks:     total / 100 * mhz,
			MeasuredFields: cpuFields,
		},
		Memory: &driverpb.MemoryUsage{Rss: rss, MeasuredFields: memFields},
	}
}

var (
	mhzOnce  sync.Once
	mhzValue float64
)

// cpuMHz is one core's clock from /proc/cpuinfo (falling back to a nominal
// 1000 MHz where the kernel does not report it, e.g. some arm64 VMs).
func cpuMHz(procRoot string) float64 {
	mhzOnce.Do(func() {
		mhzValue = 1000
		f, err := os.Open(filepath.Join(procRoot, "cpuinfo"))
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "cpu MHz" {
				if m, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && m > 0 {
					mhzValue = m
				}
				return
			}
		}
	})
	return mhzValue
}
