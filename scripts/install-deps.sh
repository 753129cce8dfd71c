#!/bin/sh
# Installs the Debian packages crid needs, only when some are missing.
# Usage: scripts/install-deps.sh build|run|test ...
set -eu

build_pkgs="gcc libc6-dev make pkg-config libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler libyaml-dev libjansson-dev libcurl4-openssl-dev libarchive-dev libsqlite3-dev libssl-dev zlib1g-dev"
# The OCI runtimes; the CNI plugins pods get their networks from, and the
# iptables their portmap plugin programs hostPorts with.
run_pkgs="crun runc containernetworking-plugins iptables"
# Loaded by crid at first use (dlopen by soname), so not among the
# libraries its binary names: libcurl.so.4, libarchive.so.13, libssl.so.3.
run_pkgs="$run_pkgs libcurl4 libarchive13 libssl3"
test_pkgs="check protobuf-compiler python3-grpcio python3-protobuf python3-pytest python3-h2 iproute2 procps docker-registry busybox-static openssl apache2-utils zstd python3-cryptography python3-prometheus-client util-linux python3-websocket"
# The hardening tests' throwaway users (useradd, userdel; setpriv and
# runuser come with util-linux); the libFuzzer targets (clang's runtime).
test_pkgs="$test_pkgs passwd clang libclang-rt-14-dev"
# gVisor, the sandboxed runtime handler the RuntimeClass tests run.
test_pkgs="$test_pkgs runsc"
# The Go client of the tests (tests/criclient): Go, grpc-go and the protobuf
# runtime and generators, all from Debian.
test_pkgs="$test_pkgs golang-go golang-google-grpc-dev golang-golang-x-net-dev golang-github-golang-protobuf-1-5-dev golang-google-protobuf-dev protoc-gen-go protoc-gen-go-grpc"

want=""
for group in "$@"; do
	case "$group" in
	build) want="$want $build_pkgs" ;;
	run) want="$want $run_pkgs" ;;
	test) want="$want $test_pkgs" ;;
	*) echo "install-deps: unknown group '$group' (build, run, test)" >&2; exit 2 ;;
	esac
done

missing=""
for p in $want; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
