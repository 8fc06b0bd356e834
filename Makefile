# Nimbus — build, test and check. `make help` lists the targets.

GO          ?= go
BIN         ?= bin
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)
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
check: ## gofmt, go vet, staticcheck and the import-rule test
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) test -count=1 ./internal/importrules/

.PHONY: tools
tools: ## install the pinned developer tools (staticcheck, protoc plugins)
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

.PHONY: bench
bench: ## run the benchmarks; each prints its baseline measured in the same run
	$(GO) test -run='^$$' -bench=. -benchtime=1x -count=1 -timeout 30m ./bench/...

.PHONY: generate
generate: ## regenerate committed code (protobufs)
	$(GO) generate ./...

.PHONY: run
run: ## run nimbus dev on the sample function
	$(GO) run ./cmd/nimbus dev

.PHONY: clean
clean: ## remove build output
	rm -rf $(BIN)
