package main

import (
	"archive/zip"
	"bytes"
	"errors"
	"testing"

	"github.com/nimbus-fn/nimbus/blueprints"
	"github.com/nimbus-fn/nimbus/gateway/console"
)

// The console's catalogue is the blueprints package's: every blueprint
// listed, templates left out, and code zips only for those that need no
// build.
func TestConsoleBlueprintsAdapter(t *testing.T) {
	list := consoleBlueprints{}.List()
	if len(list) != len(blueprints.List()) || len(list) == 0 {
		t.Fatalf("%d blueprints listed, the package has %d", len(list), len(blueprints.List()))
	}
	for _, b := range list {
		z, err := consoleBlueprints{}.CodeZip(b.Name, "made")
		switch {
		case b.NeedsBuild && !errors.Is(err, console.ErrNeedsBuild):
			t.Errorf("%s needs a build, CodeZip answered %v", b.Name, err)
		case !b.NeedsBuild && err != nil:
			t.Errorf("%s: %v", b.Name, err)
		case !b.NeedsBuild:
			if _, err := zip.NewReader(bytes.NewReader(z), int64(len(z))); err != nil {
				t.Errorf("%s: not a zip: %v", b.Name, err)
			}
		}
	}
	for _, tpl := range blueprints.Templates() {
		if _, err := (consoleBlueprints{}).CodeZip(tpl.Name, "made"); !errors.Is(err, console.ErrBlueprintNotFound) {
			t.Errorf("template %s offered as a blueprint: %v", tpl.Name, err)
		}
	}
	if _, err := (consoleBlueprints{}).CodeZip("no-such", "made"); !errors.Is(err, console.ErrBlueprintNotFound) {
		t.Errorf("unknown blueprint: %v", err)
	}
}
