#!/usr/bin/env bash
# Lint self-check (run by `make lint`): with the repository's .golangci.yml,
# golangci-lint must report each deliberate violation in hack/testdata/lint —
# a function too long, one with too many statements, one too complex (cognitive
# and cyclomatic), a test function over the test ceiling, an import that
# depguard forbids in xds/ir — and nothing else (functions at a ceiling, and a
# test function over the non-test ceiling only, must pass). The fixtures are
# under testdata/, so `./...` never lints them.
#
# Usage: hack/lint-selftest.sh [path to golangci-lint]
set -euo pipefail
cd "$(dirname "$0")/.."
lint=${1:-bin/golangci-lint-v2.15.0}
fixtures=hack/testdata/lint

expected=(
	"^$fixtures/size/size.go:[0-9:]+ Function 'TooLong' is too long \(52 > 51\) \(funlen\)$"
	"^$fixtures/size/size.go:[0-9:]+ Function 'TooManyStatements' has too many statements \(38 > 37\) \(funlen\)$"
	"^$fixtures/size/size.go:[0-9:]+ cognitive complexity 28 of func \`TooCognitive\` is high \(> 21\) \(gocognit\)$"
	"^$fixtures/size/size.go:[0-9:]+ cyclomatic complexity 19 of func \`TooCyclomatic\` is high \(> 18\) \(gocyclo\)$"
	"^$fixtures/size/size_test.go:[0-9:]+ Function 'TooLongEvenForATest' is too long \(192 > 51\) \(funlen\)$"
	"^$fixtures/xds/ir/ir.go:[0-9:]+ import 'k8s.io/client-go/rest' is not allowed .*\(depguard\)$"
	"^$fixtures/cli/analyze/analyze.go:[0-9:]+ import 'k8s.io/client-go/rest' is not allowed .*\(depguard\)$"
	"^$fixtures/cli/analyze/analyze.go:[0-9:]+ import 'github.com/capstanmesh/capstan/xds/server' is not allowed .*\(depguard\)$"
)

mapfile -t pkgs < <(find "$fixtures" -name '*.go' -printf './%h\n' | sort -u)
# golangci-lint exits non-zero when it reports anything: that is the point here.
out=$("$lint" run --allow-parallel-runners --max-issues-per-linter 0 --max-same-issues 0 \
	--output.text.print-issued-lines=false --show-stats=false "${pkgs[@]}" 2>&1) || true
mapfile -t reported < <(grep -E "^$fixtures/" <<<"$out" || true)

fail=0
for want in "${expected[@]}"; do
	n=$(printf '%s\n' "${reported[@]}" | grep -cE "$want" || true)
	if [ "$n" != 1 ]; then
		echo "lint self-check: want one report matching $want, got $n" >&2
		fail=1
	fi
done
if [ "${#reported[@]}" != "${#expected[@]}" ]; then
	echo "lint self-check: want ${#expected[@]} reports, got ${#reported[@]}" >&2
	fail=1
fi
if [ "$fail" != 0 ]; then
	echo "golangci-lint said:" >&2
	echo "$out" >&2
	exit 1
fi
echo "lint self-check: ${#expected[@]} deliberate violations reported, nothing else"
