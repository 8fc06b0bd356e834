package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/config"
)

func TestArtifactsBlock(t *testing.T) {
	load := func(src string) (*config.Config, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "gateway.hcl")
		if err := os.WriteFile(path, []byte("dev = true\n"+src), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		c.Defaults()
		return c, c.Validate()
	}
	c, err := load("artifacts {\n  bucket = \"code\"\n  gc_interval = \"5m\"\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Artifacts; a.Bucket != "code" || a.GCIntervalD != 5*time.Minute || a.GCGraceD != time.Hour || a.MaxBundleBytes != 50<<20 {
		t.Fatalf("artifacts block: %+v", a)
	}
	if c, err = load(""); err != nil || c.Artifacts.Bucket != "nimbus_artifacts" || c.Artifacts.GCIntervalD != 10*time.Minute {
		t.Fatalf("no artifacts block: %+v %v", c.Artifacts, err)
	}
	if _, err := load("artifacts {\n  gc_interval = \"0s\"\n  replicas = 9\n}\n"); err == nil ||
		!strings.Contains(err.Error(), `gc_interval "0s" must be positive`) || !strings.Contains(err.Error(), "replicas 9") {
		t.Fatalf("bad artifacts block: %v", err)
	}
}
