// Package observability checks config/prometheus and config/grafana: every
// PromQL expression parses with Prometheus's own parser and names only
// metrics that Capstan's sidecars or manager export
// (internal/meshmetrics.SidecarMetrics and ManagerMetrics, which
// test/dataplane checks against real sidecars and a real manager), and
// promtool checks the alerting rules and runs their unit tests.
//
// It is a module of its own so that Prometheus's dependencies stay out of
// Capstan's go.mod; `make test-observability` (part of `make test`) runs it.
package observability
