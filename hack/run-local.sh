#!/usr/bin/env bash
# `make run`.
#
# With $KUBECONFIG set or ~/.kube/config present, it runs the operator in
# the foreground against that cluster: it applies the CRDs (and the samples
# only when APPLY_SAMPLES=true).
# Otherwise it runs the playground (bin/capstan-playground, docs/run.md): a
# local API server, the operator, demo pods with real Envoy sidecars, and a
# live view of their traffic; it writes bin/local/kubeconfig.
# Ctrl-C stops everything it started.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
kubectl_bin="$root/bin/k8s/kubectl"
metrics_addr=${METRICS_ADDR:-:8080}
probe_addr=${PROBE_ADDR:-:8081}
apply_samples=${APPLY_SAMPLES:-false}

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for bin in "$kubectl_bin" "$root/bin/manager"; do
  [[ -x "$bin" ]] || { echo "run-local: $bin is missing: run make envtest-assets build" >&2; exit 1; }
done

if [[ -z "${KUBECONFIG:-}" && ! -f "$HOME/.kube/config" && "${PLAYGROUND:-true}" == true ]]; then
  exec "$root/bin/capstan-playground" -kubeconfig-out "$root/bin/local/kubeconfig" -log-dir "$root/bin/playground" \
    -manager "$root/bin/manager" -capstan-init "$root/bin/capstan-init" -envoy "${CAPSTAN_ENVOY:-$root/bin/envoy-1.40.0}"
fi

if [[ -z "${KUBECONFIG:-}" && ! -f "$HOME/.kube/config" ]]; then
  # PLAYGROUND=false: only a local API server and the operator.
  kubeconfig="$root/bin/local/kubeconfig"
  rm -f "$kubeconfig"
  echo "run-local: no cluster configured; starting a local API server (bin/k8s)"
  go build -o "$root/bin/localcluster" ./hack/localcluster
  KUBEBUILDER_ASSETS="${KUBEBUILDER_ASSETS:-$root/bin/k8s}" "$root/bin/localcluster" -out "$kubeconfig" &
  pids+=($!)
  for _ in $(seq 1 600); do
    [[ -f "$kubeconfig" ]] && break
    kill -0 "${pids[0]}" 2>/dev/null || { echo "run-local: the local API server failed to start" >&2; exit 1; }
    sleep 0.1
  done
  [[ -f "$kubeconfig" ]] || { echo "run-local: the local API server did not start within 60s" >&2; exit 1; }
  export KUBECONFIG="$kubeconfig"
  apply_samples=true
fi

kubectl() { "$kubectl_bin" "$@"; }
echo "run-local: applying CRDs to $(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
kubectl apply --server-side -f config/crd/bases
kubectl wait --for=condition=Established --timeout=60s -f config/crd/bases >/dev/null
if [[ "$apply_samples" == true ]]; then
  kubectl apply --server-side -n default -k config/samples
fi

operator_ns=${POD_NAMESPACE:-capstan-system}
# The built-in CA keeps its root in a Secret in the operator's namespace.
kubectl create namespace "$operator_ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
"$root/bin/manager" --metrics-bind-address="$metrics_addr" --health-probe-bind-address="$probe_addr" \
  --namespace="$operator_ns" --xds-address="${XDS_ADDR:-127.0.0.1:15012}" &
pids+=($!)
cat <<MSG

run-local: the operator is running (Ctrl-C stops it). In another terminal:
  $kubectl_bin --kubeconfig $KUBECONFIG get meshroutes -A

MSG
wait "${pids[-1]}"
