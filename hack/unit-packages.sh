#!/usr/bin/env bash
# Prints the packages of `make test-unit`, the fast loop: every package with
# tests whose test binary links neither the API-server harness (test/envtest,
# controller-runtime's envtest) nor the data-plane harness (test/dataplane).
# Computed from the import graph, so a new package joins or leaves the list
# by what its tests import. Tests in these packages that need Envoy or a
# network namespace skip under -short when they cannot run (make test-unit
# passes -short; make test does not, and fails instead).
set -euo pipefail
cd "$(dirname "$0")/.."
needs_server='github.com/capstanmesh/capstan/test/envtest|sigs.k8s.io/controller-runtime/pkg/envtest|github.com/capstanmesh/capstan/test/dataplane'
go list -test -f '{{if eq .Name "main"}}{{.ImportPath}} {{join .Deps " "}}{{end}}' ./... |
	awk -v deny="( )($needs_server)( |\$)" '/\.test / && $0 !~ deny { sub(/\.test$/, "", $1); print $1 }' |
	sort
