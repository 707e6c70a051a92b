#!/usr/bin/env bash
# Installs promtool (or, with $3, another binary of the package, such as
# prometheus) from Debian's prometheus package into the path given ($1),
# without installing the package: the .deb is downloaded and only
# usr/bin/<binary> is taken out of it. Building them from the Go module
# proxy instead takes 6-15 minutes on a 2-core machine (Prometheus's
# service-discovery dependencies), too much for a cold `make test`.
# $2 is the package version to fetch (apt's version string).
set -euo pipefail
dest=$1
version=$2
binary=${3:-promtool}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
if ! apt-get download "prometheus=$version" >/dev/null 2>&1; then
	echo "updating apt's package lists to fetch prometheus $version"
	apt-get update -qq
	apt-get download "prometheus=$version" >/dev/null
fi
dpkg-deb -x prometheus_*.deb root
install -m 0755 "root/usr/bin/$binary" "$dest"
"$dest" --version | head -1
