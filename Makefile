# Nimbus — build, test and check. `make help` lists the targets.

GO          ?= go
BIN         ?= bin
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
# Where `go install` puts tools: $GOBIN, else the first entry of $GOPATH plus /bin
# (not $HOME/go/bin, which is only Go's default GOPATH).
GOBIN_DIR   := $(or $(shell $(GO) env GOBIN),$(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin)
# The staticcheck that `make check` runs. Default: the pinned one in GOBIN_DIR, which
# `make check` installs itself when it is absent or another version.
STATICCHECK ?= $(GOBIN_DIR)/staticcheck
# Packages whose tests need only this machine; e2e suites say why they skip.
PKGS        ?= ./...
TESTFLAGS   ?= -race -count=1 -timeout 30m

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build every binary into bin/
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

.PHONY: test
test: ## run the whole test suite with the race detector (e2e suites included)
	$(GO) test $(TESTFLAGS) $(PKGS)

.PHONY: check
check: staticcheck-tool ## gofmt, go vet, staticcheck and the import-rule test
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) test -count=1 ./internal/importrules/

# staticcheck -version prints e.g. "staticcheck 2026.2.2 (0.8.2)": the module version without its v.
.PHONY: staticcheck-tool
staticcheck-tool: ## install the pinned staticcheck into GOBIN_DIR unless STATICCHECK already is that version
	@if ! "$(STATICCHECK)" -version 2>/dev/null | grep -qF '($(STATICCHECK_VERSION:v%=%))'; then \
	  echo "installing staticcheck $(STATICCHECK_VERSION) into $(GOBIN_DIR)"; \
	  GOBIN="$(GOBIN_DIR)" $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) || exit 1; \
	  if ! "$(STATICCHECK)" -version 2>/dev/null | grep -qF '($(STATICCHECK_VERSION:v%=%))'; then \
	    echo "STATICCHECK=$(STATICCHECK) is not staticcheck $(STATICCHECK_VERSION); unset it or point it at $(GOBIN_DIR)/staticcheck"; exit 1; \
	  fi; \
	fi

.PHONY: tools
tools: staticcheck-tool ## install the pinned developer tools (staticcheck, protoc plugins)
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

.PHONY: bench
bench: ## run the benchmarks; each prints its baseline measured in the same run
	$(GO) test -run='^$$' -bench=. -benchtime=1x -count=1 -timeout 30m ./bench/...

# The web console: an npm project (versions pinned by package-lock.json) whose
# build output gateway/console/dist is committed and embedded by the gateway.
CONSOLE_WEB := gateway/console/web
NPM         ?= npm

.PHONY: console
console: ## build the web console into gateway/console/dist (npm ci + vite build)
	cd $(CONSOLE_WEB) && $(NPM) ci --no-audit --no-fund && $(NPM) run build

.PHONY: console-check
console-check: ## run the console's unit tests, rebuild it in a temporary copy and fail if the committed gateway/console/dist differs
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  tar -C gateway/console --exclude=node_modules -cf - web | tar -C "$$tmp" -xf - && \
	  (cd "$$tmp/web" && $(NPM) ci --no-audit --no-fund --loglevel=error >/dev/null && $(NPM) test --silent >/dev/null && $(NPM) run build >/dev/null) && \
	  if ! diff -r "$$tmp/dist" gateway/console/dist >/dev/null; then \
	    echo "gateway/console/dist does not match a fresh build of $(CONSOLE_WEB); run make console and commit dist/:"; \
	    diff -r "$$tmp/dist" gateway/console/dist | head -20; exit 1; \
	  fi; echo "gateway/console/dist matches a fresh build"

.PHONY: generate
generate: ## regenerate committed code (protobufs)
	$(GO) generate ./...

.PHONY: run
run: ## run nimbus dev on the sample function
	$(GO) run ./cmd/nimbus dev

.PHONY: clean
clean: ## remove build output
	rm -rf $(BIN)
