package versions

import (
	"context"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/nimbus-fn/nimbus/specs"
)

func TestLocalLayerDirs(t *testing.T) {
	ctx := context.Background()
	l, _ := NewLocal(t.TempDir())
	s := New(l, nil)
	for _, c := range []byte("ab") {
		if _, _, err := s.PublishLayer(ctx, "deps", LayerSnapshot{CodeSHA256: sha(c), Size: 1}); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(l.UnpackedDir(sha(c)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.PublishLayer(ctx, "gone", LayerSnapshot{CodeSHA256: sha('c'), Size: 1}); err != nil {
		t.Fatal(err)
	}
	dirs, err := l.LayerDirs(ctx, s, &specs.Function{Runtime: "python3.12", Layers: []string{"deps:1", "deps"}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dirs, []string{l.UnpackedDir(sha('a')), l.UnpackedDir(sha('b'))}) {
		t.Fatalf("dirs %v", dirs)
	}
	if _, err := l.LayerDirs(ctx, s, &specs.Function{Layers: []string{"gone"}}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a layer version without its files: %v", err)
	}
}
