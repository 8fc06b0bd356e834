// Package blueprints holds the projects `nimbus init` writes: blueprints
// (one function, ready to deploy) and application templates (several
// functions plus CI/CD pipeline files). Both are embedded in the binary, so
// the CLI, the console's "create from blueprint" and tests read one
// catalogue.
//
// Layout, under this directory:
//
//	catalog/<name>/blueprint.json   {"name","runtime","language","description","events":[…]}
//	catalog/<name>/…                the project's files
//	templates/<name>/template.json  {"name","description"}
//	templates/<name>/…              the project's files
//
// Blueprint names are <kind>-<language> (hello-go, http-api-python,
// kafka-consumer-node); language is go, python or node. A blueprint.json's
// "events" lists what each sample event under events/ must produce when
// `nimbus local invoke --event` runs it: {"file":"events/x.json","expect":
// {"contains":"…","function_error":false}}. Every events/*.json file needs an
// entry; the catalogue test in cmd/nimbus runs them all.
//
// Files ending in .tmpl are rendered with text/template (missing keys are
// errors) and written without the suffix; the data is Data. Everything else
// is copied byte for byte. Embedding loses file modes, so a file whose first
// bytes are "#!" is written executable (0755), every other file 0644. The
// metadata files (blueprint.json, template.json) are not written. A .tmpl
// file that must contain "{{" literally (a GitHub Actions "${{ … }}") writes
// it as {{"{{"}}.
//
// Go blueprints keep their go.mod as go.mod.tmpl: a literal go.mod would
// make the directory its own module, which go:embed cannot reach. Their Go
// sources are therefore also packages of the Nimbus module, so `go vet`,
// staticcheck and `go test ./...` cover them in place.
//
// It imports only the standard library.
package blueprints
