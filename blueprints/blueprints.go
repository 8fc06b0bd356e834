package blueprints

import (
	"archive/zip"
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"
)

//go:embed all:catalog all:templates
var files embed.FS

// AWSLambdaGoVersion is the github.com/aws/aws-lambda-go version Nimbus
// itself builds with (go.mod); Go blueprints require the same one, so they
// build offline from a module cache that built Nimbus. A test fails when it
// drifts from go.mod.
const AWSLambdaGoVersion = "v1.55.1"

// awsLambdaGoSum are go.sum's lines for AWSLambdaGoVersion (checked against
// go.sum by the same test).
const awsLambdaGoSum = "github.com/aws/aws-lambda-go v1.55.1 h1:We2cCp4BwqqH/JW+bEEo1FhgG71rslvjfi4y7KmlrR0=\n" +
	"github.com/aws/aws-lambda-go v1.55.1/go.mod h1:V+NzkHNR6vBC8C1PDloqSLE+7jYWFiPvJJFiCiTm8nE=\n"

// Errors Scaffold and Zip return; test with errors.Is.
var (
	ErrNotFound = errors.New("no such blueprint or template")
	ErrNotEmpty = errors.New("target directory is not empty")
)

// Info describes one blueprint or template.
type Info struct {
	Name        string `json:"name"`
	Runtime     string `json:"runtime,omitempty"`  // blueprints only
	Language    string `json:"language,omitempty"` // go, python or node; blueprints only
	Description string `json:"description"`
	// Events says what each sample event must produce (blueprints only).
	Events []Event `json:"events,omitempty"`
	// Template is true for application templates.
	Template bool `json:"template,omitempty"`
	// NeedsBuild is true when the project must be built before it runs on
	// Lambda (Go: the bootstrap executable). When false, Zip's output is
	// directly a Lambda code zip.
	NeedsBuild bool `json:"needs_build"`
	// UsesModule is true when the project's files use Data.Module (Go
	// projects' go.mod); setting a module for one that does not is an error.
	UsesModule bool `json:"uses_module"`
	// Handler is the spec's handler (blueprints only), what a function
	// created from the blueprint's Zip must name.
	Handler string `json:"handler,omitempty"`
}

// handlerRE finds the handler attribute in a blueprint's spec template.
var handlerRE = regexp.MustCompile(`(?m)^\s*handler\s*=\s*"([^"]+)"`)

// Event is one sample event and what running it must give.
type Event struct {
	File   string `json:"file"` // relative to the project, e.g. events/order.json
	Expect Expect `json:"expect"`
}

// Expect is what a sample event's invocation must produce.
type Expect struct {
	// Contains must occur in the function's output (response or error body).
	Contains string `json:"contains"`
	// FunctionError says the invocation ends in a function error.
	FunctionError bool `json:"function_error,omitempty"`
}

// Data is what .tmpl files are rendered with.
type Data struct {
	Name               string // function / project name
	Module             string // Go module path; default Name
	AwsLambdaGoVersion string // default AWSLambdaGoVersion
	AwsLambdaGoSum     string // go.sum lines for aws-lambda-go; default those of AWSLambdaGoVersion
}

// ErrModuleUnused is returned when Data.Module is set for a project that has
// no Go module (Info.UsesModule false).
var ErrModuleUnused = errors.New("has no Go module to name")

// Options change how Scaffold writes.
type Options struct {
	// Force writes into a non-empty directory, replacing files of the same
	// name (others are left alone).
	Force bool
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// moduleRE is a conservative Go module path: slash-separated elements of
// letters, digits and ._~- (go.mod needs no quoting for these).
var moduleRE = regexp.MustCompile(`^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$`)

func (d Data) withDefaults() (Data, error) {
	if !nameRE.MatchString(d.Name) {
		return d, fmt.Errorf("name %q: want 1-64 of A-Z a-z 0-9 - _ (a function name)", d.Name)
	}
	if d.Module == "" {
		d.Module = d.Name
	}
	if !moduleRE.MatchString(d.Module) || len(d.Module) > 256 {
		return d, fmt.Errorf("module %q is not a Go module path", d.Module)
	}
	if d.AwsLambdaGoVersion == "" {
		d.AwsLambdaGoVersion = AWSLambdaGoVersion
	}
	if d.AwsLambdaGoSum == "" {
		d.AwsLambdaGoSum = awsLambdaGoSum
	}
	return d, nil
}

type entry struct {
	info Info
	root string // directory in fsys
}

// catalog is a loaded tree of blueprints and templates.
type catalog struct {
	fsys    fs.FS
	entries map[string]entry
}

var (
	loadOnce sync.Once
	embedded *catalog
	loadErr  error
)

// defaultCatalog reads every blueprint.json and template.json of the
// embedded tree once. The files are part of the binary, so an error here is
// a build mistake the package's tests catch.
func defaultCatalog() (*catalog, error) {
	loadOnce.Do(func() { embedded, loadErr = open(files) })
	return embedded, loadErr
}

func open(fsys fs.FS) (*catalog, error) {
	entries, err := load(fsys)
	if err != nil {
		return nil, err
	}
	return &catalog{fsys: fsys, entries: entries}, nil
}

var languages = map[string]string{"go": "provided", "python": "python3.", "node": "nodejs"}

func load(fsys fs.FS) (map[string]entry, error) {
	out := map[string]entry{}
	for _, kind := range []struct {
		dir, meta string
		template  bool
	}{{"catalog", "blueprint.json", false}, {"templates", "template.json", true}} {
		dirs, err := fs.ReadDir(fsys, kind.dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, d := range dirs {
			if !d.IsDir() {
				continue
			}
			root := path.Join(kind.dir, d.Name())
			b, err := fs.ReadFile(fsys, path.Join(root, kind.meta))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", root, err)
			}
			var info Info
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&info); err != nil {
				return nil, fmt.Errorf("%s/%s: %w", root, kind.meta, err)
			}
			if err := check(fsys, root, kind.template, &info); err != nil {
				return nil, fmt.Errorf("%s/%s: %w", root, kind.meta, err)
			}
			if info.UsesModule, err = usesModule(fsys, root); err != nil {
				return nil, err
			}
			if _, dup := out[info.Name]; dup {
				return nil, fmt.Errorf("%s: name %q is both a blueprint and a template", root, info.Name)
			}
			out[info.Name] = entry{info: info, root: root}
		}
	}
	return out, nil
}

// check validates one metadata file against its directory and fills the
// derived fields.
func check(fsys fs.FS, root string, isTemplate bool, info *Info) error {
	if info.Name != path.Base(root) {
		return fmt.Errorf("name %q differs from the directory name", info.Name)
	}
	if strings.TrimSpace(info.Description) == "" || strings.Contains(info.Description, "\n") {
		return errors.New("description must be one non-empty line")
	}
	info.Template = isTemplate
	if isTemplate {
		if info.Runtime != "" || info.Language != "" || len(info.Events) > 0 {
			return errors.New("a template takes only name and description")
		}
		return nil
	}
	prefix, ok := languages[info.Language]
	if !ok {
		return fmt.Errorf("language %q: want go, python or node", info.Language)
	}
	if !strings.HasPrefix(info.Runtime, prefix) {
		return fmt.Errorf("runtime %q does not fit language %s", info.Runtime, info.Language)
	}
	if !strings.HasSuffix(info.Name, "-"+info.Language) {
		return fmt.Errorf("name %q: a %s blueprint's name ends in -%s", info.Name, info.Language, info.Language)
	}
	info.NeedsBuild = info.Language == "go"
	// The catalogue test checks every blueprint has one (a fixture may not).
	if spec, err := fs.ReadFile(fsys, path.Join(root, "nimbus.hcl.tmpl")); err == nil {
		if m := handlerRE.FindSubmatch(spec); m != nil {
			info.Handler = string(m[1])
		}
	}
	seen := map[string]bool{}
	for _, ev := range info.Events {
		if seen[ev.File] {
			return fmt.Errorf("event %s listed twice", ev.File)
		}
		seen[ev.File] = true
		if _, err := fs.Stat(fsys, path.Join(root, ev.File)); err != nil {
			return fmt.Errorf("event %s: %w", ev.File, err)
		}
		if ev.Expect.Contains == "" {
			return fmt.Errorf("event %s: expect.contains is empty", ev.File)
		}
	}
	samples, _ := fs.Glob(fsys, path.Join(root, "events", "*.json"))
	for _, s := range samples {
		if rel := strings.TrimPrefix(s, root+"/"); !seen[rel] {
			return fmt.Errorf("sample %s has no entry in events", rel)
		}
	}
	return nil
}

// usesModule reports whether a .tmpl file under root refers to .Module.
func usesModule(fsys fs.FS, root string) (bool, error) {
	found := false
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found || !strings.HasSuffix(p, ".tmpl") {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		found = bytes.Contains(b, []byte(".Module"))
		return err
	})
	return found, err
}

func mustDefault() *catalog {
	c, err := defaultCatalog()
	if err != nil {
		panic("blueprints: embedded catalogue is broken: " + err.Error())
	}
	return c
}

func (c *catalog) list(template bool) []Info {
	var out []Info
	for _, e := range c.entries {
		if e.info.Template == template {
			out = append(out, e.info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// List returns the blueprints, sorted by name.
func List() []Info { return mustDefault().list(false) }

// Templates returns the application templates, sorted by name.
func Templates() []Info { return mustDefault().list(true) }

// Lookup returns the blueprint or template called name.
func Lookup(name string) (Info, error) {
	c, err := defaultCatalog()
	if err != nil {
		return Info{}, err
	}
	e, ok := c.entries[name]
	if !ok {
		return Info{}, fmt.Errorf("%q: %w", name, ErrNotFound)
	}
	return e.info, nil
}

// file is one rendered project file.
type file struct {
	name string // slash-separated, relative to the project
	mode fs.FileMode
	data []byte
}

// render produces the project files of name with data, sorted by name.
func (c *catalog) render(name string, data Data) ([]file, error) {
	e, ok := c.entries[name]
	if !ok {
		return nil, fmt.Errorf("%q: %w", name, ErrNotFound)
	}
	if data.Module != "" && !e.info.UsesModule {
		return nil, fmt.Errorf("%s %w (the module setting would do nothing)", name, ErrModuleUnused)
	}
	data, err := data.withDefaults()
	if err != nil {
		return nil, err
	}
	var out []file
	err = fs.WalkDir(c.fsys, e.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(p, e.root+"/")
		if rel == "blueprint.json" || rel == "template.json" {
			return nil
		}
		b, err := fs.ReadFile(c.fsys, p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(rel, ".tmpl") {
			rel = strings.TrimSuffix(rel, ".tmpl")
			t, err := template.New(p).Option("missingkey=error").Parse(string(b))
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := t.Execute(&buf, data); err != nil {
				return err
			}
			b = buf.Bytes()
		}
		mode := fs.FileMode(0o644)
		if bytes.HasPrefix(b, []byte("#!")) {
			mode = 0o755
		}
		out = append(out, file{name: rel, mode: mode, data: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rendering %s: %w", name, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	for i := 1; i < len(out); i++ {
		if out[i].name == out[i-1].name {
			return nil, fmt.Errorf("rendering %s: %s exists both as a file and as a .tmpl", name, out[i].name)
		}
	}
	return out, nil
}

// Scaffold writes the project of blueprint or template name into dir,
// creating it. It refuses a non-empty dir (ErrNotEmpty).
func Scaffold(name, dir string, data Data) error {
	return ScaffoldWith(name, dir, data, Options{})
}

// ScaffoldWith is Scaffold with options.
func ScaffoldWith(name, dir string, data Data, opts Options) error {
	c, err := defaultCatalog()
	if err != nil {
		return err
	}
	return c.scaffold(name, dir, data, opts)
}

func (c *catalog) scaffold(name, dir string, data Data, opts Options) error {
	out, err := c.render(name, data)
	if err != nil {
		return err
	}
	if !opts.Force {
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if len(ents) > 0 {
			return fmt.Errorf("%s: %w (use --force to write into it)", dir, ErrNotEmpty)
		}
	}
	for _, f := range out {
		dst := filepath.Join(dir, filepath.FromSlash(f.name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		// Remove first so that a replaced file gets its new mode and a
		// symlink in the way is replaced, not followed.
		if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.WriteFile(dst, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(dst, f.mode); err != nil { // not narrowed by the umask
			return err
		}
	}
	return nil
}

// zipTime is every entry's timestamp, so equal projects zip to equal bytes.
var zipTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Zip returns the project of blueprint or template name as a zip archive,
// entries sorted, timestamps fixed. For a blueprint whose Info.NeedsBuild is
// false it is a Lambda code zip as it is.
func Zip(name string, data Data) ([]byte, error) {
	c, err := defaultCatalog()
	if err != nil {
		return nil, err
	}
	return c.zip(name, data)
}

func (c *catalog) zip(name string, data Data) ([]byte, error) {
	out, err := c.render(name, data)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range out {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: zipTime}
		h.SetMode(f.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
