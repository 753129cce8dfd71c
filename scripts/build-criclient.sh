#!/bin/sh
# Builds the kubelet-style CRI client of the tests and benchmarks
# (tests/criclient) into build/criclient/criclient, offline, with Debian's Go
# packages only: GOPATH mode, the CRI Go code generated from proto/ into
# build/gopath/src/crid/cri/{v1,v1alpha2}, the Go build cache under build/.
set -eu
cd "$(dirname "$0")/.."
for tool in go protoc protoc-gen-go protoc-gen-go-grpc; do
	if ! command -v "$tool" >/dev/null; then
		echo "build-criclient: $tool is missing: sh scripts/install-deps.sh test" >&2
		exit 1
	fi
done
top=$(pwd)
gopath="$top/build/gopath"
out="$top/build/criclient"
mkdir -p "$gopath/src" "$out"

# Generated into a fresh directory, then moved into place: another build
# running at the same time never sees half-written files.
tmp=$(mktemp -d "$gopath/gen.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for v in v1 v1alpha2; do
	proto="runtime/$v/api.proto"
	protoc -Iproto \
		--go_out="$tmp" --go_opt="M$proto=crid/cri/$v" \
		--go-grpc_out="$tmp" --go-grpc_opt="M$proto=crid/cri/$v" \
		"proto/$proto"
	mkdir -p "$gopath/src/crid/cri/$v"
	for f in "$tmp/crid/cri/$v"/*.go; do
		dest="$gopath/src/crid/cri/$v/$(basename "$f")"
		if ! cmp -s "$f" "$dest"; then
			mv -f "$f" "$dest"
		fi
	done
done

export GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOCACHE="$top/build/gocache"
export GOFLAGS= GOPROXY=off GOENV=off CGO_ENABLED=0
cd tests/criclient
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "build-criclient: not gofmt'ed: $unformatted" >&2
	exit 1
fi
go vet .
go build -o "$out/criclient.$$" .
mv -f "$out/criclient.$$" "$out/criclient"
