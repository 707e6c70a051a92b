#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from the Go module proxy, at the versions
# pinned in hack/tools/envtest/go.mod, into the directory given as $1.
set -euo pipefail
out=$1
version=$2
cd "$(dirname "$0")/tools/envtest"
mkdir -p "$out"
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  minor=${version#v1.}; minor=${minor%%.*}
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
echo "building etcd, kube-apiserver and kubectl $version into $out: this happens once (a few minutes when cold)"
echo "  [1/3] etcd"
go build -o "$out/etcd" go.etcd.io/etcd/server/v3
echo "  [2/3] kube-apiserver"
go build -ldflags "$ldflags" -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
echo "  [3/3] kubectl"
go build -ldflags "$ldflags" -o "$out/kubectl" k8s.io/kubernetes/cmd/kubectl
"$out/kubectl" version --client >/dev/null
