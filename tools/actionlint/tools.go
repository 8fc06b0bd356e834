//go:build tools

// Package tools pins actionlint, the GitHub Actions workflow linter that
// the application-template tests run on every template's workflow
// (e2e/templates_ci_test.go). It is a separate module so actionlint's
// dependencies never enter the main module.
//
// Build it with:
//
//	cd tools/actionlint && go build -o <dir>/actionlint github.com/rhysd/actionlint/cmd/actionlint
package tools

import _ "github.com/rhysd/actionlint/cmd/actionlint"
