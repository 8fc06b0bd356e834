package console

import (
	"errors"
	"net/http"
	"strconv"
)

// Blueprint describes one entry of the blueprint catalogue.
type Blueprint struct {
	Name        string `json:"name"`
	Runtime     string `json:"runtime"`
	Language    string `json:"language"`
	Description string `json:"description"`
	// NeedsBuild: the code must be compiled (Go) before it is a Lambda zip;
	// the console cannot create such a function from the browser alone.
	NeedsBuild bool `json:"needsBuild"`
	// Handler is what a function created from the blueprint's code names.
	Handler string `json:"handler"`
}

// Blueprint catalogue errors.
var (
	ErrBlueprintNotFound = errors.New("blueprint not found")
	// ErrNeedsBuild: the blueprint's code must be built first.
	ErrNeedsBuild = errors.New("blueprint needs a build")
)

// Blueprints is the catalogue the console offers (the blueprints package,
// wired in cmd/).
type Blueprints interface {
	List() []Blueprint
	// CodeZip renders the blueprint for a function named function and
	// answers its Lambda code zip; ErrNeedsBuild for a compiled language.
	CodeZip(name, function string) ([]byte, error)
}

func (c *Console) serveBlueprints(w http.ResponseWriter, _ *http.Request) {
	list := []Blueprint{}
	if c.opts.Blueprints != nil {
		list = append(list, c.opts.Blueprints.List()...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"blueprints": list})
}

func (c *Console) serveBlueprintCode(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("Name")
	fn := r.URL.Query().Get("name")
	if fn == "" {
		fn = name
	}
	if !functionName.MatchString(fn) {
		writeMessage(w, http.StatusBadRequest, "name must be a function name: 1-64 letters, digits, hyphens or underscores")
		return
	}
	if c.opts.Blueprints == nil {
		writeMessage(w, http.StatusNotFound, "blueprint not found: "+name)
		return
	}
	zip, err := c.opts.Blueprints.CodeZip(name, fn)
	switch {
	case errors.Is(err, ErrBlueprintNotFound):
		writeMessage(w, http.StatusNotFound, "blueprint not found: "+name)
		return
	case errors.Is(err, ErrNeedsBuild):
		writeMessage(w, http.StatusConflict, "blueprint "+name+" must be built before it can be deployed: use nimbus init --blueprint "+name+" and nimbus deploy")
		return
	case err != nil:
		writeMessage(w, http.StatusInternalServerError, "rendering the blueprint: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+fn+`.zip"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(zip)))
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(zip)
}
