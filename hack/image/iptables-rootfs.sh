#!/bin/sh
# Assembles the root file system of the capstan-init image under $1 from the
# iptables of the system it runs on (Debian's package, both backends):
# xtables-legacy-multi and xtables-nft-multi with the restore programs
# capstan-init runs (iptables-restore and ip6tables-restore are the nft ones,
# as Debian's alternatives default; the -legacy- and -nft- names pick one),
# the xtables extensions (owner, REDIRECT, ...), and every shared library
# they load, the C library and its loader included. No shell, no package
# manager: the image is FROM scratch. The Dockerfile runs it in a Debian
# stage; test/image runs it on this machine and executes the result in a
# chroot.
set -eu
root=${1:?usage: iptables-rootfs.sh <root directory>}
mkdir -p "$root/usr/sbin"
xtdir=$(ls -d /usr/lib/*-linux-gnu/xtables)
copy() { cp -L --parents "$1" "$root"; }
for f in /usr/sbin/xtables-legacy-multi /usr/sbin/xtables-nft-multi "$xtdir"/*.so; do
	copy "$f"
	# Shared libraries and the loader, as ldd resolves them.
	ldd "$f" | awk '/=> \// { print $3 } /^\t\// { print $1 }' | while read -r lib; do copy "$lib"; done
done
cd "$root/usr/sbin"
for v in iptables ip6tables; do
	for cmd in "" -save -restore; do
		ln -sf xtables-legacy-multi "$v-legacy$cmd"
		ln -sf xtables-nft-multi "$v-nft$cmd"
		ln -sf "$v-nft$cmd" "$v$cmd"
	done
done
# The run directory of iptables-legacy's lock (/run/xtables.lock).
mkdir -p "$root/run"
