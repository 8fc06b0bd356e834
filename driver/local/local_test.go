package local

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/oci/ocitest"
	"github.com/nimbus-fn/nimbus/driver/sandbox"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

func TestLaunchInvokeListStop(t *testing.T) {
	l := NewLauncher(t.TempDir(), hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: os.Stderr}))
	ctx := context.Background()
	cfg := &instance.Config{Function: "echo", Runtime: "provided.al2023", CodeDir: testfn.Dir(t, "echo"), InvokeSecret: "k", Timeout: 5 * time.Second}
	a, err := l.Launch(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Launch(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.StopAll(context.Background()) })
	if a.Addr == b.Addr || a.StateDir == b.StateDir || a.ID == b.ID {
		t.Fatalf("instances share %s/%s", a.Addr, a.StateDir)
	}
	if got := l.List(); len(got) != 2 || got[0].ID != a.ID {
		t.Fatalf("list %v", got)
	}
	c := &invokeapi.Client{Secret: a.Secret}
	resp, err := c.Invoke(ctx, a.Addr, &invokeapi.Request{Payload: []byte(`"local"`)})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `"local"` || a.Status().Invocations != 1 {
		t.Fatalf("answer %q status %+v", body, a.Status())
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Get(a.ID); ok || len(l.List()) != 1 {
		t.Fatal("stopped instance still listed")
	}
	if _, err := c.Invoke(ctx, a.Addr, &invokeapi.Request{}); err == nil {
		t.Fatal("stopped instance still answers")
	}
}

func TestLaunchRejectsBadConfig(t *testing.T) {
	l := NewLauncher(t.TempDir(), nil)
	if _, err := l.Launch(context.Background(), &instance.Config{Function: "x"}); err == nil {
		t.Fatal("accepted a config without runtime or code")
	}
	if len(l.List()) != 0 {
		t.Fatal("failed launch listed")
	}
}

func TestLaunchImageFunction(t *testing.T) {
	if m := sandbox.Missing(); len(m) > 0 {
		t.Skipf("image functions need isolation; this host lacks: %v", m)
	}
	reg := ocitest.NewRegistry(t, "", "")
	bin := ocitest.DirEntries(t, testfn.Dir(t, "echo"), "/")
	bin[0].Name = "main"
	ref := reg.Push(t, "local/echo:v1", ocitest.Image(t, v1.Config{Entrypoint: []string{"/main"}}, ocitest.Layer(t, bin...)))
	l := NewLauncher(t.TempDir(), hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: os.Stderr}))
	ctx := context.Background()
	h, err := l.Launch(ctx, &instance.Config{Function: "img", Image: &instance.ImageConfig{Ref: ref}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.StopAll(context.Background()) })
	resp, err := (&invokeapi.Client{}).Invoke(ctx, h.Addr, &invokeapi.Request{Payload: []byte(`"from an image"`)})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `"from an image"` {
		t.Fatalf("answer %q", body)
	}
	if ents, err := os.ReadDir(filepath.Join(l.ImageCacheDir(), "layers")); err != nil || len(ents) != 2 {
		t.Fatalf("launcher's image cache: %v %v", ents, err)
	}
}
