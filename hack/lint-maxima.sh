#!/usr/bin/env bash
# Prints the largest function sizes the ceilings in .golangci.yml limit
# (funlen lines and statements, gocognit, gocyclo), for non-test code and for
# test code (*_test.go and test/), with the function that has each. Use it to
# lower a ceiling after splitting the largest function.
#
# Usage: hack/lint-maxima.sh [path to golangci-lint]
set -euo pipefail
cd "$(dirname "$0")/.."
lint=${1:-bin/golangci-lint-v2.15.0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every function is reported (threshold 1); funlen checks statements before
# lines, so lines get a run of their own.
config() { # $1: statements threshold, $2: linters
	cat <<YAML
version: "2"
run: {relative-path-mode: wd}
linters:
  default: none
  enable: [$2]
  settings:
    funlen: {lines: 1, statements: $1, ignore-comments: true}
    gocognit: {min-complexity: 1}
    gocyclo: {min-complexity: 1}
  exclusions:
    generated: lax
issues: {max-issues-per-linter: 0, max-same-issues: 0, uniq-by-line: false}
YAML
}
config -1 funlen >"$tmp/lines.yml"
config 1 "funlen, gocognit, gocyclo" >"$tmp/rest.yml"
for c in lines rest; do
	"$lint" run -c "$tmp/$c.yml" --output.text.path="$tmp/$c.txt" --output.text.print-issued-lines=false \
		--show-stats=false ./... >/dev/null 2>&1 || true
done

# kind value where: one line per report.
cat "$tmp/lines.txt" "$tmp/rest.txt" | awk '
	/\(funlen\)$/ && /is too long/            { k = "funlen-lines" }
	/\(funlen\)$/ && /has too many statements/ { k = "funlen-statements" }
	/\(gocognit\)$/                           { k = "gocognit" }
	/\(gocyclo\)$/                            { k = "gocyclo" }
	k != "" {
		if (k ~ /^funlen/) { match($0, /\([0-9]+ >/); v = substr($0, RSTART + 1, RLENGTH - 3) }
		else { match($0, /complexity [0-9]+ /); v = substr($0, RSTART + 11, RLENGTH - 12) }
		split($1, pos, ":"); code = (pos[1] ~ /_test\.go$/ || pos[1] ~ /^test\//) ? "test" : "non-test"
		print k, code, v, $1; k = ""
	}' | sort -k1,1 -k2,2 -k3,3nr | awk '$1 " " $2 != last { print; last = $1 " " $2 }'
