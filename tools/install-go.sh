#!/usr/bin/env bash
# Installs a Go toolchain of at least the version go.mod needs into PREFIX
# (default /usr/local/go) on Debian, using only Debian's packages and the Go
# module proxy: Debian 12's golang-go (1.19) downloads the official toolchain,
# which the proxy serves as the module golang.org/toolchain, and the unpacked
# module is copied into place.
set -euo pipefail
want=${1:?usage: install-go.sh VERSION [PREFIX]}   # e.g. 1.24.0
prefix=${2:-/usr/local/go}

if [ -x "$prefix/bin/go" ]; then
  have=$("$prefix/bin/go" env GOVERSION 2>/dev/null | sed 's/^go//')
  if [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" = "$want" ]; then
    echo "install-go: $prefix has go$have (>= $want)"
    exit 0
  fi
fi

bootstrap=""
for g in /usr/lib/go-*/bin/go /usr/bin/go; do
  [ -x "$g" ] && bootstrap=$g && break
done
if [ -z "$bootstrap" ]; then
  echo "install-go: installing Debian's golang-go to bootstrap"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends golang-go ca-certificates
  bootstrap=/usr/bin/go
fi

arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
case "$arch" in
  amd64|x86_64) arch=amd64 ;;
  arm64|aarch64) arch=arm64 ;;
esac
mod="golang.org/toolchain@v0.0.1-go${want}.linux-${arch}"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
echo "install-go: downloading $mod through the Go module proxy"
(cd "$work" && GOPATH="$work/gopath" GOFLAGS=-modcacherw GO111MODULE=on GOTOOLCHAIN=local "$bootstrap" mod download "$mod")
src="$work/gopath/pkg/mod/$mod"
[ -f "$src/bin/go" ] || { echo "install-go: $mod has no bin/go"; exit 1; }
rm -rf "$prefix.new"
cp -a "$src" "$prefix.new"
chmod -R u+w "$prefix.new"
# Module zips keep no file modes: make the programs executable again.
chmod +x "$prefix.new"/bin/* "$prefix.new"/pkg/tool/*/*
rm -rf "$prefix"
mv "$prefix.new" "$prefix"
echo "install-go: installed $("$prefix/bin/go" version) in $prefix"
