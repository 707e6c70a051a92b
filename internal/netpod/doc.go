// Package netpod runs pods on one machine without a kubelet: each pod is a
// Linux network namespace on a bridge of its own (Network, Netns), with its
// containers as processes (Proc). It does the kubelet's part for an
// injected pod (PrepareContainer, RunInit, EnvoyCommand: the real
// capstan-init and a real Envoy from the spec the webhook wrote), and ships
// small HTTP and gRPC apps (AppConfig, RunApp) that a binary runs when it
// is started again inside a namespace with AppEnv set.
//
// The data-plane tests (test/dataplane) and the playground of `make run`
// (cmd/capstan-playground) use it. Everything it makes on the host carries
// Prefix and a slot, so the next start sweeps what a crashed run left.
package netpod
