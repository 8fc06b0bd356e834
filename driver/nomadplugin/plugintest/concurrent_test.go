package plugintest_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nimbus-fn/nimbus/driver/nomadplugin/plugintest"
	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// TestConcurrentTasks runs several task runners at once against one plugin,
// as a Nomad client with many allocations does: start, stats, invoke,
// stop, wait and destroy interleave freely.
func TestConcurrentTasks(t *testing.T) {
	bin := plugintest.BuildDriver(t)
	h := start(t, bin, plugintest.Logger(t))
	echo := testfn.Dir(t, "echo")
	const n = 4
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		a := plugintest.NewAlloc(t, t.TempDir(), "fn")
		installFunction(t, echo, filepath.Join(a.TaskDir, "local", "code"))
		port := plugintest.FreePort(t)
		cfg := taskConfig(t, h, a, port, "s"+strconv.Itoa(i))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- runTask(t, h, cfg, port, "s"+strconv.Itoa(i))
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func runTask(t *testing.T, h *plugintest.Host, cfg *driverpb.TaskConfig, port int, secret string) error {
	c := testCtx(t)
	if _, err := h.Driver.StartTask(c, &driverpb.StartTaskRequest{Task: cfg}); err != nil {
		return fmt.Errorf("start %s: %w", cfg.GetId(), err)
	}
	waits := make(chan waitResult, 1)
	go wait(c, h, cfg.GetId(), waits)
	stats, err := h.Driver.TaskStats(c, &driverpb.TaskStatsRequest{TaskId: cfg.GetId(), CollectionInterval: durationpb.New(50 * time.Millisecond)})
	if err != nil {
		return err
	}
	if _, err := stats.Recv(); err != nil {
		return fmt.Errorf("stats %s: %w", cfg.GetId(), err)
	}
	if err := invokeErr(c, "127.0.0.1:"+strconv.Itoa(port), secret, `{"id":"`+cfg.GetId()+`"}`); err != nil {
		return err
	}
	if _, err := h.Driver.StopTask(c, &driverpb.StopTaskRequest{TaskId: cfg.GetId(), Timeout: durationpb.New(5 * time.Second)}); err != nil {
		return fmt.Errorf("stop %s: %w", cfg.GetId(), err)
	}
	if r := <-waits; r.err != nil || r.resp.GetResult().GetExitCode() != 0 {
		return fmt.Errorf("wait %s: %v %v", cfg.GetId(), r.resp, r.err)
	}
	if _, err := h.Driver.DestroyTask(c, &driverpb.DestroyTaskRequest{TaskId: cfg.GetId(), Force: true}); err != nil {
		return fmt.Errorf("destroy %s: %w", cfg.GetId(), err)
	}
	return nil
}
