package plugintest_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nimbus-fn/nimbus/bundle"
	"github.com/nimbus-fn/nimbus/driver/nomadplugin/plugintest"
	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// TestCodeFromBundleCache starts tasks whose config names the code by URL
// and sha256, as compiled jobs do: the driver downloads the bundle once into
// its cache, and a second task of the same code (another allocation, or the
// function back from zero) starts from the cache without a download. A
// bundle that does not hash to its sha256 fails the start, recoverably.
func TestCodeFromBundleCache(t *testing.T) {
	bin := plugintest.BuildDriver(t)
	c := testCtx(t)

	// The echo function as the artifact store serves it.
	src := t.TempDir()
	installFunction(t, testfn.Dir(t, "echo"), src)
	var zipped bytes.Buffer
	sum, err := bundle.Zip(src, &zipped)
	if err != nil {
		t.Fatal(err)
	}
	var downloads atomic.Int32
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/bundles/"+sum+".zip" && r.URL.Path != "/tampered.zip" {
			http.NotFound(w, r)
			return
		}
		downloads.Add(1)
		_, _ = w.Write(zipped.Bytes())
	}))
	defer store.Close()

	cacheDir := filepath.Join(t.TempDir(), "bundles")
	h := plugintest.Launch(t, bin, plugintest.Logger(t))
	conf := map[string]any{"bundle_cache_dir": cacheDir}
	for k, v := range agentConfig {
		conf[k] = v
	}
	if _, err := h.Configure(c, conf, true); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Driver.Init(c, &driverpb.InitRequest{}); err != nil {
		t.Fatal(err)
	}
	events, err := h.Driver.TaskEvents(c, &driverpb.TaskEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	const secret = "bundle-secret"
	startOne := func(codeURL, sum string) (*driverpb.TaskConfig, int, error) {
		a := plugintest.NewAlloc(t, t.TempDir(), "fn")
		b, err := h.EncodeTask(c, map[string]any{
			"function": "echo", "runtime": "provided.al2023", "memory_mb": 128, "timeout": "5s",
			"invoke_secret": secret, "code_url": codeURL, "code_sha256": sum,
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		port := plugintest.FreePort(t)
		cfg := a.TaskConfig(a.TaskID(t), b, nil, map[string]int{"invoke": port})
		_, err = h.Driver.StartTask(c, &driverpb.StartTaskRequest{Task: cfg})
		return cfg, port, err
	}
	bundleEvent := func(id string) map[string]string {
		t.Helper()
		for {
			ev, err := events.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if ev.GetTaskId() == id && ev.GetMessage() == "Bundles ready" {
				return ev.GetAnnotations()
			}
		}
	}

	url := store.URL + "/bundles/" + sum + ".zip"
	first, port1, err := startOne(url, sum)
	if err != nil {
		t.Fatalf("StartTask: %v", err)
	}
	if ann := bundleEvent(first.GetId()); ann["downloaded"] != "1" || ann["bundles"] != "1" {
		t.Errorf("first start's bundle event %v, want one bundle downloaded", ann)
	}
	invoke(t, "127.0.0.1:"+strconv.Itoa(port1), secret, `{"task":1}`)

	// The function scales in, then back out from zero: no second download.
	if _, err := h.Driver.StopTask(c, &driverpb.StopTaskRequest{TaskId: first.GetId(), Timeout: durationpb.New(0), Signal: "SIGKILL"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Driver.DestroyTask(c, &driverpb.DestroyTaskRequest{TaskId: first.GetId(), Force: true}); err != nil {
		t.Fatal(err)
	}
	second, port2, err := startOne(url, sum)
	if err != nil {
		t.Fatalf("StartTask from the cache: %v", err)
	}
	if ann := bundleEvent(second.GetId()); ann["downloaded"] != "0" {
		t.Errorf("second start's bundle event %v, want no download", ann)
	}
	invoke(t, "127.0.0.1:"+strconv.Itoa(port2), secret, `{"task":2}`)
	if n := downloads.Load(); n != 1 {
		t.Errorf("%d downloads for two starts of one bundle, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, sum, "content", "bootstrap")); err != nil {
		t.Errorf("bundle not in the cache dir: %v", err)
	}
	// The running instance pins the entry (the driver let go of its own pin
	// once the instance was up): the cache's collector could not take it.
	entry, err := os.Open(filepath.Join(cacheDir, sum))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(entry.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		t.Error("the entry of a running task's code is not pinned")
	}
	entry.Close()

	// Bytes that are not the bundle the job names: the start fails and says
	// why. (A cached digest is never downloaded again, so name another one.)
	other := strings.Repeat("0", 64)
	_, _, err = startOne(store.URL+"/tampered.zip", other)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "does not match its sha256") {
		t.Errorf("StartTask with a tampered bundle: %v, want Unavailable about the sha256", err)
	}
	if _, err := h.Driver.StopTask(c, &driverpb.StopTaskRequest{TaskId: second.GetId(), Timeout: durationpb.New(0), Signal: "SIGKILL"}); err != nil {
		t.Fatal(err)
	}
}
