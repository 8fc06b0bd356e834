package main

import (
	"errors"

	"github.com/nimbus-fn/nimbus/blueprints"
	"github.com/nimbus-fn/nimbus/gateway/console"
)

// consoleBlueprints is the console's view of the embedded blueprint
// catalogue (application templates are for nimbus init, not the console).
type consoleBlueprints struct{}

var _ console.Blueprints = consoleBlueprints{}

func (consoleBlueprints) List() []console.Blueprint {
	var out []console.Blueprint
	for _, b := range blueprints.List() {
		out = append(out, console.Blueprint{Name: b.Name, Runtime: b.Runtime, Language: b.Language,
			Description: b.Description, NeedsBuild: b.NeedsBuild, Handler: b.Handler})
	}
	return out
}

func (consoleBlueprints) CodeZip(name, function string) ([]byte, error) {
	info, err := blueprints.Lookup(name)
	if errors.Is(err, blueprints.ErrNotFound) || (err == nil && info.Template) {
		return nil, console.ErrBlueprintNotFound
	}
	if err != nil {
		return nil, err
	}
	if info.NeedsBuild {
		return nil, console.ErrNeedsBuild
	}
	return blueprints.Zip(name, blueprints.Data{Name: function})
}
